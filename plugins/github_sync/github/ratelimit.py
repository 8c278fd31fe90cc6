"""GitHub's rate limits in one place: what the headers say, and when a request may go out.

Owns every rate-limit fact and decision of the hook:

* parsing ``x-ratelimit-*`` (:class:`RateLimit`) and ``retry-after``, and recognising a
  primary-limit refusal (403/429 with 0 remaining) and a secondary-limit refusal;
* the per-resource windows with the reserve kept for other users of the token and the
  requests in flight (:class:`RateLimitTracker`, :func:`budget_wait_until`);
* the secondary-limit wait (``retry-after`` as is, else at least a minute, growing per
  refusal, with jitter: :class:`SecondaryLimitPolicy`);
* :class:`RateLimiter`, the hook's admission: before each request it waits out the
  secondary-limit pause (shared by every thread: GitHub counts it per token) and the
  primary budget, or raises :class:`RateLimitExhausted` when that wait is longer than
  ``max_wait_s``; after each refusal it records the exhaustion or the pause.

It must not send requests, count the hook's statistics, or decide how often a failed
request is tried again (:mod:`github_sync.github.retry`): a refusal becomes a retryable
error whose next attempt is held here. No Airflow import.

One module rather than several on purpose: the primary budget and the secondary pause are
the two halves of one question (may this request go out now, and if not, until when?);
spreading them over the retry policy and the hook is what this module replaces.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from github_sync.github.errors import RateLimitExhausted, SecondaryRateLimitExceeded

if TYPE_CHECKING:
    from github_sync.github.budget import BudgetStore, BudgetView

# The key of a hook's only credential when it has one token and no key of its own (see budget.py).
DEFAULT_CREDENTIAL_KEY = "default"

log = logging.getLogger(__name__)

RESOURCE_CORE = "core"
RESOURCE_SEARCH = "search"
RESOURCE_GRAPHQL = "graphql"
# Share of the limit the hook never spends, so other users of the token keep working.
DEFAULT_RESERVE_FRACTION = 0.1
# GitHub's reset time has a one-second resolution and clocks drift: wait one second more.
RESET_SAFETY_MARGIN_S = 1.0
# Waits up to this long are slept; longer ones raise RateLimitExhausted so the task can defer.
# 90 s rather than 60 s so that the first secondary-limit wait (60 s + jitter) is still slept.
DEFAULT_MAX_WAIT_S = 90.0
# Longest real-time wait for the answers of requests in flight when only they decide whether
# the budget is spent (a request's timeout bounds it in practice; this guards against a bug).
IN_FLIGHT_WAIT_S = 120.0

# Statuses GitHub uses for both rate limits (primary with remaining 0, secondary otherwise).
RATE_LIMIT_STATUSES = frozenset({403, 429})
# GitHub: "if no retry-after header, wait at least one minute", then back off exponentially.
SECONDARY_MIN_WAIT_S = 60.0
SECONDARY_BACKOFF_BASE = 2.0
# Jitter added to secondary waits without retry-after, as a share of the wait, so several
# workers sharing a token do not all come back in the same second.
SECONDARY_JITTER_FRACTION = 0.1
# Secondary-limit refusals tolerated for one request before it is given up (then deferred).
SECONDARY_MAX_HITS = 4
# Words of GitHub's secondary-limit messages ("You have exceeded a secondary rate limit").
SECONDARY_LIMIT_MARKERS = ("secondary rate limit", "abuse detection")
# The retry loop waits nothing before an attempt a refusal made retryable: the admission of
# that attempt (RateLimiter.admit) does the waiting, for every thread of the hook.
NO_RETRY_DELAY_S = 0.0

HEADER_LIMIT = "x-ratelimit-limit"
HEADER_REMAINING = "x-ratelimit-remaining"
HEADER_USED = "x-ratelimit-used"
HEADER_RESET = "x-ratelimit-reset"
HEADER_RESOURCE = "x-ratelimit-resource"
HEADER_RETRY_AFTER = "retry-after"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if str(key).lower() == name:
            return str(value)
    return None


@dataclass(frozen=True)
class RateLimit:
    """One rate-limit window of one resource, as GitHub last reported it.

    Attributes:
        limit: requests allowed per window.
        remaining: requests left in the window.
        used: requests spent in the window.
        reset: aware UTC datetime at which the window resets.
        resource: ``core``, ``search``, ``graphql``, ...
    """

    limit: int
    remaining: int
    used: int
    reset: datetime
    resource: str = RESOURCE_CORE

    @classmethod
    def from_headers(cls, headers: Mapping[str, Any]) -> RateLimit | None:
        """Parse the ``x-ratelimit-*`` headers of a response.

        Args:
            headers: response headers; looked up case-insensitively.

        Returns:
            The parsed window, or ``None`` when the headers are missing or malformed (some
            responses, e.g. from a proxy in front of GitHub Enterprise, carry none).
        """
        lowered = {str(k).lower(): str(v).strip() for k, v in headers.items()}
        try:
            limit = int(lowered[HEADER_LIMIT])
            remaining = int(lowered[HEADER_REMAINING])
            reset_epoch = int(float(lowered[HEADER_RESET]))
        except (KeyError, ValueError):
            return None
        try:
            used = int(lowered[HEADER_USED])
        except (KeyError, ValueError):
            # x-ratelimit-used is newer than the others; derive it when an old GHE omits it.
            used = max(limit - remaining, 0)
        resource = lowered.get(HEADER_RESOURCE) or RESOURCE_CORE
        return cls(
            limit=limit,
            remaining=remaining,
            used=used,
            reset=datetime.fromtimestamp(reset_epoch, tz=UTC),
            resource=resource,
        )

    def reserve(self, fraction: float = DEFAULT_RESERVE_FRACTION) -> int:
        """Number of requests of this window the hook keeps for others.

        Args:
            fraction: share of ``limit`` to keep (0 disables the reserve).

        Returns:
            ``ceil(limit * fraction)``.
        """
        return math.ceil(self.limit * fraction)

    def resume_at(self) -> datetime:
        """When requests may go out again once this window is spent: reset plus a safety second."""
        return self.reset + timedelta(seconds=RESET_SAFETY_MARGIN_S)


def combined_window(windows: Sequence[RateLimit]) -> RateLimit:
    """Several credentials' windows of one resource as one: limits, remaining and used summed,
    the earliest reset (when some budget comes back first).

    Args:
        windows: at least one window, all of one resource.
    """
    if len(windows) == 1:
        return windows[0]
    return RateLimit(
        limit=sum(w.limit for w in windows),
        remaining=sum(w.remaining for w in windows),
        used=sum(w.used for w in windows),
        reset=min(w.reset for w in windows),
        resource=windows[0].resource,
    )


def resource_for_path(path: str) -> str:
    """Guess which rate-limit resource a request will be counted against, before sending it.

    Args:
        path: the API path (``/search/issues``) or a full URL.

    Returns:
        ``search`` for ``/search/...``, ``graphql`` for ``/graphql``, else ``core``. The
        response's ``x-ratelimit-resource`` header is authoritative afterwards.
    """
    marker = path.split("?", 1)[0]
    if "/search/" in marker or marker.endswith("/search"):
        return RESOURCE_SEARCH
    if marker.rstrip("/").endswith("/graphql"):
        return RESOURCE_GRAPHQL
    return RESOURCE_CORE


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Return the ``retry-after`` header in seconds, or ``None`` when absent or unusable.

    Args:
        headers: response headers.
    """
    value = _header(headers, HEADER_RETRY_AFTER)
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        # GitHub sends delta-seconds; an HTTP-date would be unexpected, fall back to backoff.
        return None
    return max(seconds, 0.0)


