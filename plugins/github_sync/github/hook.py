"""``GitHubHook``: the connection to GitHub's REST API and the transport around it.

The hook owns one pooled ``requests`` session and everything between "send a GET" and
"here is the decoded JSON": authentication, the primary-limit budget and its reserve,
secondary limits, retries of 5xx and transport errors, redirects, conditional requests
(ETag cache) and Link pagination. It knows nothing about what a repository or an issue
means; that is the sync's business.

It is an Airflow hook on the ``github`` connection type (token in ``password``, optional
API base URL in ``host``), the same connection the GitHub provider's ``GithubHook`` uses,
and can also be built explicitly outside Airflow::

    hook = GitHubHook(base_url="http://127.0.0.1:8765", token="...", http_cache=InMemoryHttpCache())
    for issue in hook.paginate("/repos/acme/api/issues", {"state": "all"}):
        ...

Rate-limit exhaustion longer than ``max_wait_s`` raises :class:`RateLimitExhausted`
(carrying ``reset_at``) instead of sleeping, so an Airflow task can defer; see
:mod:`github_sync.github.errors`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import tenacity
from airflow.sdk import BaseHook
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from github_sync import __version__
from github_sync.config import ConfigError
from github_sync.github.errors import (
    GitHubClientError,
    GitHubError,
    GitHubServerError,
    GitHubTransportError,
    PageTooLarge,
    RateLimitExhausted,
    RepositoryMoved,
    RepositoryUnavailable,
    SecondaryRateLimitExceeded,
    UnavailableReason,
)
from github_sync.github.http_cache import TOUCH_AFTER, CachedResponse, HttpCache, token_hash
from github_sync.github.pagination import (
    MAX_PER_PAGE,
    MIN_PER_PAGE,
    PER_PAGE_PARAM,
    follow_pages,
    page_number,
    parse_link_header,
    with_query,
)
from github_sync.github.ratelimit import (
    DEFAULT_MAX_WAIT_S,
    DEFAULT_RESERVE_FRACTION,
    RESOURCE_CORE,
    RateLimit,
    RateLimitTracker,
    resource_for_path,
)
from github_sync.github.retry import (
    PAGE_TOO_LARGE_STATUSES,
    RETRYABLE_STATUSES,
    Outcome,
    RetryPolicy,
    classify,
)
from github_sync.github.retry import retry_after_seconds as _retry_after_seconds

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
USER_AGENT = f"github-sync/{__version__}"
# Per-process cap of concurrent requests: GitHub's secondary limit allows at most 100 per
# token, and a few parallel connections already saturate what one worker can parse.
DEFAULT_MAX_IN_FLIGHT = 8
# (connect, read) seconds: connecting is quick or broken; big listing pages can be slow.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)
# Characters of a non-JSON error body quoted in an exception.
ERROR_BODY_SNIPPET = 200
REDACTED = "***"
# 404 under these repository sub-resources means "this repository has none", not "gone".
OPTIONAL_REPO_RESOURCES = frozenset({"readme", "license", "pages", "community", "topics"})
_UNAVAILABLE_BY_STATUS: dict[int, UnavailableReason] = {404: "gone", 409: "empty", 451: "blocked"}
_REPO_PATH = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?$")
# Answers that count against the primary limit: 304s and rate-limit refusals do not, and a
# 5xx is GitHub's failure (an estimate: GitHub does not document it; the headers are authoritative).
_SPENDING_OUTCOMES = frozenset({Outcome.OK, Outcome.CLIENT_ERROR})
# requests exceptions that mean "no HTTP answer": retried like a 5xx.
_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass(frozen=True)
class GitHubResponse:
    """One answered GET.

    Attributes:
        status: HTTP status of the final response (304 for a conditional hit).
        url: the URL that was asked for (the cache key; before redirects).
        headers: headers of the final response (case-insensitive mapping).
        json: decoded JSON body; on a 304 the stored body of the earlier 200.
        not_modified: GitHub answered 304: nothing changed since the stored copy.
        from_cache: the body comes from the conditional-request cache.
        moved_to: absolute URL of the ``Location`` of a 301 on the way (renamed or
            transferred repository), else ``None``.
        final_url: the URL that answered, after redirects.
        link_header: the ``Link`` header (on a 304, the stored one).
        rate_limit: the rate-limit window reported by this response, if any.
    """

    status: int
    url: str
    headers: Mapping[str, str]
    json: Any
    not_modified: bool = False
    from_cache: bool = False
    moved_to: str | None = None
    final_url: str | None = None
    link_header: str | None = None
    rate_limit: RateLimit | None = None

    @property
    def links(self) -> dict[str, str]:
        """``{rel: url}`` from the ``Link`` header (``next``, ``last``, ...)."""
        return parse_link_header(self.link_header)

    @property
    def next_url(self) -> str | None:
        """The ``rel="next"`` URL, or ``None`` on the last page."""
        return self.links.get("next")

    @property
    def moved_full_name(self) -> str | None:
        """``owner/name`` of a moved repository (from the new location's body), else ``None``."""
        if self.moved_to is None or not isinstance(self.json, Mapping):
            return None
        full_name = self.json.get("full_name")
        return str(full_name) if full_name else None

    @property
    def items(self) -> list[Any]:
        """The items of a listing page (see :func:`page_items`)."""
        return page_items(self.json)


def page_items(body: Any) -> list[Any]:
    """Return the items of a listing page body.

    Most listings are JSON arrays; a few wrap them (``{"total_count": n, "items": [...]}``
    for search, ``{"repositories": [...]}`` for installations).

    Args:
        body: the decoded page body.

    Raises:
        TypeError: the body is not a listing.
    """
    if body is None:
        return []
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        lists = [value for value in body.values() if isinstance(value, list)]
        if "items" in body and isinstance(body["items"], list):
            return body["items"]
        if len(lists) == 1:
            return lists[0]
    raise TypeError(f"not a listing body: {type(body).__name__}")


@dataclass(frozen=True)
class HookStats:
    """Counters of one hook, as returned by :attr:`GitHubHook.stats`.

    Attributes:
        requests_sent: HTTP requests that went out (each retry and each page counts).
        not_modified: 304 answers to conditional requests (free of budget).
        retries: attempts repeated after a 5xx, transport error or rate limit.
        waits: sleeps of the hook (rate-limit waits and retry backoffs).
        wait_seconds: total seconds of those sleeps.
        budget_spent: answers that counted against the primary limit (2xx and 4xx; not 304s,
            rate-limit refusals or 5xx).
        secondary_limit_hits: secondary-limit refusals.
        page_size_reductions: times a listing halved ``per_page`` after a 502/504.
    """

    requests_sent: int = 0
    not_modified: int = 0
    retries: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    budget_spent: int = 0
    secondary_limit_hits: int = 0
    page_size_reductions: int = 0

    def as_dict(self) -> dict[str, float]:
        """Return the counters as a plain dict (for logs and XComs)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def since(self, earlier: HookStats) -> HookStats:
        """The counters added after ``earlier`` (a snapshot of the same hook)."""
        return HookStats(**{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)})


class _Counters:
    """Thread-safe mutable twin of :class:`HookStats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {f.name: f.default for f in fields(HookStats)}  # type: ignore[misc]

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def snapshot(self) -> HookStats:
        with self._lock:
            return HookStats(**self._values)  # type: ignore[arg-type]


class _BearerAuth(AuthBase):
    """Adds ``Authorization: Bearer`` only to requests for the API's own origin.

    A full URL handed to the hook (a ``Link``, a body's ``url`` field) could point at
    another host; the token must never go there.
    """

    def __init__(self, token: str, origin: tuple[str, str]) -> None:
        self._token = token
        self._origin = origin

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if _origin(request.url or "") == self._origin:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return f"_BearerAuth(origin={self._origin!r})"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _normalize_base_url(host: str) -> str:
    host = host.strip()
    if "://" not in host:
        # The provider's form asks for "https://{hostname}/api/v3", but people type bare hosts.
        host = f"https://{host}"
    return host.rstrip("/")


def _error_message(body: Any) -> str:
    if isinstance(body, Mapping):
        return str(body.get("message") or "")
    if isinstance(body, str):
        return body[:ERROR_BODY_SNIPPET]
    return ""


@dataclass
class _RequestState:
    """What one logical request remembers across its attempts."""

    secondary_hits: int = 0


class GitHubHook(BaseHook):
    """Airflow hook for GitHub's REST API with rate limits, retries, ETags and pagination.

    Connection (type ``github``): token in ``password``; ``host`` optionally the API base
    URL (``https://ghe.example.com/api/v3``, ``http://127.0.0.1:8765``), default
    ``https://api.github.com``. Explicit ``base_url``/``token`` arguments take precedence;
    the connection is only read (lazily, on the first request) for values not given.

    The hook is safe to share between threads; at most ``max_in_flight`` requests of it
    are on the wire at once.
    """

    conn_name_attr = "github_conn_id"
    default_conn_name = "github_default"
    conn_type = "github"
    hook_name = "GitHub (github-sync)"

    def __init__(
        self,
        github_conn_id: str = default_conn_name,
        *,
        base_url: str | None = None,
        token: str | None = None,
        http_cache: HttpCache | None = None,
        reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        min_per_page: int = MIN_PER_PAGE,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], datetime] | None = None,
        logger_name: str | None = None,
    ) -> None:
        """Create the hook; nothing is read or sent until the first request.

        Args:
            github_conn_id: Airflow connection id (type ``github``).
            base_url: API base URL; overrides the connection's ``host``.
            token: GitHub token; overrides the connection's ``password``.
            http_cache: conditional-request store (``InMemoryHttpCache``,
                ``PostgresHttpCache``); ``None`` disables conditional requests.
            reserve_fraction: share of each rate-limit window never spent (0..1).
            max_wait_s: longest wait the hook sleeps; longer ones raise
                :class:`RateLimitExhausted` so the caller can defer.
            max_in_flight: concurrent requests of this hook (also the connection-pool size).
            timeout: ``(connect, read)`` timeout in seconds.
            retry_policy: retry/backoff settings; default :class:`RetryPolicy()`.
            min_per_page: floor of the page size when shrinking pages after 502/504.
            sleep: how to wait (default ``time.sleep``); tests pass one that advances a
                simulated clock.
            clock: current aware UTC time (default ``datetime.now(UTC)``); must agree with
                the server's clock for ``x-ratelimit-reset`` and with ``sleep``.
            logger_name: passed to ``BaseHook``.
        """
        super().__init__(logger_name=logger_name)
        if not 0 <= reserve_fraction < 1:
            raise ConfigError("reserve_fraction must be in [0, 1)")
        if max_in_flight < 1:
            raise ConfigError("max_in_flight must be >= 1")
        self.github_conn_id = github_conn_id
        self._explicit_base_url = base_url
        self._explicit_token = token
        self.http_cache = http_cache
        self.reserve_fraction = reserve_fraction
        self.max_wait_s = max_wait_s
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.retry_policy = retry_policy or RetryPolicy()
        self.min_per_page = min_per_page
        self._sleep = sleep or time.sleep
        self._clock = clock or (lambda: datetime.now(UTC))
        self._config_lock = threading.Lock()
        self._base_url: str | None = None
        self._token: str | None = None
        self._token_hash: str | None = None
        self._session: requests.Session | None = None
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._tracker = RateLimitTracker()
        self._counters = _Counters()
        self._pause_lock = threading.Lock()
        self._paused_until: datetime | None = None
        if token:
            _mask_secret(token)

    # ------------------------------------------------------------------ connection

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form of the ``github`` type (same fields as the GitHub provider's)."""
        return {
            "hidden_fields": ["schema", "port", "login", "extra"],
            "relabeling": {"host": "GitHub API base URL (optional)", "password": "GitHub access token"},
            "placeholders": {"host": "https://{hostname}/api/v3 (GitHub Enterprise); empty for github.com"},
        }

    def __repr__(self) -> str:
        # Never the token; the base URL only once known (repr must not fetch a connection).
        return f"{type(self).__name__}(github_conn_id={self.github_conn_id!r}, base_url={self._base_url!r})"

    def _configure(self) -> tuple[str, str]:
        with self._config_lock:
            if self._base_url is None or self._token is None:
                base_url, token = self._explicit_base_url, self._explicit_token
                if base_url is None or token is None:
                    conn = self.get_connection(self.github_conn_id)
                    base_url = base_url or conn.host or DEFAULT_BASE_URL
                    token = token or conn.password
                if not token:
                    raise ConfigError(
                        f"no GitHub token: set the password of connection {self.github_conn_id!r}"
                        " or pass token="
                    )
                self._base_url = _normalize_base_url(base_url)
                self._token = token
                self._token_hash = token_hash(token)
            return self._base_url, self._token

    @property
    def base_url(self) -> str:
        """The API base URL without trailing slash (reads the connection if needed)."""
        return self._configure()[0]

    def get_conn(self) -> requests.Session:
        """Return the hook's pooled ``requests`` session (created on first use)."""
        base_url, token = self._configure()
        with self._config_lock:
            if self._session is None:
                session = requests.Session()
                session.headers.update(
                    {"Accept": MEDIA_TYPE, "X-GitHub-Api-Version": API_VERSION, "User-Agent": USER_AGENT}
                )
                session.auth = _BearerAuth(token, _origin(base_url))
                # urllib3's own retries are off: the hook's retry policy decides, once.
                adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.max_in_flight, max_retries=0)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                self._session = session
            return self._session

    def close(self) -> None:
        """Close the pooled connections (the hook opens new ones if used again)."""
        with self._config_lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def test_connection(self) -> tuple[bool, str]:
        """Check the token against ``GET /rate_limit`` (free of budget), for Airflow's UI.

        Returns:
            ``(ok, message)``; the message never contains the token.
        """
        try:
            response = self.get("/rate_limit", conditional=False)
            core = response.json.get("resources", {}).get(RESOURCE_CORE, {}) if response.json else {}
            return True, (
                f"Connected to {self.base_url}: core rate limit {core.get('remaining', '?')}/"
                f"{core.get('limit', '?')} requests left"
            )
        except Exception as exc:  # the UI wants a message, whatever failed
            return False, self._redact(f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ public API

    @property
    def stats(self) -> HookStats:
        """A snapshot of the hook's counters."""
        return self._counters.snapshot()

    @property
    def rate_limits(self) -> dict[str, RateLimit]:
        """The last known rate-limit window per resource (``core``, ``search``, ``graphql``)."""
        return self._tracker.snapshot()

    def rate_limit(self, resource: str = RESOURCE_CORE) -> RateLimit | None:
        """The last known window of ``resource``, or ``None`` before any response reported it."""
        return self._tracker.get(resource)

    def url_for(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """Build the absolute URL of ``path`` (or keep a full URL) with ``params`` added.

        Args:
            path: API path (``/repos/acme/api``) or a full URL from GitHub.
            params: query parameters (``None`` values are dropped, booleans become true/false).
        """
        if path.startswith(("http://", "https://")):
            url = path
        else:
            url = f"{self.base_url}/{path.lstrip('/')}"
        if params:
            url = with_query(url, {k: _param(v) for k, v in params.items() if v is not None})
        return url

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        conditional: bool = True,
        raise_on_move: bool = False,
    ) -> GitHubResponse:
        """GET one resource.

        Args:
            path: API path (``/repos/acme/api``) or a full URL on the API's host.
            params: query parameters.
            conditional: send ``If-None-Match`` when the cache has an ETag for this URL.
            raise_on_move: raise :class:`RepositoryMoved` (after following it) on a 301.

        Returns:
            The response; ``not_modified``/``from_cache`` tell a 304 served from the cache.

        Raises:
            GitHubClientError: 4xx other than a rate limit (``RepositoryUnavailable`` for
                404/409/451 under ``/repos/{owner}/{repo}``).
            GitHubServerError: 5xx after the bounded retries.
            GitHubTransportError: no answer after the bounded retries.
            RateLimitExhausted: the budget comes back later than ``max_wait_s`` from now.
            RepositoryMoved: only with ``raise_on_move``.
        """
        response = self._request(self.url_for(path, params), shrinkable=False, conditional=conditional)
        if raise_on_move and response.moved_to is not None:
            raise RepositoryMoved(
                old_path=self._api_path(response.url),
                location=response.moved_to,
                new_full_name=response.moved_full_name,
                response=response,
            )
        return response

    def iter_pages(
        self, path: str, params: Mapping[str, Any] | None = None, per_page: int = MAX_PER_PAGE
    ) -> Iterator[GitHubResponse]:
        """Yield every page of a listing, following ``Link: rel="next"`` as given.

        Each page is a conditional request; ``page.not_modified`` tells the page is the
        same as last time (its ``json`` is the stored copy and it cost no budget). A
        listing whose pages are all ``not_modified`` is unchanged.

        Args:
            path: API path of the listing.
            params: query parameters of the first page (later pages use GitHub's URLs).
            per_page: page size, at most 100; halved on 502/504 for the rest of the listing.

        Raises:
            PaginationLoopError: GitHub's ``next`` link repeated an earlier page.
            Everything :meth:`get` raises.
        """
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        first_url = self.url_for(path, {**(params or {}), PER_PAGE_PARAM: per_page})
        api_path = self._api_path(first_url)

        def fetch(url: str, shrinkable: bool) -> GitHubResponse:
            return self._request(url, shrinkable=shrinkable, conditional=True)

        def on_shrink(_path: str, _old: int, _new: int) -> None:
            self._counters.add("page_size_reductions")

        yield from follow_pages(
            fetch, first_url, path=api_path, min_per_page=self.min_per_page, on_shrink=on_shrink
        )

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, per_page: int = MAX_PER_PAGE
    ) -> Iterator[Any]:
        """Yield every item of a listing, in GitHub's order, across all pages.

        Args:
            path: API path of the listing.
            params: query parameters of the first page.
            per_page: page size, at most 100.

        Raises:
            Everything :meth:`iter_pages` raises.
        """
        for page in self.iter_pages(path, params, per_page=per_page):
            yield from page.items

    def count(self, path: str, params: Mapping[str, Any] | None = None) -> int:
        """Count the items of a listing with one request (``per_page=1``, ``rel="last"``).

        E.g. ``count("/repos/acme/api/commits")`` (default branch) or
        ``count("/repos/acme/api/contributors", {"anon": 1})``. Without a ``last`` link the
        single page holds all items (0 or 1); if GitHub only gives cursors, the listing is
        walked and counted (more requests). An empty repository (409) counts 0.

        Args:
            path: API path of the listing.
            params: query parameters.

        Raises:
            RepositoryUnavailable: the repository is gone or blocked (not for empty).
            Everything :meth:`get` raises.
        """
        try:
            # Unconditional: GitHub's ETag covers the body, not the Link header, so a cached
            # one-item page could answer 304 while its rel="last" (the count) moved on.
            response = self.get(path, {**(params or {}), PER_PAGE_PARAM: 1}, conditional=False)
        except RepositoryUnavailable as exc:
            if exc.reason == "empty":
                return 0
            raise
        links = response.links
        last = page_number(links.get("last"))
        if last is not None:
            return last
        if "next" in links:
            log.info(
                "GET %s has no numbered last page; counting by walking the listing", self._api_path(path)
            )
            return sum(1 for _ in self.paginate(path, params))
        return len(response.items)

    # ------------------------------------------------------------------ transport

    def _api_path(self, url: str) -> str:
        # The path relative to the API base (GHE bases end in /api/v3), for messages and matching.
        path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
        base_path = urlsplit(self._base_url or "").path.rstrip("/")
        if base_path and path.startswith(base_path + "/"):
            path = path[len(base_path) :]
        return path or "/"

    def _redact(self, text: str) -> str:
        token = self._token or self._explicit_token
        return text.replace(token, REDACTED) if token else text

    def _sleep_for(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self._counters.add("waits")
        self._counters.add("wait_seconds", seconds)
        self._sleep(seconds)

    def _await_pause(self) -> None:
        # A secondary limit pauses every thread of the hook: GitHub counts it per token.
        while True:
            with self._pause_lock:
                until = self._paused_until
            if until is None:
                return
            wait = (until - self._clock()).total_seconds()
            if wait <= 0:
                return
            self._sleep_for(wait)

    def _await_budget(self, resource: str, path: str) -> None:
        while True:
            now = self._clock()
            resume_at = self._tracker.try_acquire(resource, now=now, reserve_fraction=self.reserve_fraction)
            if resume_at is None:
                return
            wait = (resume_at - now).total_seconds()
            if self._tracker.first_report_of_exhaustion(resource, resume_at):
                known = self._tracker.get(resource)
                log.warning(
                    "GitHub %s rate limit at its reserve (%s of %s left, reserve %.0f%%); resuming at %s",
                    resource,
                    known.remaining if known else "?",
                    known.limit if known else "?",
                    self.reserve_fraction * 100,
                    resume_at.isoformat(),
                )
            if wait > self.max_wait_s:
                raise RateLimitExhausted(resource, resume_at, path=path)
            self._sleep_for(wait)

    def _pause_until(self, until: datetime) -> None:
        with self._pause_lock:
            if self._paused_until is None or until > self._paused_until:
                self._paused_until = until

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

    def _request(self, url: str, *, shrinkable: bool, conditional: bool) -> GitHubResponse:
        path = self._api_path(url)
        state = _RequestState()
        return self.retry_policy.call(
            lambda: self._attempt(url, path, shrinkable=shrinkable, conditional=conditional, state=state),
            sleep=self._sleep_for,
            before_sleep=self._before_retry,
        )

    def _attempt(
        self, url: str, path: str, *, shrinkable: bool, conditional: bool, state: _RequestState
    ) -> GitHubResponse:
        session = self.get_conn()
        cache_key_hash = self._token_hash or ""
        cached = self.http_cache.get(cache_key_hash, url) if (conditional and self.http_cache) else None
        headers: dict[str, str] = {}
        if cached is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            elif cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        if not headers:
            cached = None

        self._await_pause()
        resource = resource_for_path(path)
        self._await_budget(resource, path)
        try:
            try:
                with self._slots:
                    log.debug("GET %s", url)
                    raw = session.get(url, headers=headers, timeout=self.timeout, allow_redirects=True)
                    content = raw.content
            except _TRANSPORT_ERRORS as exc:
                self._counters.add("requests_sent")
                raise GitHubTransportError(
                    method="GET",
                    path=path,
                    cause=type(exc).__name__,
                    detail=self._redact(str(exc))[:ERROR_BODY_SNIPPET],
                    retryable=True,
                ) from exc
            rate_limit = RateLimit.from_headers(raw.headers)
            if rate_limit is not None:
                self._tracker.update(rate_limit)
        finally:
            self._tracker.release(resource)

        status = raw.status_code
        self._counters.add("requests_sent")
        log.debug("GET %s -> %d", url, status)
        body = _decode(content, raw.headers.get("Content-Type", ""))
        outcome = classify(status, raw.headers, body)
        if outcome in _SPENDING_OUTCOMES:
            self._counters.add("budget_spent")

        if outcome is Outcome.NOT_MODIFIED:
            self._counters.add("not_modified")
            if cached is None:
                raise GitHubServerError(
                    method="GET", path=path, status=status, message="304 without a cached copy"
                )
            if self.http_cache is not None and datetime.now(UTC) - cached.stored_at > TOUCH_AFTER:
                self.http_cache.touch(cache_key_hash, url)
            return GitHubResponse(
                status=status,
                url=url,
                headers=raw.headers,
                json=cached.body,
                not_modified=True,
                from_cache=True,
                moved_to=_moved_to(raw),
                final_url=raw.url,
                link_header=raw.headers.get("Link") or cached.link,
                rate_limit=rate_limit,
            )
        if outcome is Outcome.OK:
            link = raw.headers.get("Link")
            etag = raw.headers.get("ETag")
            last_modified = raw.headers.get("Last-Modified")
            if self.http_cache is not None and status == 200 and (etag or last_modified):
                self.http_cache.put(
                    cache_key_hash,
                    url,
                    CachedResponse(etag=etag, last_modified=last_modified, link=link, body=body),
                )
            moved_to = _moved_to(raw)
            if moved_to is not None:
                log.info("GET %s moved permanently to %s", path, moved_to)
            return GitHubResponse(
                status=status,
                url=url,
                headers=raw.headers,
                json=body,
                moved_to=moved_to,
                final_url=raw.url,
                link_header=link,
                rate_limit=rate_limit,
            )
        if outcome is Outcome.PRIMARY_LIMIT:
            resource = rate_limit.resource if rate_limit is not None else resource
            if rate_limit is not None:
                resume_at = rate_limit.resume_at()
                self._tracker.mark_exhausted(resource, rate_limit.reset)
            else:
                resume_at = self._clock() + timedelta(seconds=self.retry_policy.secondary_min_wait_s)
                self._pause_until(resume_at)
            error = RateLimitExhausted(resource, resume_at, path=path)
            # Retried: the next attempt's budget check sleeps until the reset, or raises a
            # non-retryable RateLimitExhausted when that is longer than max_wait_s.
            error.retryable, error.retry_after = True, 0.0
            raise error
        if outcome is Outcome.SECONDARY_LIMIT:
            self._counters.add("secondary_limit_hits")
            state.secondary_hits += 1
            retry_after = _retry_after_seconds(raw.headers)
            wait = self.retry_policy.secondary_wait(state.secondary_hits, retry_after)
            resume_at = self._clock() + timedelta(seconds=wait)
            log.warning(
                "GitHub secondary rate limit on GET %s (%d, retry-after %s); pausing %.0f s",
                path,
                status,
                retry_after,
                wait,
            )
            error = SecondaryRateLimitExceeded(resource, resume_at, path=path)
            if state.secondary_hits <= self.retry_policy.secondary_max_hits and wait <= self.max_wait_s:
                self._pause_until(resume_at)
                # The pause check of the next attempt does the waiting, for every thread.
                error.retryable, error.retry_after = True, 0.0
            raise error
        message = _error_message(body)
        if outcome is Outcome.SERVER_ERROR:
            if shrinkable and status in PAGE_TOO_LARGE_STATUSES:
                raise PageTooLarge(method="GET", path=path, status=status, message=message)
            raise GitHubServerError(
                method="GET",
                path=path,
                status=status,
                message=message,
                retryable=status in RETRYABLE_STATUSES,
            )
        unavailable = _repository_unavailable(path, status)
        if unavailable is not None:
            repo, reason = unavailable
            raise RepositoryUnavailable(repo, reason, method="GET", path=path, status=status, message=message)
        raise GitHubClientError(
            method="GET",
            path=path,
            status=status,
            message=message,
            documentation_url=body.get("documentation_url") if isinstance(body, Mapping) else None,
        )


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decode(content: bytes, content_type: str) -> Any:
    if not content:
        return None
    if "json" in content_type.lower() or content[:1] in (b"{", b"["):
        try:
            return json.loads(content)
        except ValueError:
            pass
    return content.decode("utf-8", errors="replace")


def _moved_to(raw: requests.Response) -> str | None:
    for hop in raw.history:
        if hop.status_code == 301 and hop.headers.get("Location"):
            return urljoin(hop.url, hop.headers["Location"])
    return None


def _repository_unavailable(path: str, status: int) -> tuple[str, UnavailableReason] | None:
    reason = _UNAVAILABLE_BY_STATUS.get(status)
    match = _REPO_PATH.match(path)
    if reason is None or match is None:
        return None
    rest = (match.group("rest") or "").strip("/")
    if reason == "gone" and (rest.count("/") > 0 or rest in OPTIONAL_REPO_RESOURCES):
        # A 404 deeper down (one commit, one file, the README) is about that object, not the repo.
        return None
    return f"{match.group('owner')}/{match.group('name')}", reason


def _mask_secret(secret: str) -> None:
    # Register the token with Airflow's log masker as well, in case it slips into a log line
    # elsewhere (connection passwords are registered by Airflow itself).
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Airflow always provides it in 3.x
        return
    mask_secret(secret)


__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "GitHubError",
    "GitHubHook",
    "GitHubResponse",
    "HookStats",
    "page_items",
]
