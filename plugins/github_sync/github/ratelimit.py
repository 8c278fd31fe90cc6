"""GitHub's primary rate limit: header parsing, per-resource state and the budget decision.

GitHub sends ``x-ratelimit-limit``, ``-remaining``, ``-used``, ``-reset`` (epoch seconds)
and ``-resource`` on every response. The hook feeds each response into a
:class:`RateLimitTracker` and asks it, before every request, whether the request may go
out now or must wait for the window to reset. The tracker keeps a reserve (by default
10 % of the limit) untouched so other users of the same token keep working.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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

HEADER_LIMIT = "x-ratelimit-limit"
HEADER_REMAINING = "x-ratelimit-remaining"
HEADER_USED = "x-ratelimit-used"
HEADER_RESET = "x-ratelimit-reset"
HEADER_RESOURCE = "x-ratelimit-resource"


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
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
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
        self._logged_exhaustion: dict[str, datetime] = {}

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
                if not self._answered.wait(timeout=in_flight_timeout_s):
                    return wait_until

    def release(self, resource: str) -> None:
        """Give back a slot taken by :meth:`try_acquire` once its response is recorded."""
        with self._lock:
            self._in_flight[resource] = max(self._in_flight.get(resource, 0) - 1, 0)
            self._answered.notify_all()

    def first_report_of_exhaustion(self, resource: str, resume_at: datetime) -> bool:
        """Return True only the first time a given exhaustion is reported, so it is logged once.

        Args:
            resource: the exhausted resource.
            resume_at: when it will be usable again; a new value is a new exhaustion.
        """
        with self._lock:
            if self._logged_exhaustion.get(resource) == resume_at:
                return False
            self._logged_exhaustion[resource] = resume_at
            return True