def _message(body: Any) -> str:
    if isinstance(body, Mapping):
        return str(body.get("message") or "")
    if isinstance(body, bytes):
        return body.decode(errors="replace")
    if isinstance(body, str):
        return body
    return ""


def is_primary_limit(status: int, headers: Mapping[str, str]) -> bool:
    """Return True for GitHub's primary-limit refusal: 403/429 with ``x-ratelimit-remaining: 0``."""
    return status in RATE_LIMIT_STATUSES and (_header(headers, HEADER_REMAINING) or "").strip() == "0"


def is_secondary_limit(status: int, headers: Mapping[str, str], body: Any) -> bool:
    """Return True for a secondary-limit refusal.

    A 403/429 whose remaining budget is not 0 is a secondary limit when it carries
    ``retry-after`` or its message mentions the secondary limit. A 429 is always a rate
    limit; a bare 403 without those signs is a permission problem (fail fast).

    Args:
        status: HTTP status.
        headers: response headers.
        body: decoded JSON body (or text).
    """
    if status not in RATE_LIMIT_STATUSES or is_primary_limit(status, headers):
        return False
    if status == 429 or retry_after_seconds(headers) is not None:
        return True
    message = _message(body).lower()
    return any(marker in message for marker in SECONDARY_LIMIT_MARKERS)


