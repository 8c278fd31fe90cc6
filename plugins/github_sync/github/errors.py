"""Typed exceptions raised by :class:`github_sync.github.hook.GitHubHook`.

Every exception names the HTTP method, the API path and (when there is one) the status,
so a failed task log says what went wrong. None of them may ever carry the token, the
``Authorization`` header or a full request object: their text may end up in task logs,
XComs or alert e-mails. They must survive pickling (Airflow moves them between
processes) and must not decide anything: the transport raises them, the retry policy
reads ``retryable``/``retry_after``.

Hierarchy::

    GitHubError
    ├── GitHubTransportError          connection reset / refused, timeout (after retries)
    ├── GitHubServerError             5xx (after retries)
    │   └── PageTooLarge              502/504 on a big page (internal: the paginator shrinks)
    ├── GitHubClientError             4xx other than rate limits (fail fast)
    │   ├── RepositoryUnavailable     404/409/451 under /repos/{owner}/{repo}: gone/empty/blocked
    │   └── CredentialError           401, or the App's key/installation refused: fix the connection
    ├── RateLimitExhausted            the wait for the budget is longer than max_wait_s: defer
    │   └── SecondaryRateLimitExceeded
    ├── PaginationLoopError           a Link rel="next" pointed at a page already fetched
    └── RepositoryMoved               301 for a repository, raised only when asked to
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

UnavailableReason = Literal["gone", "empty", "blocked"]


class GitHubError(Exception):
    """Base class of everything the hook raises on purpose.

    Attributes:
        method: HTTP method of the failed request (``GET``).
        path: API path of the failed request, without host and query string.
        retryable: whether the hook's retry policy may try the request again. Internal
            to the retry loop; callers only ever see errors whose retries are used up.
        retry_after: seconds the retry loop should wait before the next attempt
            (``None``: use the exponential backoff of the retry policy).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "GET",
        path: str = "",
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.retryable = retryable
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:
        # The subclasses take keyword-only arguments, which the default exception pickling
        # (cls(*args)) cannot replay; rebuild from args + attributes instead.
        return (_rebuild_error, (type(self), self.args, dict(self.__dict__)))


def _rebuild_error(cls: type[GitHubError], args: tuple[object, ...], state: dict[str, object]) -> GitHubError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class GitHubTransportError(GitHubError):
    """The request never got an HTTP answer (connection error, reset, timeout).

    Attributes:
        cause: class name of the underlying ``requests`` exception (``ConnectionError``).
    """

    def __init__(
        self, *, method: str, path: str, cause: str, detail: str = "", retryable: bool = False
    ) -> None:
        text = f"{method} {path} failed without an HTTP answer: {cause}"
        if detail:
            text = f"{text} ({detail})"
        super().__init__(text, method=method, path=path, retryable=retryable)
        self.cause = cause


class GitHubServerError(GitHubError):
    """GitHub answered 5xx (raised once the bounded retries are used up).

    Attributes:
        status: the HTTP status.
        message: GitHub's ``message`` field, or the start of the body.
    """

    def __init__(
        self, *, method: str, path: str, status: int, message: str = "", retryable: bool = False
    ) -> None:
        text = f"{method} {path} -> {status}"
        if message:
            text = f"{text}: {message}"
        super().__init__(text, method=method, path=path, retryable=retryable)
        self.status = status
        self.message = message


class PageTooLarge(GitHubServerError):
    """502/504 on a listing page that can still be asked for with a smaller ``per_page``.

    The paginator catches it, halves ``per_page`` and fetches the same page again; it only
    escapes when the page is already at the floor size (then it is a plain server error).
    """


class GitHubClientError(GitHubError):
    """GitHub refused the request with a 4xx that is not a rate limit (never retried).

    Attributes:
        status: the HTTP status.
        message: GitHub's ``message`` field.
        documentation_url: GitHub's ``documentation_url`` field, if any.
    """

    def __init__(
        self,
        *,
        method: str,
        path: str,
        status: int,
        message: str = "",
        documentation_url: str | None = None,
    ) -> None:
        text = f"{method} {path} -> {status}"
        if message:
            text = f"{text}: {message}"
        super().__init__(text, method=method, path=path)
        self.status = status
        self.message = message
        self.documentation_url = documentation_url


