"""The hook's request path: one GET as a pipeline of named steps, retried by the policy.

One attempt (:meth:`Transport._attempt`) runs these steps, in order:

1. :meth:`~Transport._conditional` - the cache's ETag (or Last-Modified) for the URL and
   the credential that obtained it (ETags are per credential);
2. :meth:`RateLimiter.admit <github_sync.github.ratelimit.RateLimiter.admit>` - choose the
   credential (the ETag's while it has budget, else the most budget left), wait out its
   secondary-limit pause and primary budget, or raise ``RateLimitExhausted``;
3. :meth:`~Transport._send` - the GET on the hook's session with that credential's
   ``Authorization`` (and the validators when it holds the ETag, as ``If-None-Match`` or
   ``If-Modified-Since``), at most ``max_in_flight`` at once; no answer becomes
   :class:`GitHubTransportError`;
4. :meth:`RateLimiter.record <github_sync.github.ratelimit.RateLimiter.record>` - the
   answer's rate-limit headers, before its admission slot is given back;
5. :meth:`~Transport._count` - requests sent, budget spent, 304s, secondary limits;
6. :func:`classify`, then :meth:`~Transport._interpret` - a 304 returns the cached body,
   a 200 is cached and returned, a rate-limit refusal becomes the rate limiter's error,
   a 401 on a refreshable credential (an App's expired token) is retried once on a new
   token, 5xx and 4xx become typed errors.

:meth:`Transport.get` runs attempts under the :class:`RetryPolicy`.

It must not know the connection (the hook hands it a session factory and its
credentials), decide on rate limits (:mod:`github_sync.github.ratelimit`) or on retries and
backoffs (:mod:`github_sync.github.retry`). No Airflow import.

Longer than 300 lines as one piece because the steps share one attempt's state (the
cached entry, the admitted resource, the raw answer) and are only meaningful in this
order; splitting them would pass that state across modules without making any step
usable alone.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
import tenacity

from github_sync.github.credentials import Credential
from github_sync.github.errors import (
    CredentialError,
    GitHubClientError,
    GitHubServerError,
    GitHubTransportError,
    PageTooLarge,
    RepositoryUnavailable,
    UnavailableReason,
)
from github_sync.github.http_cache import TOUCH_AFTER, CachedResponse, HttpCache
from github_sync.github.ratelimit import (
    NO_RETRY_DELAY_S,
    RateLimit,
    RateLimiter,
    is_primary_limit,
    is_secondary_limit,
    resource_for_path,
)
from github_sync.github.response import GitHubResponse, decode_content, moved_to
from github_sync.github.retry import PAGE_TOO_LARGE_STATUSES, RETRYABLE_STATUSES, RetryPolicy
from github_sync.github.session import ApiAuth, ApiSession, without_user_info
from github_sync.github.stats import RequestCounters

log = logging.getLogger(__name__)

# Characters of a non-JSON error body (or a transport error's text) quoted in an exception.
ERROR_BODY_SNIPPET = 200
NOT_MODIFIED = 304
OK = 200
UNAUTHORIZED = 401
# 404 under these repository sub-resources means "this repository has none", not "gone".
OPTIONAL_REPO_RESOURCES = frozenset({"readme", "license", "pages", "community", "topics"})
_UNAVAILABLE_BY_STATUS: dict[int, UnavailableReason] = {404: "gone", 409: "empty", 451: "blocked"}
_REPO_PATH = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?$")
# requests exceptions that mean "no HTTP answer": retried like a 5xx.
_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class Outcome(enum.Enum):
    """What an answer means for the request path."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    PRIMARY_LIMIT = "primary_limit"
    SECONDARY_LIMIT = "secondary_limit"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"


# Answers that count against the primary limit: 304s and rate-limit refusals do not, and a
# 5xx is GitHub's failure (an estimate: GitHub does not document it; the headers are authoritative).
_SPENDING_OUTCOMES = frozenset({Outcome.OK, Outcome.CLIENT_ERROR})