def budget_wait_until(
    rate_limit: RateLimit | None,
    *,
    now: datetime,
    reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
    in_flight: int = 0,
) -> datetime | None:
    """Decide whether one more request may go out now.

    A request may go out while, after it and every request already in flight, at least the
    reserve is left: ``remaining - in_flight - 1 >= reserve``. Otherwise it waits until the
    window resets (plus a safety second). A window whose reset time has passed is treated
    as fresh, since GitHub has refilled it.

    Args:
        rate_limit: the last known window of the resource; ``None`` (nothing known yet) allows.
        now: current aware time.
        reserve_fraction: share of the limit to keep.
        in_flight: requests of this process already sent against the window but not answered.

    Returns:
        ``None`` when the request may go now, else the aware datetime to wait for.
    """
    if rate_limit is None:
        return None
    if now >= rate_limit.reset:
        return None
    reserve = rate_limit.reserve(reserve_fraction)
    if rate_limit.remaining - in_flight - 1 >= reserve:
        return None
    # GitHub answers 0-remaining windows with 403/429 anyway; with a 0 reserve this still
    # stops at remaining == 0 instead of provoking the refusal.
    return rate_limit.resume_at()


class RateLimitTracker:
    """Thread-safe, per-resource record of the last known rate-limit windows.

    Responses of concurrent requests can arrive out of order, so an update only replaces
    the stored window when it is newer: a later reset, or the same window with fewer
    remaining requests.

    Requests in flight are counted against the budget. When only they stand between the
    budget and the reserve, :meth:`try_acquire` waits for their answers (which tell the
    exact remaining count) instead of declaring the budget exhausted, so concurrency makes
    the hook neither overspend nor stop early.
    """

    def __init__(self) -> None:
        """Start with nothing known: the first requests always go out."""
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._limits: dict[str, RateLimit] = {}
        self._in_flight: dict[str, int] = {}
        self._waiting: dict[str, int] = {}

    def update(self, rate_limit: RateLimit) -> None:
        """Record the window reported by a response.

        Args:
            rate_limit: the parsed headers of the response.
        """
        with self._lock:
            current = self._limits.get(rate_limit.resource)
            if current is None or self._is_newer(rate_limit, current):
                self._limits[rate_limit.resource] = rate_limit
            self._answered.notify_all()

    @staticmethod
    def _is_newer(new: RateLimit, current: RateLimit) -> bool:
        # Within one window GitHub's remaining only goes down; a higher value is a late answer
        # overtaken by a later one (concurrent requests) and would overstate the budget.
        if new.reset != current.reset:
            return new.reset > current.reset
        return new.remaining <= current.remaining

    def mark_exhausted(self, resource: str, reset: datetime) -> None:
        """Record that GitHub refused a request of ``resource`` until ``reset`` (403/429 with 0 left).

        Args:
            resource: the rate-limit resource.
            reset: the reset time from the refusal.
        """
        with self._lock:
            current = self._limits.get(resource)
            limit = current.limit if current else 0
            self._limits[resource] = RateLimit(
                limit=limit, remaining=0, used=limit, reset=reset, resource=resource
            )

    def get(self, resource: str) -> RateLimit | None:
        """Return the last known window of ``resource`` (``None`` if never seen)."""
        with self._lock:
            return self._limits.get(resource)

    def snapshot(self) -> dict[str, RateLimit]:
        """Return a copy of every known window, keyed by resource."""
        with self._lock:
            return dict(self._limits)

    def try_acquire(
        self,
        resource: str,
        *,
        now: datetime,
        reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
        in_flight_timeout_s: float = IN_FLIGHT_WAIT_S,
    ) -> datetime | None:
        """Take one request slot of ``resource`` if the budget allows it.

        Args:
            resource: the resource the request will count against.
            now: current aware time.
            reserve_fraction: share of the limit to keep.
            in_flight_timeout_s: longest real-time wait for answers of requests in flight
                when only they decide whether the budget suffices.

        Returns:
            ``None`` when the slot was taken (call :meth:`release` after the response),
            else the datetime to wait for; nothing is taken then.
        """
        with self._lock:
            while True:
                in_flight = self._in_flight.get(resource, 0)
                known = self._limits.get(resource)
                wait_until = budget_wait_until(
                    known, now=now, reserve_fraction=reserve_fraction, in_flight=in_flight
                )
                if wait_until is None:
                    self._in_flight[resource] = in_flight + 1
                    return None
                if in_flight == 0 or budget_wait_until(known, now=now, reserve_fraction=reserve_fraction):
                    return wait_until
                # Undecided until the answers in flight report the exact remaining count.
                self._waiting[resource] = self._waiting.get(resource, 0) + 1
                try:
                    answered = self._answered.wait(timeout=in_flight_timeout_s)
                finally:
                    self._waiting[resource] -= 1
                if not answered:
                    return wait_until

    def in_flight(self, resource: str) -> int:
        """Requests of ``resource`` admitted and not yet released."""
        with self._lock:
            return self._in_flight.get(resource, 0)

    def waiting_for_answers(self, resource: str) -> int:
        """Callers of :meth:`try_acquire` now waiting for answers in flight (for logs and tests)."""
        with self._lock:
            return self._waiting.get(resource, 0)

    def release(self, resource: str) -> None:
        """Give back a slot taken by :meth:`try_acquire` once its response is recorded."""
        with self._lock:
            self._in_flight[resource] = max(self._in_flight.get(resource, 0) - 1, 0)
            self._answered.notify_all()


