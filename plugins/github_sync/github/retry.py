"""The retry policy of one GitHub request: what is tried again, how often, how long apart.

Owns the statuses worth retrying (:data:`RETRYABLE_STATUSES`) and those on which the
paginator asks for a smaller page instead (:data:`PAGE_TOO_LARGE_STATUSES`), the number of
attempts, and the exponential backoff with jitter between attempts after a 5xx or a
transport error, as a ``tenacity`` loop whose ``sleep`` is injectable (tests advance a
simulated clock instead of sleeping).

It must not decide anything about rate limits: when a refused request may go out again,
and how long a secondary limit pauses the hook, is :mod:`github_sync.github.ratelimit`'s
business. A refusal reaches this loop as a retryable error with ``retry_after = 0``
because the rate limiter holds the next attempt. No HTTP, no Airflow.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

from github_sync.github.errors import GitHubError

T = TypeVar("T")

# GitHub's front end answers these when a backend is slow or briefly down; worth retrying.
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
# Statuses a too-big listing page times out with; the paginator halves per_page on them.
PAGE_TOO_LARGE_STATUSES = frozenset({502, 504})
# Total attempts per request (first try included) for 5xx / transport errors.
DEFAULT_MAX_ATTEMPTS = 5
# Exponential backoff for 5xx / transport errors: 1 s, 2 s, 4 s ... capped, plus jitter.
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0
BACKOFF_JITTER_S = 1.0


def is_retryable(error: BaseException) -> bool:
    """Return True for the errors the loop tries again: a :class:`GitHubError` marked retryable."""
    return isinstance(error, GitHubError) and error.retryable


class _SeededJitter(tenacity.wait_random):
    """``tenacity.wait_random`` drawn from the policy's own ``rng``.

    tenacity's random waits use the module-level ``random``; the policy keeps its own
    source so that a test (or a worker) can seed the jitter.
    """

    def __init__(self, max_s: float, rng: random.Random) -> None:
        super().__init__(0, max_s)
        self._rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self._rng.uniform(self.wait_random_min, self.wait_random_max)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter.

    Attributes:
        max_attempts: total attempts per request (first try included).
        backoff_initial_s: first backoff.
        backoff_max_s: cap of the exponential part of one backoff.
        backoff_jitter_s: random seconds added to every backoff.
        rng: source of the jitter (seed it in tests).
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_initial_s: float = BACKOFF_INITIAL_S
    backoff_max_s: float = BACKOFF_MAX_S
    backoff_jitter_s: float = BACKOFF_JITTER_S
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self) -> tenacity.wait.wait_base:
        """The wait between attempts after a 5xx or transport error, as a tenacity wait.

        ``initial * 2 ** (attempt - 1)``, capped at ``backoff_max_s``, plus up to
        ``backoff_jitter_s``. A sum of two tenacity waits rather than
        ``wait_exponential_jitter``, which caps the jittered sum: at the cap every worker
        would come back in the same second, the herd the jitter is there to spread.
        """
        exponential = tenacity.wait_exponential(multiplier=self.backoff_initial_s, max=self.backoff_max_s)
        return exponential + _SeededJitter(self.backoff_jitter_s, self.rng)

    def call(
        self,
        fn: Callable[[], T],
        *,
        sleep: Callable[[float], None],
        before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
    ) -> T:
        """Run ``fn`` until it succeeds, raises a non-retryable error, or attempts run out.

        Retryable means a :class:`GitHubError` with ``retryable=True``; the last one is
        re-raised as is once ``max_attempts`` are used, so callers see typed errors only.
        An error's own ``retry_after`` (a rate-limit refusal: 0, the rate limiter waits)
        replaces the backoff.

        Args:
            fn: one attempt.
            sleep: called with the seconds to wait between attempts (injectable for tests).
            before_sleep: called before each wait (logging, counters).

        Returns:
            What ``fn`` returned.
        """
        backoff = self.backoff()

        def wait(retry_state: tenacity.RetryCallState) -> float:
            outcome = retry_state.outcome
            error = outcome.exception() if outcome is not None else None
            if isinstance(error, GitHubError) and error.retry_after is not None:
                return error.retry_after
            return backoff(retry_state)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(is_retryable),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(fn)
