"""``GitHubHook``: the connection to GitHub's REST API and its public API.

The hook is the connection: the Airflow ``github`` connection type (token in ``password``,
optional API base URL in ``host``; the same connection the GitHub provider's ``GithubHook``
uses), its form in the UI, ``test_connection``, and the one pooled session
(:mod:`github_sync.github.session`). Its public API is what callers need of GitHub:
:meth:`~GitHubHook.get`, :meth:`~GitHubHook.iter_pages`, :meth:`~GitHubHook.paginate`,
:attr:`~GitHubHook.rate_limits` and :attr:`~GitHubHook.stats`.

What happens to one GET (conditional requests, rate limits, retries, interpreting the
answer) is the :class:`~github_sync.github.transport.Transport`'s; the hook wires it to
its connection. It knows nothing about what a repository or an issue means; that is the
sync's business. It can also be built explicitly outside Airflow::

    hook = GitHubHook(base_url="http://127.0.0.1:8765", token="...", http_cache=InMemoryHttpCache())
    for issue in hook.paginate("/repos/acme/api/issues", {"state": "all"}):
        ...

Rate-limit exhaustion longer than ``max_wait_s`` raises :class:`RateLimitExhausted`
(carrying ``reset_at``) instead of sleeping, so an Airflow task can defer; see
:mod:`github_sync.github.errors`.

It must not grow request-path logic again: a new concern of one GET is a step of the
transport, a new rate-limit rule belongs to :mod:`github_sync.github.ratelimit`.

Over 300 lines as one piece because it is one class whose parts are the Airflow hook's
contract (connection, form, test) and the documented public methods; the code per
method is short, the length is their documentation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from github_sync.config import ConfigError
from github_sync.github.budget import BudgetStore
from github_sync.github.connection import GitHubConnection, read_connection
from github_sync.github.credentials import AppInstallationCredential, Credential, TokenCredential
from github_sync.github.errors import RepositoryMoved
from github_sync.github.http_cache import HttpCache
from github_sync.github.pagination import MAX_PER_PAGE, MIN_PER_PAGE, PER_PAGE_PARAM, follow_pages, with_query
from github_sync.github.ratelimit import (
    DEFAULT_MAX_WAIT_S,
    DEFAULT_RESERVE_FRACTION,
    RESOURCE_CORE,
    RateLimit,
    RateLimiter,
    SecondaryLimitPolicy,
    combined_window,
)
from github_sync.github.response import GitHubResponse
from github_sync.github.retry import RetryPolicy
from github_sync.github.session import ApiSession, build_session, normalize_base_url, without_user_info
from github_sync.github.stats import CountedSleep, HookStats, RequestCounters
from github_sync.github.transport import Request, Transport

# Per-process cap of concurrent requests: GitHub's secondary limit allows at most 100 per
# token, and a few parallel connections already saturate what one worker can parse.
DEFAULT_MAX_IN_FLIGHT = 8
# (connect, read) seconds: connecting is quick or broken; big listing pages can be slow.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)
REDACTED = "***"
# What a hook's own base_url argument is called in a refusal (it has no connection to name).
EXPLICIT_BASE_URL_SOURCE = "GitHubHook(base_url=...)"


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
        credentials: Sequence[Credential] | None = None,
        connection: GitHubConnection | None = None,
        http_cache: HttpCache | None = None,
        budget: BudgetStore | None = None,
        reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        secondary_limit_policy: SecondaryLimitPolicy | None = None,
        min_per_page: int = MIN_PER_PAGE,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], datetime] | None = None,
        logger_name: str | None = None,
    ) -> None:
        """Create the hook; nothing is read or sent until the first request.

        Args:
            github_conn_id: Airflow connection id (type ``github``).
            base_url: API base URL; overrides the connection's ``host``.
            token: GitHub token; overrides the connection's credentials.
            credentials: the credentials to spread requests over; override the
                connection's (with ``base_url``, nothing is read from Airflow).
            connection: ``github_conn_id`` already read (:func:`read_connection`), so it is
                not read (and warned about) twice.
            http_cache: conditional-request store (``InMemoryHttpCache``,
                ``PostgresHttpCache``); ``None`` disables conditional requests.
            budget: where the credentials' rate-limit state lives (``PostgresBudget``
                shares it between workers); default this process's memory.
            reserve_fraction: share of each rate-limit window never spent (0..1).
            max_wait_s: longest wait the hook sleeps; longer ones raise
                :class:`RateLimitExhausted` so the caller can defer.
            max_in_flight: concurrent requests of this hook (also the connection-pool size).
            timeout: ``(connect, read)`` timeout in seconds.
            retry_policy: retries of 5xx and transport errors; default :class:`RetryPolicy()`.
            secondary_limit_policy: pauses after secondary-limit refusals; default
                :class:`SecondaryLimitPolicy()`.
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
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.min_per_page = min_per_page
        self._explicit_base_url = base_url
        self._explicit_token = token
        self._explicit_credentials: list[Credential] | None = list(credentials) if credentials else None
        self._connection = connection
        self._config_lock = threading.Lock()
        self._base_url: str | None = None
        self._credentials: list[Credential] | None = None
        self._session: ApiSession | None = None
        self._counters = RequestCounters()
        self._clock = clock or (lambda: datetime.now(UTC))
        counted_sleep = CountedSleep(self._counters, sleep or time.sleep)
        self._limiter = RateLimiter(
            reserve_fraction=reserve_fraction,
            max_wait_s=max_wait_s,
            secondary=secondary_limit_policy,
            sleep=counted_sleep,
            clock=self._clock,
            budget=budget,
        )
        self._transport = Transport(
            session=self.get_conn,
            credentials=self.credentials,
            http_cache=http_cache,
            limiter=self._limiter,
            retry_policy=retry_policy or RetryPolicy(),
            counters=self._counters,
            sleep=counted_sleep,
            timeout=timeout,
            max_in_flight=max_in_flight,
            redact=self._redact,
        )
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
        base_url = None if self._base_url is None else without_user_info(self._base_url)
        return f"{type(self).__name__}(github_conn_id={self.github_conn_id!r}, base_url={base_url!r})"

    def _configure(self) -> tuple[str, list[Credential]]:
        with self._config_lock:
            if self._base_url is None or self._credentials is None:
                explicit = self._explicit_credentials or self._explicit_token
                if self._explicit_base_url is not None and explicit:
                    base_url = normalize_base_url(self._explicit_base_url, source=EXPLICIT_BASE_URL_SOURCE)
                    found = self._explicit_credentials or self._token_credential(base_url)
                else:
                    main = self._connection or read_connection(
                        self.github_conn_id, self.get_connection(self.github_conn_id)
                    )
                    base_url = (
                        normalize_base_url(self._explicit_base_url, source=EXPLICIT_BASE_URL_SOURCE)
                        if self._explicit_base_url is not None
                        else main.base_url
                    )
                    found = (
                        self._explicit_credentials
                        or self._token_credential(base_url)
                        or self._connection_credentials(main, base_url)
                    )
                self._base_url = base_url
                self._credentials = found
            return self._base_url, self._credentials

    def _token_credential(self, base_url: str) -> list[Credential]:
        if not self._explicit_token:
            return []
        return [TokenCredential(self._explicit_token, label="the token passed to the hook", api=base_url)]

    def _connection_credentials(self, main: GitHubConnection, base_url: str) -> list[Credential]:
        # The connection's own credential, then those of the connections its options list.
        found = [self._credential_of(main, base_url)]
        for conn_id in main.options.credentials:
            other = read_connection(conn_id, self.get_connection(conn_id))
            # Both normalised by read_connection.
            if other.base_url != main.base_url:
                raise ConfigError(
                    f"connection {conn_id!r} (listed in {self.github_conn_id!r}) is for {other.base_url},"
                    f" not {main.base_url}: credentials of one hook must be for one GitHub"
                )
            found.append(self._credential_of(other, base_url))
        return found

    def _credential_of(self, conn: GitHubConnection, base_url: str) -> Credential:
        # base_url: the hook's, already normalised.
        label = f"connection {conn.conn_id!r}"
        if conn.token:
            return TokenCredential(conn.token, label=label, api=base_url)
        assert conn.app is not None  # read_connection returns a token or App auth
        return AppInstallationCredential(
            app_id=conn.app.app_id,
            private_key=conn.app.private_key,
            installation_id=conn.app.installation_id,
            token_permissions=conn.app.token_permissions,
            base_url=base_url,
            send=lambda method, url, headers, body: self.get_conn().send_unauthenticated(
                method, url, headers, body
            ),
            clock=self._clock,
            label=f"GitHub App {conn.app.app_id} ({label})",
            on_token=_mask_secret,
        )

    def credentials(self) -> list[Credential]:
        """The hook's credentials, in configuration order (reads the connections if needed).

        Raises:
            ConfigError: a connection has no credential or an invalid one.
        """
        return self._configure()[1]

    @property
    def base_url(self) -> str:
        """The API base URL without trailing slash (reads the connection if needed)."""
        return self._configure()[0]

    def get_conn(self) -> ApiSession:
        """Return the hook's pooled ``requests`` session (created on first use)."""
        base_url, _ = self._configure()
        with self._config_lock:
            if self._session is None:
                self._session = build_session(base_url, max_connections=self.max_in_flight)
            return self._session

    def close(self) -> None:
        """Close the pooled connections (the hook opens new ones if used again)."""
        with self._config_lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def test_connection(self) -> tuple[bool, str]:
        """Say which credentials work, as whom, with what budget, without spending any budget.

        See :func:`github_sync.github.access.check_access`.

        Returns:
            ``(ok, message)``: ok when every credential works; the message never holds a secret.
        """
        from github_sync.github.access import check_access

        try:
            reports = check_access(self)
        except Exception as exc:  # the UI wants a message, whatever failed
            return False, self._redact(f"{type(exc).__name__}: {exc}")
        text = f"{self.base_url}: " + "; ".join(report.describe() for report in reports)
        return all(report.ok for report in reports), self._redact(text)

    def _redact(self, text: str) -> str:
        secrets = [
            secret for c in self._credentials or self._explicit_credentials or () for secret in c.secrets()
        ]
        for secret in [*secrets, self._explicit_token or ""]:
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    def _api_path(self, url: str) -> str:
        # The path relative to the API base (GHE bases end in /api/v3), for messages and matching.
        path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
        base_path = urlsplit(self._base_url or "").path.rstrip("/")
        if base_path and path.startswith(base_path + "/"):
            path = path[len(base_path) :]
        return path or "/"

    # ------------------------------------------------------------------ configuration read back

    @property
    def http_cache(self) -> HttpCache | None:
        """The conditional-request store (``None``: conditional requests are off)."""
        return self._transport.http_cache

    @property
    def budget(self) -> BudgetStore:
        """Where the credentials' rate-limit state lives."""
        return self._limiter.budget

    @property
    def retry_policy(self) -> RetryPolicy:
        """Retries of 5xx and transport errors."""
        return self._transport.retry_policy

    @property
    def reserve_fraction(self) -> float:
        """Share of each rate-limit window the hook never spends."""
        return self._limiter.reserve_fraction

    @property
    def max_wait_s(self) -> float:
        """Longest rate-limit wait the hook sleeps before raising :class:`RateLimitExhausted`."""
        return self._limiter.max_wait_s

    # ------------------------------------------------------------------ public API

    @property
    def stats(self) -> HookStats:
        """A snapshot of the hook's counters."""
        return self._counters.snapshot()

    @contextmanager
    def counting(self) -> Iterator[RequestCounters]:
        """Count what this thread sends through the hook until the block ends.

        Yields counters whose ``snapshot()`` is this thread's share of :attr:`stats`: what one
        repository of a shard cost while other threads sync the shard's other repositories.
        """
        with self._counters.scope() as scoped:
            yield scoped

    @property
    def rate_limits(self) -> dict[str, RateLimit]:
        """The last known window per resource (``core``, ``search``, ``graphql``), summed over
        the credentials the hook used (see :func:`~github_sync.github.ratelimit.combined_window`)."""
        by_resource: dict[str, list[RateLimit]] = {}
        for key in self._transport.keys_used():
            for resource, window in self._limiter.windows(key).items():
                by_resource.setdefault(resource, []).append(window)
        return {resource: combined_window(windows) for resource, windows in by_resource.items()}

    def rate_limit(self, resource: str = RESOURCE_CORE) -> RateLimit | None:
        """The last known window of ``resource`` (summed over credentials), or ``None`` before any answer."""
        return self.rate_limits.get(resource)

    def with_credential(self, credential: Credential) -> GitHubHook:
        """A hook on the same API that sends every request on ``credential`` (its budget in memory)."""
        return GitHubHook(
            github_conn_id=self.github_conn_id,
            base_url=self.base_url,
            credentials=[credential],
            timeout=self.timeout,
            max_in_flight=1,
            retry_policy=self.retry_policy,
            clock=self._clock,
        )

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
        url = self.url_for(path, params)
        response = self._transport.get(Request(url, self._api_path(url), conditional=conditional))
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

        def fetch(url: str, shrinkable: bool) -> GitHubResponse:
            return self._transport.get(Request(url, self._api_path(url), shrinkable=shrinkable))

        def on_shrink(_path: str, _old: int, _new: int) -> None:
            self._counters.add("page_size_reductions")

        yield from follow_pages(
            fetch,
            first_url,
            path=self._api_path(first_url),
            min_per_page=self.min_per_page,
            on_shrink=on_shrink,
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


def _mask_secret(secret: str) -> None:
    # Register the token with Airflow's log masker as well, in case it slips into a log line
    # elsewhere (connection passwords are registered by Airflow itself).
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Airflow always provides it in 3.x
        return
    mask_secret(secret)


__all__ = ["DEFAULT_MAX_IN_FLIGHT", "GitHubHook"]
