"""The hook's request counters: what went out, what it cost, how long the hook waited.

Owns :class:`HookStats` (the snapshot callers read, for logs, XComs and run records), the
thread-safe :class:`RequestCounters` behind it, and :class:`CountedSleep`, the one way the
hook waits, so that every wait (rate limits and retry backoffs alike) is counted.

It must not decide anything: the transport and the rate limiter report, this module adds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

Counter = Literal[
    "requests_sent",
    "not_modified",
    "retries",
    "budget_spent",
    "secondary_limit_hits",
    "page_size_reductions",
    "credential_refreshes",
]


@dataclass(frozen=True)
class HookStats:
    """Counters of one hook, as returned by ``GitHubHook.stats``.

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
        credential_refreshes: GitHub App installation tokens bought again after a 401.
    """

    requests_sent: int = 0
    not_modified: int = 0
    retries: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    budget_spent: int = 0
    secondary_limit_hits: int = 0
    page_size_reductions: int = 0
    credential_refreshes: int = 0

    def as_dict(self) -> dict[str, float]:
        """Return the counters as a plain dict (for logs and XComs)."""
        return asdict(self)

    def since(self, earlier: HookStats) -> HookStats:
        """The counters added after ``earlier`` (a snapshot of the same hook)."""
        return HookStats(**{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)})


class RequestCounters:
    """Thread-safe mutable twin of :class:`HookStats`."""

    def __init__(self) -> None:
        """Start at zero."""
        self._lock = threading.Lock()
        self._stats = HookStats()

    def add(self, counter: Counter) -> None:
        """Add one to ``counter``."""
        with self._lock:
            self._stats = replace(self._stats, **{counter: getattr(self._stats, counter) + 1})

    def add_wait(self, seconds: float) -> None:
        """Count one wait of ``seconds``."""
        with self._lock:
            self._stats = replace(
                self._stats, waits=self._stats.waits + 1, wait_seconds=self._stats.wait_seconds + seconds
            )

    def snapshot(self) -> HookStats:
        """The counters now (an immutable copy)."""
        with self._lock:
            return self._stats


class CountedSleep:
    """Wait through the injected ``sleep`` and count the wait; waits of 0 s or less are skipped."""

    def __init__(self, counters: RequestCounters, sleep: Callable[[float], None]) -> None:
        """Wrap ``sleep`` (``time.sleep``, or a test's simulated clock) around ``counters``."""
        self._counters = counters
        self._sleep = sleep

    def __call__(self, seconds: float) -> None:
        """Sleep ``seconds`` and count it."""
        if seconds <= 0:
            return
        self._counters.add_wait(seconds)
        self._sleep(seconds)