@dataclass(frozen=True)
class SecondaryLimitPolicy:
    """How long the hook pauses after a secondary-limit refusal, and how many it tolerates.

    Attributes:
        min_wait_s: wait after the first refusal without ``retry-after``.
        backoff_base: factor between the waits of consecutive refusals of one request.
        jitter_fraction: random share added to waits without ``retry-after``.
        max_hits: refusals of one request before it is given up (the caller defers).
        rng: source of the jitter (seed it in tests).
    """

    min_wait_s: float = SECONDARY_MIN_WAIT_S
    backoff_base: float = SECONDARY_BACKOFF_BASE
    jitter_fraction: float = SECONDARY_JITTER_FRACTION
    max_hits: int = SECONDARY_MAX_HITS
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def wait(self, hit: int, retry_after: float | None) -> float:
        """Seconds to pause after the ``hit``-th (1-based) secondary-limit refusal of a request.

        Written out rather than a tenacity wait: it depends on the refusal's ``retry-after``
        header and on the refusals of this request (not tenacity's attempt count, which
        5xx retries share), and it becomes a pause for every thread, not one call's sleep.

        Args:
            hit: how many secondary refusals this request got so far.
            retry_after: the ``retry-after`` header in seconds, if GitHub sent one (honoured as is).
        """
        if retry_after is not None:
            return retry_after
        wait = self.min_wait_s * (self.backoff_base ** max(hit - 1, 0))
        return wait + self.rng.uniform(0, wait * self.jitter_fraction)


def headroom(view: BudgetView, *, now: datetime, reserve_fraction: float) -> float:
    """Requests a credential may still send before its reserve: ``inf`` when nothing is known yet
    or its window has reset (the next answer tells), never below 0."""
    window = view.window
    if window is None or now >= window.reset:
        return math.inf
    return max(window.remaining - view.in_flight - window.reserve(reserve_fraction), 0)


def credential_order(
    views: Mapping[str, BudgetView],
    *,
    now: datetime,
    reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
    prefer: str | None = None,
) -> list[str]:
    """The order in which a request tries the credentials it may go out on.

    Paused credentials are left out. ``prefer`` (the credential whose ETag the cache holds
    for the URL: a 304 on it is free, on another one a full answer costs a request) comes
    first while it has headroom; then the most headroom first (ties keep the given order).

    Args:
        views: what the budget store knows of each credential, in configuration order.
        now: current aware time.
        reserve_fraction: share of each limit kept.
        prefer: the credential to favour, if any.
    """
    open_keys = [key for key, view in views.items() if view.paused_until is None or view.paused_until <= now]
    room = {key: headroom(views[key], now=now, reserve_fraction=reserve_fraction) for key in open_keys}
    ordered = sorted(open_keys, key=lambda key: -room[key])
    if prefer in room and room[prefer] > 0:
        ordered.remove(prefer)
        ordered.insert(0, prefer)
    return ordered