def classify(status: int, headers: Mapping[str, str], body: Any = None) -> Outcome:
    """Classify an answer.

    Args:
        status: HTTP status.
        headers: response headers.
        body: decoded JSON body (or text), used to recognise secondary limits.
    """
    if status == NOT_MODIFIED:
        return Outcome.NOT_MODIFIED
    if status < 400:
        return Outcome.OK
    if is_primary_limit(status, headers):
        return Outcome.PRIMARY_LIMIT
    if is_secondary_limit(status, headers, body):
        return Outcome.SECONDARY_LIMIT
    if status >= 500:
        return Outcome.SERVER_ERROR
    return Outcome.CLIENT_ERROR


def error_message(body: Any) -> str:
    """GitHub's ``message`` of an error body, or the start of a non-JSON one."""
    if isinstance(body, Mapping):
        return str(body.get("message") or "")
    if isinstance(body, str):
        return body[:ERROR_BODY_SNIPPET]
    return ""


def repository_unavailable(path: str, status: int) -> tuple[str, UnavailableReason] | None:
    """``(owner/name, reason)`` when ``status`` on ``path`` means the repository itself is unreadable.

    404 (gone), 409 (empty) and 451 (blocked) count only on the repository or one of its
    listings: a 404 deeper down (one commit, one file, the README) is about that object.
    """
    reason = _UNAVAILABLE_BY_STATUS.get(status)
    match = _REPO_PATH.match(path)
    if reason is None or match is None:
        return None
    rest = (match.group("rest") or "").strip("/")
    if reason == "gone" and (rest.count("/") > 0 or rest in OPTIONAL_REPO_RESOURCES):
        return None
    return f"{match.group('owner')}/{match.group('name')}", reason


@dataclass(frozen=True)
class Request:
    """One logical GET (all its attempts).

    Attributes:
        url: absolute URL, exactly as sent (also the cache key).
        path: API path relative to the base URL, for messages and the rate-limit resource.
        shrinkable: a 502/504 raises :class:`PageTooLarge` (the paginator asks again with a
            smaller page) instead of being retried.
        conditional: send the cache's validators for this URL.
    """

    url: str
    path: str
    shrinkable: bool = False
    conditional: bool = True


@dataclass(frozen=True)
class _Conditional:
    """Step 1's result: the cached entry for the URL and the credential whose ETag it is."""

    key: str | None = None
    cached: CachedResponse | None = None

    def for_key(self, key: str) -> CachedResponse | None:
        """The entry a request on credential ``key`` may use (none on another one: ETags are per credential)."""
        return self.cached if key == self.key else None

    def headers_for(self, key: str) -> dict[str, str]:
        """The validators to send on credential ``key``."""
        cached = self.for_key(key)
        if cached is None:
            return {}
        if cached.etag:
            return {"If-None-Match": cached.etag}
        if cached.last_modified:
            return {"If-Modified-Since": cached.last_modified}
        return {}


@dataclass(frozen=True)
class _Answer:
    """Steps 3-4's result: one HTTP answer, decoded."""

    raw: requests.Response
    body: Any
    rate_limit: RateLimit | None
    resource: str
    key: str
    credential: Credential


@dataclass
class _RequestState:
    """What one logical request remembers across its attempts."""

    secondary_hits: int = 0
    credential_refreshed: bool = False


