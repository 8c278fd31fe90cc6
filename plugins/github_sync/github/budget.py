"""Where the rate-limit state of each credential lives: in this process, or shared by every worker.

GitHub counts a credential's budget (and its secondary-limit pauses) per account, however
many processes use it. :class:`BudgetStore` is that state, keyed by a credential's
non-secret key (:attr:`github_sync.github.credentials.Credential.key`) and a rate-limit
resource:

* :class:`InMemoryBudget` - one process (tests, scripts, ``github-sync sync``);
* :class:`github_sync.github.shared_budget.PostgresBudget` - every Airflow worker at once,
  in the target database, so N workers together never spend below the reserve and all
  honour a pause one of them saw.

A store answers "may one more request of this credential go out now?" atomically
(:meth:`BudgetStore.try_acquire`) and records what the answers reported; which credential a
request uses and how long to wait is :class:`github_sync.github.ratelimit.RateLimiter`'s
decision. It must not send requests, sleep for rate limits or hold a token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from github_sync.github.ratelimit import (
    DEFAULT_CREDENTIAL_KEY,
    DEFAULT_RESERVE_FRACTION,
    IN_FLIGHT_WAIT_S,
    RateLimit,
    RateLimitTracker,
)

__all__ = ["DEFAULT_CREDENTIAL_KEY", "BudgetStore", "BudgetView", "InMemoryBudget"]


@dataclass(frozen=True)
class BudgetView:
    """What a store knows of one credential's resource, to choose between credentials.

    Attributes:
        window: the last reported window (``None``: never seen; the first request learns it).
        in_flight: requests admitted and not yet answered (by every worker the store serves).
        paused_until: end of the credential's secondary-limit pause, if one is set.
    """

    window: RateLimit | None
    in_flight: int = 0
    paused_until: datetime | None = None


class BudgetStore(Protocol):
    """Rate-limit state per (credential key, resource), read and updated atomically."""

    def try_acquire(
        self,
        key: str,
        resource: str,
        *,
        now: datetime,
        reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
        in_flight_timeout_s: float = IN_FLIGHT_WAIT_S,
    ) -> datetime | None:
        """Take one request slot of ``key``'s ``resource`` if its budget allows it.

        Allowed while ``remaining - in_flight - 1 >= reserve`` (see
        :func:`~github_sync.github.ratelimit.budget_wait_until`), or when nothing is known
        yet or the window's reset has passed. When only requests in flight stand between
        the budget and the reserve, waits (at most ``in_flight_timeout_s``) for their answers.
        Does not look at the pause (:meth:`paused_until`).

        Returns:
            ``None`` when the slot was taken (call :meth:`release` after the answer is
            recorded), else when to try again; nothing is taken then.
        """
        ...

    def record(self, key: str, rate_limit: RateLimit) -> None:
        """Store the window an answer reported, unless a newer one is known.

        Newer: a later reset, or the same reset with fewer remaining (answers of concurrent
        requests arrive out of order and within a window GitHub's remaining only goes down).
        """
        ...

    def release(self, key: str, resource: str) -> None:
        """Give back a slot taken by :meth:`try_acquire` (after :meth:`record`)."""
        ...

    def mark_exhausted(self, key: str, resource: str, reset: datetime) -> None:
        """Record that GitHub refused ``key``'s ``resource`` until ``reset`` (0 remaining)."""
        ...

    def pause(self, key: str, until: datetime) -> None:
        """Pause every request of ``key`` until ``until`` (a later pause already set wins)."""
        ...

    def paused_until(self, key: str) -> datetime | None:
        """The end of ``key``'s pause, or ``None`` (a pause in the past may be returned)."""
        ...

    def window(self, key: str, resource: str) -> RateLimit | None:
        """The last known window of ``key``'s ``resource``."""
        ...

    def windows(self, key: str) -> dict[str, RateLimit]:
        """Every known window of ``key``, by resource."""
        ...

    def views(self, keys: Iterable[str], resource: str) -> dict[str, BudgetView]:
        """What is known of ``resource`` for each of ``keys`` (one entry per key, in one read)."""
        ...


class InMemoryBudget:
    """:class:`BudgetStore` of one process: one :class:`RateLimitTracker` per credential."""

    def __init__(self) -> None:
        """Start with nothing known."""
        self._lock = threading.Lock()
        self._trackers: dict[str, RateLimitTracker] = {}
        self._paused_until: dict[str, datetime] = {}

    def tracker(self, key: str) -> RateLimitTracker:
        """The tracker of ``key`` (created on first use)."""
        with self._lock:
            tracker = self._trackers.get(key)
            if tracker is None:
                tracker = self._trackers[key] = RateLimitTracker()
            return tracker

    def try_acquire(
        self,
        key: str,
        resource: str,
        *,
        now: datetime,
        reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
        in_flight_timeout_s: float = IN_FLIGHT_WAIT_S,
    ) -> datetime | None:
        """See :meth:`BudgetStore.try_acquire`."""
        return self.tracker(key).try_acquire(
            resource, now=now, reserve_fraction=reserve_fraction, in_flight_timeout_s=in_flight_timeout_s
        )

    def record(self, key: str, rate_limit: RateLimit) -> None:
        """See :meth:`BudgetStore.record`."""
        self.tracker(key).update(rate_limit)

    def release(self, key: str, resource: str) -> None:
        """See :meth:`BudgetStore.release`."""
        self.tracker(key).release(resource)

    def mark_exhausted(self, key: str, resource: str, reset: datetime) -> None:
        """See :meth:`BudgetStore.mark_exhausted`."""
        self.tracker(key).mark_exhausted(resource, reset)

    def pause(self, key: str, until: datetime) -> None:
        """See :meth:`BudgetStore.pause`."""
        with self._lock:
            current = self._paused_until.get(key)
            if current is None or until > current:
                self._paused_until[key] = until

    def paused_until(self, key: str) -> datetime | None:
        """See :meth:`BudgetStore.paused_until`."""
        with self._lock:
            return self._paused_until.get(key)

    def window(self, key: str, resource: str) -> RateLimit | None:
        """See :meth:`BudgetStore.window`."""
        return self.tracker(key).get(resource)

    def windows(self, key: str) -> dict[str, RateLimit]:
        """See :meth:`BudgetStore.windows`."""
        return self.tracker(key).snapshot()

    def views(self, keys: Iterable[str], resource: str) -> dict[str, BudgetView]:
        """See :meth:`BudgetStore.views`."""
        return {
            key: BudgetView(
                window=self.tracker(key).get(resource),
                in_flight=self.tracker(key).in_flight(resource),
                paused_until=self.paused_until(key),
            )
            for key in keys
        }
