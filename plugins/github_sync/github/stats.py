"""The hook's request counters: what went out, what it cost, how long the hook waited.

Owns :class:`HookStats` (the snapshot callers read, for logs, XComs and run records), the
thread-safe :class:`RequestCounters` behind it, and :class:`CountedSleep`, the one way the
hook waits, so that every wait (rate limits and retry backoffs alike) is counted.

It must not decide anything: the transport and the rate limiter report, this module adds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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


# The scopes open in the current thread (or task): counters that also see what is added there.
_open_scopes: ContextVar[tuple[RequestCounters, ...]] = ContextVar("github_sync_request_scopes", default=())


class RequestCounters:
    """Thread-safe mutable twin of :class:`HookStats`.

    :meth:`scope` counts, beside the totals, what one piece of work in one thread adds (a
    repository of a shard, while other threads sync the shard's other repositories through
    the same hook).
    """

    def __init__(self) -> None:
        """Start at zero."""
        self._lock = threading.Lock()
        self._stats = HookStats()
        # Set on a scope's counters: the counters whose additions it also receives.
        self._parent: RequestCounters | None = None

    def add(self, counter: Counter) -> None:
        """Add one to ``counter`` (and to the open scopes of this thread)."""
        for counters in self._and_scopes():
            counters._add_one(counter)

    def add_wait(self, seconds: float) -> None:
        """Count one wait of ``seconds`` (and in the open scopes of this thread)."""
        for counters in self._and_scopes():
            counters._add_wait(seconds)

    @contextmanager
    def scope(self) -> Iterator[RequestCounters]:
        """Counters of what this thread adds until the block ends (the totals still count it all).

        Only the thread (or context) that opened the scope reports into it: other threads of
        the same hook keep their own scopes.
        """
        scoped = RequestCounters()
        scoped._parent = self
        token = _open_scopes.set((*_open_scopes.get(), scoped))
        try:
            yield scoped
        finally:
            _open_scopes.reset(token)

    def _and_scopes(self) -> tuple[RequestCounters, ...]:
        return (self, *(scoped for scoped in _open_scopes.get() if scoped._parent is self))

    def _add_one(self, counter: Counter) -> None:
        with self._lock:
            self._stats = replace(self._stats, **{counter: getattr(self._stats, counter) + 1})

    def _add_wait(self, seconds: float) -> None:
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