class Transport:
    """Sends the hook's GETs through the pipeline above; thread-safe, one per hook."""

    def __init__(
        self,
        *,
        session: Callable[[], ApiSession],
        credentials: Callable[[], Sequence[Credential]],
        http_cache: HttpCache | None,
        limiter: RateLimiter,
        retry_policy: RetryPolicy,
        counters: RequestCounters,
        sleep: Callable[[float], None],
        timeout: tuple[float, float],
        max_in_flight: int,
        redact: Callable[[str], str],
    ) -> None:
        """Wire the pipeline.

        Args:
            session: the hook's pooled session (configures the hook on first call).
            credentials: the hook's credentials (after ``session``); each request goes out
                on the one the limiter admits it on.
            http_cache: conditional-request store, or ``None``.
            limiter: the hook's rate limiter.
            retry_policy: attempts and backoff.
            counters: where steps report.
            sleep: the hook's counted sleep, for retry backoffs.
            timeout: ``(connect, read)`` seconds.
            max_in_flight: requests on the wire at once.
            redact: removes the token from a text.
        """
        self.http_cache = http_cache
        self.limiter = limiter
        self.retry_policy = retry_policy
        self._session = session
        self._credentials = credentials
        self._keys_used: dict[str, None] = {}  # insertion-ordered set
        self._counters = counters
        self._sleep = sleep
        self._timeout = timeout
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._redact = redact

    def get(self, request: Request) -> GitHubResponse:
        """Send ``request`` until it is answered, fails for good, or its attempts run out.

        Raises:
            GitHubError: the typed errors of :mod:`github_sync.github.errors`.
        """
        state = _RequestState()
        return self.retry_policy.call(
            lambda: self._attempt(request, state), sleep=self._sleep, before_sleep=self._before_retry
        )

    def keys_used(self) -> list[str]:
        """The credential keys requests went out on, first use first."""
        return list(self._keys_used)

    def _before_retry(self, retry_state: tenacity.RetryCallState) -> None:
        self._counters.add("retries")
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        log.info(
            "retrying %s (attempt %d failed: %s)",
            getattr(error, "path", "?"),
            retry_state.attempt_number,
            self._redact(str(error)),
        )

    def _attempt(self, request: Request, state: _RequestState) -> GitHubResponse:
        session = self._session()
        credentials = self._credentials()
        keys = [credential.key_for(request.path) for credential in credentials]
        conditional = self._conditional(request, keys)
        resource = resource_for_path(request.path)
        with self.limiter.admit(resource, request.path, keys, prefer=conditional.key) as key:
            credential = credentials[keys.index(key)]
            self._keys_used.setdefault(key)
            authorization = credential.authorization(request.path)
            raw = self._send(session, request, conditional.headers_for(key), authorization)
            rate_limit = self.limiter.record(raw.headers, key)
        body = decode_content(raw.content, raw.headers.get("Content-Type", ""))
        answer = _Answer(
            raw=raw, body=body, rate_limit=rate_limit, resource=resource, key=key, credential=credential
        )
        outcome = classify(raw.status_code, raw.headers, body)
        log.debug("GET %s -> %d", without_user_info(request.url), raw.status_code)
        self._count(outcome)
        return self._interpret(request, answer, outcome, conditional.for_key(key), state)

    # ------------------------------------------------------------------ steps

    def _conditional(self, request: Request, keys: Sequence[str]) -> _Conditional:
        if not request.conditional or self.http_cache is None:
            return _Conditional()
        for key in keys:
            cached = self.http_cache.get(key, request.url)
            # An entry without validators cannot answer a 304: treat it as a miss.
            if cached is not None and (cached.etag or cached.last_modified):
                return _Conditional(key=key, cached=cached)
        return _Conditional()

    def _send(
        self, session: ApiSession, request: Request, headers: dict[str, str], authorization: str
    ) -> requests.Response:
        try:
            with self._slots:
                log.debug("GET %s", without_user_info(request.url))
                # Not streamed: the body is read inside the slot, and a broken body raises here.
                return session.get(
                    request.url,
                    headers=headers,
                    auth=ApiAuth(authorization, session),
                    timeout=self._timeout,
                    allow_redirects=True,
                )
        except _TRANSPORT_ERRORS as exc:
            self._counters.add("requests_sent")
            raise GitHubTransportError(
                method="GET",
                path=request.path,
                cause=type(exc).__name__,
                detail=self._redact(str(exc))[:ERROR_BODY_SNIPPET],
                retryable=True,
            ) from exc

    def _count(self, outcome: Outcome) -> None:
        self._counters.add("requests_sent")
        if outcome in _SPENDING_OUTCOMES:
            self._counters.add("budget_spent")
        if outcome is Outcome.NOT_MODIFIED:
            self._counters.add("not_modified")
        elif outcome is Outcome.SECONDARY_LIMIT:
            self._counters.add("secondary_limit_hits")

    def _interpret(
        self,
        request: Request,
        answer: _Answer,
        outcome: Outcome,
        cached: CachedResponse | None,
        state: _RequestState,
    ) -> GitHubResponse:
        if outcome is Outcome.NOT_MODIFIED:
            return self._not_modified(request, answer, cached)
        if outcome is Outcome.OK:
            return self._fresh(request, answer)
        status, path = answer.raw.status_code, request.path
        if outcome is Outcome.PRIMARY_LIMIT:
            raise self.limiter.primary_refused(answer.rate_limit, answer.resource, path, answer.key)
        if outcome is Outcome.SECONDARY_LIMIT:
            state.secondary_hits += 1
            raise self.limiter.secondary_refused(
                status,
                answer.raw.headers,
                resource=answer.resource,
                path=path,
                hit=state.secondary_hits,
                key=answer.key,
            )
        message = error_message(answer.body)
        if status == UNAUTHORIZED:
            raise self._unauthorized(request, answer, message, state)
        if outcome is Outcome.SERVER_ERROR:
            if request.shrinkable and status in PAGE_TOO_LARGE_STATUSES:
                raise PageTooLarge(method="GET", path=path, status=status, message=message)
            raise GitHubServerError(
                method="GET",
                path=path,
                status=status,
                message=message,
                retryable=status in RETRYABLE_STATUSES,
            )
        unavailable = repository_unavailable(path, status)
        if unavailable is not None:
            repo, reason = unavailable
            raise RepositoryUnavailable(repo, reason, method="GET", path=path, status=status, message=message)
        raise GitHubClientError(
            method="GET",
            path=path,
            status=status,
            message=message,
            documentation_url=answer.body.get("documentation_url")
            if isinstance(answer.body, Mapping)
            else None,
        )

    def _unauthorized(
        self, request: Request, answer: _Answer, message: str, state: _RequestState
    ) -> CredentialError:
        credential = answer.credential
        if credential.refreshable and not state.credential_refreshed:
            # An App's installation token expired or was revoked early: buy a new one, once.
            state.credential_refreshed = True
            credential.invalidate(request.path)
            self._counters.add("credential_refreshes")
            log.info("GET %s -> 401 on %s; retrying once with a new token", request.path, credential.label)
            retry = CredentialError(method="GET", path=request.path, status=UNAUTHORIZED, message=message)
            retry.retryable, retry.retry_after = True, NO_RETRY_DELAY_S
            return retry
        return CredentialError(
            method="GET",
            path=request.path,
            status=UNAUTHORIZED,
            message=f"{message or 'Bad credentials'}: GitHub refused {credential.label}; renew its token or key",
        )

    def _not_modified(
        self, request: Request, answer: _Answer, cached: CachedResponse | None
    ) -> GitHubResponse:
        raw = answer.raw
        if cached is None:
            raise GitHubServerError(
                method="GET", path=request.path, status=raw.status_code, message="304 without a cached copy"
            )
        # stored_at is the cache's wall-clock time, not the hook's (possibly simulated) clock.
        if self.http_cache is not None and datetime.now(UTC) - cached.stored_at > TOUCH_AFTER:
            self.http_cache.touch(answer.key, request.url)
        return GitHubResponse(
            status=raw.status_code,
            url=request.url,
            headers=raw.headers,
            json=cached.body,
            not_modified=True,
            from_cache=True,
            moved_to=moved_to(raw),
            final_url=raw.url,
            link_header=raw.headers.get("Link") or cached.link,
            rate_limit=answer.rate_limit,
        )

    def _fresh(self, request: Request, answer: _Answer) -> GitHubResponse:
        raw = answer.raw
        link = raw.headers.get("Link")
        etag = raw.headers.get("ETag")
        last_modified = raw.headers.get("Last-Modified")
        if self.http_cache is not None and raw.status_code == OK and (etag or last_modified):
            self.http_cache.put(
                answer.key,
                request.url,
                CachedResponse(etag=etag, last_modified=last_modified, link=link, body=answer.body),
            )
        location = moved_to(raw)
        if location is not None:
            log.info("GET %s moved permanently to %s", request.path, without_user_info(location))
        return GitHubResponse(
            status=raw.status_code,
            url=request.url,
            headers=raw.headers,
            json=answer.body,
            moved_to=location,
            final_url=raw.url,
            link_header=link,
            rate_limit=answer.rate_limit,
        )