class CredentialError(GitHubClientError):
    """GitHub refused the credential itself (bad or expired token, wrong App key or installation).

    Retrying cannot fix it (an App's expired installation token is bought again once
    before this is raised); the message names the credential (never its secret) and what to fix.
    """


class RepositoryUnavailable(GitHubClientError):
    """A repository cannot be read, on purpose: the sync skips it and records why.

    ``reason`` is ``"gone"`` (404: deleted, made private, or the token lost access),
    ``"empty"`` (409: no commit yet) or ``"blocked"`` (451: unavailable for legal reasons).

    Attributes:
        repo: ``owner/name`` as written in the request path.
        reason: one of ``gone``, ``empty``, ``blocked``.
    """

    def __init__(
        self,
        repo: str,
        reason: UnavailableReason,
        *,
        method: str = "GET",
        path: str = "",
        status: int = 404,
        message: str = "",
    ) -> None:
        super().__init__(method=method, path=path, status=status, message=message)
        self.args = (f"repository {repo} is unavailable ({reason}): {method} {path} -> {status}",)
        self.repo = repo
        self.reason: UnavailableReason = reason


class RateLimitExhausted(GitHubError):
    """The budget of ``resource`` is not available before ``reset_at`` and that is too long to sleep.

    Raised instead of sleeping when the wait would exceed the hook's ``max_wait_s``, so an
    Airflow task does not hold a worker slot for up to an hour. The task should defer and
    resume after ``reset_at``, e.g.::

        try:
            ...
        except RateLimitExhausted as exc:
            self.defer(trigger=DateTimeTrigger(moment=exc.reset_at), method_name="execute")

    Attributes:
        resource: the rate-limit resource (``core``, ``search``, ``graphql``).
        reset_at: aware UTC datetime from which requests may go out again (the
            ``x-ratelimit-reset`` time plus a safety second, or now + ``retry-after``).
    """

    def __init__(self, resource: str, reset_at: datetime, *, method: str = "GET", path: str = "") -> None:
        super().__init__(
            f"GitHub rate limit for {resource!r} exhausted until {reset_at.isoformat()}",
            method=method,
            path=path,
        )
        self.resource = resource
        self.reset_at = reset_at


class SecondaryRateLimitExceeded(RateLimitExhausted):
    """GitHub's secondary (abuse) limit keeps refusing, or asks for a longer wait than ``max_wait_s``.

    Handle it like :class:`RateLimitExhausted`: defer until ``reset_at``.
    """

    def __init__(self, resource: str, reset_at: datetime, *, method: str = "GET", path: str = "") -> None:
        super().__init__(resource, reset_at, method=method, path=path)
        self.args = (f"{method} {path}: GitHub secondary rate limit, retry after {reset_at.isoformat()}",)


class PaginationLoopError(GitHubError):
    """A ``Link: rel="next"`` pointed at a page this listing already fetched.

    Attributes:
        url: the repeated page URL (no token is ever part of a URL).
    """

    def __init__(self, *, path: str, url: str) -> None:
        super().__init__(f"GET {path}: pagination loop, page {url} was already fetched", path=path)
        self.url = url


class RepositoryMoved(GitHubError):
    """A repository answered 301: it was renamed or transferred.

    By default the hook follows the redirect and only sets ``GitHubResponse.moved_to``;
    ``get(..., raise_on_move=True)`` raises this instead, after following it, so the
    response of the new location is still available.

    Attributes:
        old_path: the path that was asked for.
        location: the absolute URL of the ``Location`` header.
        new_full_name: ``owner/name`` of the new location when known (from the body).
        response: the response of the new location (a ``GitHubResponse``).
    """

    def __init__(
        self,
        *,
        old_path: str,
        location: str,
        new_full_name: str | None = None,
        response: object | None = None,
    ) -> None:
        super().__init__(f"GET {old_path} moved permanently to {new_full_name or location}", path=old_path)
        self.old_path = old_path
        self.location = location
        self.new_full_name = new_full_name
        self.response = response
