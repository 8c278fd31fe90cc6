"""GitHub's webhook deliveries API as the relay's recovery uses it: list a hook's recent deliveries, ask for a redelivery.

GitHub does not redeliver a failed delivery by itself; it keeps deliveries for 3 days and lists
them through the REST API
(https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries). This
module is the client of those endpoints for one hook, :class:`HookTarget`, named in
``GITHUB_SYNC_RELAY_HOOKS`` as ``org:<org>:<hook_id>``, ``repo:<owner>/<repo>:<hook_id>`` or
``app`` (the GitHub App's own webhook). :class:`HookDeliveriesClient` authenticates with a token
or with a GitHub App (its JWT for ``app``, an installation token otherwise, both through
:mod:`github_sync.github.credentials`), puts a timeout on every request, retries transient
failures a bounded number of times (tenacity) and turns GitHub's answers into named exceptions.

It must not decide what to redeliver (the relay's recovery loop does), touch the relay's table,
import Airflow, or let a token, a JWT or a private key into a log line, an exception or a repr.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from github_sync.config import ConfigError, validate_api_base_url
from github_sync.github.credentials import AppInstallationCredential, TokenCredential, app_jwt
from github_sync.github.errors import CredentialError, GitHubServerError, GitHubTransportError
from github_sync.github.owners import OwnerError, check_login, check_repository
from github_sync.github.ratelimit import (
    RateLimit,
    is_primary_limit,
    is_secondary_limit,
    retry_after_seconds,
)
from github_sync.github.session import ApiAuth, ApiSession, build_session, origin_of, without_user_info
from github_sync.webhooks.relay.forwarder import retry_wait

log = logging.getLogger(__name__)

ENV_RELAY_HOOKS = "GITHUB_SYNC_RELAY_HOOKS"
TargetKind = Literal["org", "repo", "app"]
# The largest page the deliveries listings serve
# (https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook).
PER_PAGE = 100
# (connect, read) seconds of every request.
DEFAULT_TIMEOUT = (5.0, 30.0)
DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF_INITIAL_S = 1.0
DEFAULT_BACKOFF_MAX_S = 10.0
# Pages followed at most in one listing (100 each): far more than 3 days of one hook usually hold.
MAX_PAGES = 200
ACCEPTED = 202
BAD_REQUEST = 400
UNAUTHORIZED = 401
NOT_FOUND = 404
UNPROCESSABLE = 422
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
MESSAGE_SNIPPET = 200  # characters of GitHub's message quoted in an exception


class HookTargetError(ConfigError):
    """A hook named in ``GITHUB_SYNC_RELAY_HOOKS`` is malformed; the message names the variable."""


class HookDeliveriesError(RuntimeError):
    """A deliveries request failed. Carries the method, the path and the status, never a credential."""

    def __init__(self, message: str, *, method: str, path: str, status: int | None = None) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status


class HookNotFoundError(HookDeliveriesError):
    """404 for a hook's listing: no such hook, or the credential may not administer it (GitHub hides both)."""


class RedeliveryRefusedError(HookDeliveriesError):
    """400, 404 or 422 for a redelivery (GitHub documents 400 and 422): unknown or expired delivery, or refused."""


class ListingTruncatedError(HookDeliveriesError):
    """The listing had more pages than :data:`MAX_PAGES`: the deliveries older than those read are unknown."""


class HookDeliveriesUnavailableError(HookDeliveriesError):
    """No usable answer after the bounded retries (connection errors, timeouts, 5xx)."""


class RateLimitedError(HookDeliveriesError):
    """403/429 for a rate limit; ``reset_at`` is when requests may go out again (``None``: unknown)."""

    def __init__(
        self, message: str, *, method: str, path: str, status: int, reset_at: datetime | None
    ) -> None:
        super().__init__(message, method=method, path=path, status=status)
        self.reset_at = reset_at