class RateLimiter:
    """The hook's admission of requests: which credential, primary budget, reserve, pauses.

    Thread-safe; one per hook. The state lives in a :class:`~github_sync.github.budget.BudgetStore`
    (this process's, or every worker's in PostgreSQL), keyed by credential; a hook with one
    token passes no keys and uses :data:`~github_sync.github.budget.DEFAULT_CREDENTIAL_KEY`.
    ``sleep`` and ``clock`` are the hook's, so tests can run it on a simulated clock.
    """

    def __init__(
        self,
        *,
        reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        secondary: SecondaryLimitPolicy | None = None,
        sleep: Callable[[float], None],
        clock: Callable[[], datetime],
        budget: BudgetStore | None = None,
    ) -> None:
        """Create the limiter.

        Args:
            reserve_fraction: share of each window never spent (0..1).
            max_wait_s: longest wait that is slept; longer ones raise :class:`RateLimitExhausted`.
            secondary: the secondary-limit waits; default :class:`SecondaryLimitPolicy()`.
            sleep: how to wait.
            clock: current aware UTC time, in agreement with ``sleep`` and the server's resets.
            budget: where the rate-limit state lives; default this process's memory.
        """
        from github_sync.github.budget import InMemoryBudget

        self.reserve_fraction = reserve_fraction
        self.max_wait_s = max_wait_s
        self.secondary = secondary or SecondaryLimitPolicy()
        self.budget: BudgetStore = budget if budget is not None else InMemoryBudget()
        self._sleep = sleep
        self._clock = clock
        self._logged_lock = threading.Lock()
        self._logged_exhaustion: dict[tuple[str, str], datetime] = {}

    # ------------------------------------------------------------------ what is known

    def window(self, resource: str, key: str = DEFAULT_CREDENTIAL_KEY) -> RateLimit | None:
        """The last known window of ``key``'s ``resource``, or ``None`` before any answer reported it."""
        return self.budget.window(key, resource)

    def windows(self, key: str = DEFAULT_CREDENTIAL_KEY) -> dict[str, RateLimit]:
        """The last known window of every resource of ``key``."""
        return self.budget.windows(key)

    def record(self, headers: Mapping[str, str], key: str = DEFAULT_CREDENTIAL_KEY) -> RateLimit | None:
        """Record the window an answer on ``key`` reports; return it (``None`` when it reports none)."""
        rate_limit = RateLimit.from_headers(headers)
        if rate_limit is not None:
            self.budget.record(key, rate_limit)
        return rate_limit

    # ------------------------------------------------------------------ before a request

    @contextmanager
    def admit(
        self,
        resource: str,
        path: str,
        keys: Sequence[str] = (DEFAULT_CREDENTIAL_KEY,),
        prefer: str | None = None,
    ) -> Iterator[str]:
        """Hold one request of ``resource`` until it is answered; yield the credential it goes out on.

        With one credential: wait out its pause, then for its budget above the reserve.
        With several: the first of :func:`credential_order` whose budget admits it; when
        none does, wait for the earliest of their pauses and resets. Record the answer's
        headers (:meth:`record`) inside the block: the slot is released when it ends.

        Raises:
            RateLimitExhausted: the budget comes back later than ``max_wait_s`` from now.
        """
        if not keys:
            raise ValueError("admit needs at least one credential key")
        key = self._await_admission(resource, path, keys, prefer)
        try:
            yield key
        finally:
            self.budget.release(key, resource)

    def _await_admission(self, resource: str, path: str, keys: Sequence[str], prefer: str | None) -> str:
        while True:
            now = self._clock()
            candidates = self._candidates(resource, keys, prefer, now)
            resume_times: list[datetime] = []
            for key, paused_until in candidates:
                if paused_until is not None and paused_until > now:
                    resume_times.append(paused_until)
                    continue
                resume_at = self.budget.try_acquire(
                    key, resource, now=now, reserve_fraction=self.reserve_fraction
                )
                if resume_at is None:
                    return key
                self._log_exhaustion(key, resource, resume_at)
                resume_times.append(resume_at)
            resume_at = min(resume_times)
            wait = (resume_at - now).total_seconds()
            if wait > self.max_wait_s:
                raise RateLimitExhausted(resource, resume_at, path=path)
            self._sleep(max(wait, 0.0))

    def _candidates(
        self, resource: str, keys: Sequence[str], prefer: str | None, now: datetime
    ) -> list[tuple[str, datetime | None]]:
        # One credential: no choice to make, and one read fewer per request.
        if len(keys) == 1:
            return [(keys[0], self.budget.paused_until(keys[0]))]
        views = self.budget.views(keys, resource)
        ordered = credential_order(views, now=now, reserve_fraction=self.reserve_fraction, prefer=prefer)
        paused = [key for key in keys if key not in ordered]
        return [(key, None) for key in ordered] + [(key, views[key].paused_until) for key in paused]

    def first_report_of_exhaustion(
        self, resource: str, resume_at: datetime, key: str = DEFAULT_CREDENTIAL_KEY
    ) -> bool:
        """True only the first time a given exhaustion of ``key`` is reported, so it is logged once.

        Args:
            resource: the exhausted resource.
            resume_at: when it will be usable again; a new value is a new exhaustion.
            key: the credential.
        """
        with self._logged_lock:
            if self._logged_exhaustion.get((key, resource)) == resume_at:
                return False
            self._logged_exhaustion[(key, resource)] = resume_at
            return True

    def _log_exhaustion(self, key: str, resource: str, resume_at: datetime) -> None:
        if not self.first_report_of_exhaustion(resource, resume_at, key):
            return
        known = self.budget.window(key, resource)
        log.warning(
            "GitHub %s rate limit at its reserve (%s of %s left, reserve %.0f%%) on credential %s; resuming at %s",
            resource,
            known.remaining if known else "?",
            known.limit if known else "?",
            self.reserve_fraction * 100,
            key[:12],
            resume_at.isoformat(),
        )

    # ------------------------------------------------------------------ after a refusal

    def primary_refused(
        self, rate_limit: RateLimit | None, resource: str, path: str, key: str = DEFAULT_CREDENTIAL_KEY
    ) -> RateLimitExhausted:
        """Record a primary-limit refusal of ``key``; return the retryable error to raise.

        The next attempt's admission goes out on another credential with budget, sleeps
        until the reset, or raises a non-retryable :class:`RateLimitExhausted` when that
        is longer than ``max_wait_s``.

        Args:
            rate_limit: the window the refusal reported (``None`` when its headers were unusable).
            resource: the resource the request was admitted against.
            path: API path, for the error.
            key: the credential it went out on.
        """
        if rate_limit is not None:
            resource = rate_limit.resource
            resume_at = rate_limit.resume_at()
            self.budget.mark_exhausted(key, resource, rate_limit.reset)
        else:
            # No usable reset time: treat it like a secondary limit without retry-after.
            resume_at = self._clock() + timedelta(seconds=self.secondary.min_wait_s)
            self.budget.pause(key, resume_at)
        error = RateLimitExhausted(resource, resume_at, path=path)
        error.retryable, error.retry_after = True, NO_RETRY_DELAY_S
        return error

    def secondary_refused(
        self,
        status: int,
        headers: Mapping[str, str],
        *,
        resource: str,
        path: str,
        hit: int,
        key: str = DEFAULT_CREDENTIAL_KEY,
    ) -> SecondaryRateLimitExceeded:
        """Pause credential ``key`` after a secondary-limit refusal; return the error to raise.

        GitHub counts secondary limits per account: the pause holds every request of that
        credential, in every thread (and, with a shared budget, every worker). The error is
        retryable (the next attempt's admission waits out the pause or takes another
        credential) unless this request was refused more than ``max_hits`` times or the
        wait is longer than ``max_wait_s``; then no pause is set and the caller should
        defer until ``reset_at``.

        Args:
            status: the refusal's HTTP status, for the log.
            headers: the refusal's headers (``retry-after``).
            resource: the resource the request was admitted against.
            path: API path, for the log and the error.
            hit: secondary refusals of this request so far, this one included.
            key: the credential it went out on.
        """
        retry_after = retry_after_seconds(headers)
        wait = self.secondary.wait(hit, retry_after)
        resume_at = self._clock() + timedelta(seconds=wait)
        log.warning(
            "GitHub secondary rate limit on GET %s (%d, retry-after %s); pausing %.0f s",
            path,
            status,
            retry_after,
            wait,
        )
        error = SecondaryRateLimitExceeded(resource, resume_at, path=path)
        if hit <= self.secondary.max_hits and wait <= self.max_wait_s:
            self.budget.pause(key, resume_at)
            error.retryable, error.retry_after = True, NO_RETRY_DELAY_S
        return error
