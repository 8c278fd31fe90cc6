"""GitHub's primary (per user or installation, per hour) and secondary (concurrency, burst) rate limits.

A budget is kept per key (:meth:`github_sim.access.AccessPolicy.budget_key` says whose key a
token spends); a key may have its own limit (an installation's grows with its repositories).

Owns the budgets and their windows on the simulator clock; the HTTP layer decides what a refused
request is answered with. Nothing here sleeps or waits for a window to reset.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from github_sim.clock import SimClock

# Key of the bucket shared by every unauthenticated caller (they all come from 127.0.0.1).
ANONYMOUS = ""
RESOURCE_CORE = "core"


@dataclass
class Bucket:
    """One primary rate-limit window."""

    limit: int
    used: int
    reset: int  # epoch seconds

    @property
    def remaining(self) -> int:
        """Requests left in this window."""
        return max(self.limit - self.used, 0)


class PrimaryLimiter:
    """Per-token request budget whose windows follow the simulator clock."""

    def __init__(
        self,
        clock: SimClock,
        limit: int,
        anonymous_limit: int,
        interval_s: int,
        limit_of: Callable[[str], int | None] | None = None,
    ) -> None:
        """Create the limiter.

        Args:
            clock: the simulator clock; windows reset when it passes ``reset``.
            limit: budget of an authenticated token per window.
            anonymous_limit: budget of unauthenticated callers per window.
            interval_s: window length in seconds.
            limit_of: the limit of a key with its own (asked when its window starts), or
                ``None`` for ``limit``.
        """
        self._clock = clock
        self._limit = limit
        self._limit_of = limit_of
        self._anonymous_limit = anonymous_limit
        self._interval_s = interval_s
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, key: str) -> Bucket:
        # Caller holds the lock. A window starts with the first request after the previous one ended.
        now = self._clock.timestamp()
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset:
            own = self._limit_of(key) if self._limit_of is not None and key != ANONYMOUS else None
            limit = self._anonymous_limit if key == ANONYMOUS else own if own is not None else self._limit
            bucket = Bucket(limit=limit, used=0, reset=math.ceil(now + self._interval_s))
            self._buckets[key] = bucket
        return bucket

    def peek(self, key: str) -> Bucket:
        """Return a copy of the current window of ``key`` without spending."""
        with self._lock:
            b = self._bucket(key)
            return Bucket(b.limit, b.used, b.reset)

    def spend(self, key: str) -> Bucket:
        """Spend one request of ``key``'s budget and return a copy of the window after it."""
        with self._lock:
            b = self._bucket(key)
            b.used = min(b.used + 1, b.limit)
            return Bucket(b.limit, b.used, b.reset)

    def set_remaining(self, key: str, remaining: int) -> None:
        """Force the remaining budget of ``key`` (tests use it to exhaust a token)."""
        with self._lock:
            b = self._bucket(key)
            b.used = max(b.limit - remaining, 0)

    def reset_all(self) -> None:
        """Forget every window."""
        with self._lock:
            self._buckets.clear()


class SecondaryLimiter:
    """Tracks concurrent requests and per-token bursts for the secondary limit."""

    def __init__(self, clock: SimClock) -> None:
        """Create the limiter on the simulator clock."""
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight = 0
        self.peak = 0
        self._recent: dict[str, deque[float]] = {}

    def enter(self) -> int:
        """Count a request in; return the concurrency including it."""
        with self._lock:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
            return self._in_flight

    def leave(self) -> None:
        """Count a request out."""
        with self._lock:
            self._in_flight -= 1

    def burst_exceeded(self, key: str, burst: int | None, window_s: float) -> bool:
        """Record a request of ``key``; True when it is over ``burst`` requests in the last window."""
        if burst is None:
            return False
        now = self._clock.timestamp()
        with self._lock:
            times = self._recent.setdefault(key, deque())
            while times and times[0] <= now - window_s:
                times.popleft()
            if len(times) >= burst:
                return True
            times.append(now)
            return False

    def reset_peak(self) -> None:
        """Restart the peak-concurrency counter from the current concurrency."""
        with self._lock:
            self.peak = self._in_flight