@dataclass(frozen=True)
class HookTarget:
    """One webhook whose deliveries the relay recovers: an organisation's, a repository's or the App's.

    ``hook_id`` 0 (configured as ``org:<org>`` or ``repo:<owner>/<repo>``) means "the hook that
    sent the relay's deliveries": the recovery takes the id from their ``X-GitHub-Hook-ID``.
    """

    kind: TargetKind
    owner: str = ""
    repo: str = ""
    hook_id: int = 0

    @classmethod
    def parse(cls, text: str) -> HookTarget:
        """``org:<org>[:<hook_id>]``, ``repo:<owner>/<repo>[:<hook_id>]`` or ``app``; raises :class:`HookTargetError`."""
        value = text.strip()
        if value == "app":
            return cls("app")
        kind, _, rest = value.partition(":")
        name, _, raw_id = rest.rpartition(":") if ":" in rest else (rest, "", "")
        source = f"{ENV_RELAY_HOOKS} entry {value!r}"
        if kind not in ("org", "repo") or not name:
            raise HookTargetError(
                f"{source} must be 'org:<org>:<hook_id>', 'repo:<owner>/<repo>:<hook_id>' or 'app'"
            )
        if raw_id and (not raw_id.isdigit() or int(raw_id) == 0):
            raise HookTargetError(f"{source}: the hook id must be a positive number, got {raw_id!r}")
        try:
            if kind == "org":
                return cls("org", check_login(name, source=source), "", int(raw_id or 0))
            owner, repo = check_repository(name, source=source)
        except OwnerError as exc:
            raise HookTargetError(str(exc)) from None
        return cls("repo", owner, repo, int(raw_id or 0))

    @property
    def path(self) -> str:
        """The API path of the hook's deliveries listing."""
        if self.kind == "app":
            return "/app/hook/deliveries"
        if not self.hook_id:
            raise ValueError(f"{self}: the hook id is not known yet")
        if self.kind == "org":
            return f"/orgs/{self.owner}/hooks/{self.hook_id}/deliveries"
        return f"/repos/{self.owner}/{self.repo}/hooks/{self.hook_id}/deliveries"

    def __str__(self) -> str:
        """The target as ``GITHUB_SYNC_RELAY_HOOKS`` writes it."""
        if self.kind == "app":
            return "app"
        name = self.owner if self.kind == "org" else f"{self.owner}/{self.repo}"
        return f"{self.kind}:{name}:{self.hook_id}" if self.hook_id else f"{self.kind}:{name}"

    # The X-GitHub-Hook-Installation-Target-Type of the deliveries this hook sends.
    @property
    def installation_target_type(self) -> str:
        """``organization``, ``repository`` or ``integration`` (the App's hook)."""
        return {"org": "organization", "repo": "repository", "app": "integration"}[self.kind]


def parse_hook_targets(text: str) -> list[HookTarget]:
    """The targets of ``GITHUB_SYNC_RELAY_HOOKS``: entries separated by commas or whitespace, no duplicates."""
    targets: list[HookTarget] = []
    for entry in text.replace(",", " ").split():
        target = HookTarget.parse(entry)
        if target in targets:
            raise HookTargetError(f"{ENV_RELAY_HOOKS} names {target} twice")
        targets.append(target)
    return targets


@dataclass(frozen=True, repr=False)
class AppCredentials:
    """A GitHub App's id (or client id) and private key (PEM); the key never shows in a repr."""

    app_id: str
    private_key: str

    def __repr__(self) -> str:
        return f"AppCredentials(app_id={self.app_id!r})"


@dataclass(frozen=True)
class DeliverySummary:
    """One delivery as a listing shows it (``hook-delivery-item``)."""

    id: int
    guid: str
    delivered_at: datetime
    status: str
    status_code: int
    redelivery: bool
    event: str
    action: str | None
    repository_id: int | None
    installation_id: int | None

    @property
    def ok(self) -> bool:
        """GitHub's test of a delivery: "a failed delivery will have a status value that is not OK"."""
        return self.status == "OK"

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> DeliverySummary:
        """Parse one item of a listing."""
        return cls(
            id=int(item["id"]),
            guid=str(item["guid"]),
            delivered_at=datetime.fromisoformat(str(item["delivered_at"]).replace("Z", "+00:00")),
            status=str(item.get("status") or ""),
            status_code=int(item.get("status_code") or 0),
            redelivery=bool(item.get("redelivery")),
            event=str(item.get("event") or ""),
            action=item.get("action"),
            repository_id=item.get("repository_id"),
            installation_id=item.get("installation_id"),
        )


class _TransientError(Exception):
    """An attempt that may succeed if tried again (connection error, timeout, 5xx)."""


class HookDeliveriesClient:
    """Lists a hook's deliveries and asks for redeliveries, on one API base URL with one credential."""

    def __init__(
        self,
        api_url: str,
        credential: str | AppCredentials,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_initial: float = DEFAULT_BACKOFF_INITIAL_S,
        backoff_max: float = DEFAULT_BACKOFF_MAX_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        per_page: int = PER_PAGE,
    ) -> None:
        """Create the client; nothing is sent yet.

        Args:
            api_url: GitHub's API base URL (``https://api.github.com``).
            credential: a token, or an App (its JWT for the ``app`` target, an installation
                token for organisation and repository hooks).
            timeout: (connect, read) seconds of every request.
            attempts: tries of a request that fails transiently (connection, timeout, 5xx).
            backoff_initial: first wait between tries, doubled up to ``backoff_max``.
            backoff_max: longest wait between tries.
            clock: current aware time in agreement with GitHub's (the JWT's ``iat``/``exp``).
            per_page: deliveries asked for per page (at most 100).
        """
        self.api_url = validate_api_base_url("GitHub API URL of the relay", api_url)
        self._session: ApiSession = build_session(self.api_url, max_connections=1)
        self._timeout = timeout
        self._attempts = attempts
        self._wait = retry_wait(backoff_initial, backoff_max)
        self._clock = clock
        self._per_page = min(max(per_page, 1), PER_PAGE)
        self._app = credential if isinstance(credential, AppCredentials) else None
        self._installation: AppInstallationCredential | None = None
        self._token: TokenCredential | None = None
        if self._app is not None:
            self._installation = AppInstallationCredential(
                app_id=self._app.app_id,
                private_key=self._app.private_key,
                base_url=self.api_url,
                send=self._session.send_unauthenticated,
                clock=clock,
                label="relay hook deliveries",
            )
        elif isinstance(credential, str) and credential:
            self._token = TokenCredential(credential, label="relay hook deliveries", api=self.api_url)
        else:
            raise ValueError("HookDeliveriesClient needs a token or AppCredentials")

    def __repr__(self) -> str:
        kind = "app" if self._app is not None else "token"
        return f"{type(self).__name__}(api_url={without_user_info(self.api_url)!r}, credential={kind})"

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    # -- the two operations ----------------------------------------------------------------------
    def recent_deliveries(
        self, target: HookTarget, since: datetime | None = None
    ) -> Iterator[DeliverySummary]:
        """The hook's deliveries, newest first, across the listing's cursor pages, down to ``since``.

        https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook
        (the organisation's and the App's page the same way). Stops at the first delivery older
        than ``since``, to the second (``None``: every delivery GitHub still keeps, 3 days).

        Raises:
            HookNotFoundError: 404 (no such hook, or the credential may not administer it).
            ListingTruncatedError: More than MAX_PAGES pages (after yielding those read).
            RateLimitedError, HookDeliveriesUnavailableError, HookDeliveriesError.
        """
        # GitHub's times have whole seconds: a delivery in the second of `since` is kept.
        floor = since.replace(microsecond=0) if since is not None else None
        url: str | None = f"{self.api_url}{target.path}?per_page={self._per_page}"
        pages = 0
        while url is not None and pages < MAX_PAGES:
            resp = self._request("GET", url, target)
            if resp.status_code == NOT_FOUND:
                raise HookNotFoundError(
                    f"GET {target.path}: 404, no hook {target} for this credential",
                    method="GET",
                    path=target.path,
                    status=NOT_FOUND,
                )
            self._raise_for(resp, "GET", target.path)
            pages += 1
            for item in _listing_items(resp, target.path):
                delivery = _summary_of(item, target.path)
                if floor is not None and delivery.delivered_at < floor:
                    return
                yield delivery
            url = self._next_page(resp)
        if url is not None:
            # Said, not just logged: the caller must not take the unread deliveries as compared.
            raise ListingTruncatedError(
                f"GET {target.path}: more than {MAX_PAGES} pages; older deliveries were not read",
                method="GET",
                path=target.path,
            )

    def redeliver(self, target: HookTarget, delivery_id: int) -> None:
        """Ask GitHub to send delivery ``delivery_id`` again (same GUID); returns on 202 Accepted.

        https://docs.github.com/en/rest/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook
        A timeout or 5xx is tried again like any request, so GitHub may redeliver twice: the
        relay stores a delivery once per GUID, so a second copy changes nothing.

        Raises:
            RedeliveryRefusedError: 400, 404 or 422 (unknown or expired delivery, or refused).
            RateLimitedError, HookDeliveriesUnavailableError, HookDeliveriesError.
        """
        path = f"{target.path}/{int(delivery_id)}/attempts"
        resp = self._request("POST", f"{self.api_url}{path}", target)
        if resp.status_code in (BAD_REQUEST, NOT_FOUND, UNPROCESSABLE):
            raise RedeliveryRefusedError(
                f"POST {path}: {resp.status_code} {_message(resp)}",
                method="POST",
                path=path,
                status=resp.status_code,
            )
        self._raise_for(resp, "POST", path)
        if resp.status_code != ACCEPTED:
            log.info(
                "redelivery of %s on %s answered %d (202 expected)", delivery_id, target, resp.status_code
            )
        log.info("asked GitHub to redeliver delivery %s of hook %s", delivery_id, target)

    # -- HTTP --------------------------------------------------------------------------------------
    def _authorization(self, target: HookTarget, path: str) -> str:
        if self._token is not None:
            if target.kind == "app":
                raise HookTargetError(
                    f"{ENV_RELAY_HOOKS}: the 'app' hook needs the GitHub App's credentials, not a token"
                )
            return self._token.authorization(path)
        assert self._app is not None and self._installation is not None
        if target.kind == "app":
            # The App's webhook answers its JWT only
            # (https://docs.github.com/en/rest/apps/webhooks#list-deliveries-for-an-app-webhook).
            return f"Bearer {app_jwt(self._app.app_id, self._app.private_key, self._clock())}"
        return self._installation.authorization(path)

    def _request(self, method: str, url: str, target: HookTarget) -> requests.Response:
        path = url.removeprefix(self.api_url).split("?", 1)[0]
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_TransientError),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(method, url, path, target)
        except _TransientError as exc:
            raise HookDeliveriesUnavailableError(
                f"{method} {path}: no answer after {self._attempts} attempts ({exc})",
                method=method,
                path=path,
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _attempt(self, method: str, url: str, path: str, target: HookTarget) -> requests.Response:
        try:
            authorization = self._authorization(target, path)
        except (GitHubTransportError, GitHubServerError) as exc:
            # Buying the installation token failed on the way (its errors carry no secret).
            raise _TransientError(str(exc)) from None
        except CredentialError as exc:
            raise HookDeliveriesError(
                f"{method} {path}: the App's credentials were refused ({exc})", method=method, path=path
            ) from None
        auth = ApiAuth(authorization, self._session)
        try:
            resp = self._session.request(method, url, auth=auth, timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:  # connection, timeout, a body cut short
            # The exception's text names host and path only; the token is in no URL.
            log.warning("%s %s failed: %s", method, path, type(exc).__name__)
            raise _TransientError(type(exc).__name__) from None
        if resp.status_code in TRANSIENT_STATUSES:
            log.warning("%s %s answered %d", method, path, resp.status_code)
            raise _TransientError(f"HTTP {resp.status_code}")
        if resp.status_code == UNAUTHORIZED and self._installation is not None and target.kind != "app":
            # An installation token expired or was revoked: buy another on the next attempt.
            self._installation.invalidate(path)
        return resp

    def _raise_for(self, resp: requests.Response, method: str, path: str) -> None:
        status = resp.status_code
        if status < 300:
            return
        headers = resp.headers
        if is_primary_limit(status, headers) or is_secondary_limit(status, headers, _body(resp)):
            window = RateLimit.from_headers(headers)
            wait = retry_after_seconds(headers)
            reset_at = self._clock() + timedelta(seconds=wait) if wait is not None else None
            if reset_at is None and window is not None and window.remaining == 0:
                reset_at = window.resume_at()
            raise RateLimitedError(
                f"{method} {path}: rate limited ({status}) until {reset_at.isoformat() if reset_at else 'unknown'}",
                method=method,
                path=path,
                status=status,
                reset_at=reset_at,
            )
        raise HookDeliveriesError(
            f"{method} {path}: {status} {_message(resp)}", method=method, path=path, status=status
        )

    def _next_page(self, resp: requests.Response) -> str | None:
        url = resp.links.get("next", {}).get("url")
        if url is None:
            return None
        if origin_of(url) != self._session.origin:
            # The credential goes to the API's origin only; a Link elsewhere is not followed.
            raise HookDeliveriesError(
                f"the next page is on another origin ({without_user_info(url)}); not followed",
                method="GET",
                path=without_user_info(url),
            )
        return str(url)


def _body(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


def _message(resp: requests.Response) -> str:
    body = _body(resp)
    message = body.get("message") if isinstance(body, dict) else body
    return str(message or "")[:MESSAGE_SNIPPET]


def _listing_items(resp: requests.Response, path: str) -> list[Any]:
    """A listing page's items, or a named error for a page that is not a JSON array."""
    try:
        items = resp.json()
    except ValueError:
        items = None
    if not isinstance(items, list):
        raise HookDeliveriesError(f"GET {path}: the page is not a JSON array", method="GET", path=path)
    return items


def _summary_of(item: Any, path: str) -> DeliverySummary:
    """One listing item, or a named error naming what was malformed."""
    try:
        return DeliverySummary.from_item(item)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise HookDeliveriesError(
            f"GET {path}: a listed delivery is malformed ({type(exc).__name__}: {exc})",
            method="GET",
            path=path,
        ) from None
