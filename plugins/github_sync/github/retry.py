"""When and how long the hook retries: 5xx and transport errors, secondary rate limits.

The classification of a response (:func:`classify`) and the wait computations are pure
functions so they can be tested without a server; :class:`RetryPolicy` turns them into a
``tenacity`` retry loop whose ``sleep`` is injectable (tests advance a simulated clock
instead of sleeping).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity

from github_sync.github.errors import GitHubError
from github_sync.github.ratelimit import HEADER_REMAINING

T = TypeVar("T")

# GitHub's front end answers these when a backend is slow or briefly down; worth retrying.
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
# Statuses a too-big listing page times out with; the paginator halves per_page on them.
PAGE_TOO_LARGE_STATUSES = frozenset({502, 504})
# Statuses GitHub uses for both rate limits (primary with remaining 0, secondary otherwise).
RATE_LIMIT_STATUSES = frozenset({403, 429})
# Total attempts per request (first try included) for 5xx / transport errors.
DEFAULT_MAX_ATTEMPTS = 5
# Exponential backoff for 5xx / transport errors: 1 s, 2 s, 4 s ... capped, plus jitter.
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0
BACKOFF_JITTER_S = 1.0
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
HEADER_RETRY_AFTER = "retry-after"


class Outcome(enum.Enum):
    """What a response means for the retry loop."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    PRIMARY_LIMIT = "primary_limit"
    SECONDARY_LIMIT = "secondary_limit"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if str(key).lower() == name:
            return str(value)
    return None


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
    if isinstance(body, str | bytes):
        return body.decode(errors="replace") if isinstance(body, bytes) else body
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


def classify(status: int, headers: Mapping[str, str], body: Any = None) -> Outcome:
    """Classify a response for the retry loop.

    Args:
        status: HTTP status.
        headers: response headers.
        body: decoded JSON body (or text), used to recognise secondary limits.

    Returns:
        The :class:`Outcome`.
    """
    if status == 304:
        return Outcome.NOT_MODIFIED
    if status < 400:
        return Outcome.OK
    if is_primary_limit(status, headers):
        return Outcome.PRIMARY_LIMIT
    if is_secondary_limit(status, headers, body):
        return Outcome.SECONDARY_LIMIT
    if status >= 500:
        return Outcome.SERVER_ERROR
    return Outcome.CLIENT_ERROR


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter.

    Attributes:
        max_attempts: total attempts per request for 5xx and transport errors.
        backoff_initial_s: first backoff.
        backoff_max_s: cap of one backoff.
        backoff_jitter_s: random seconds added to every backoff.
        secondary_min_wait_s: wait after a secondary limit without ``retry-after``.
        secondary_backoff_base: factor between consecutive secondary waits.
        secondary_jitter_fraction: random share added to secondary waits.
        secondary_max_hits: secondary refusals of one request before it is given up.
        rng: source of the jitter (seed it in tests).
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_initial_s: float = BACKOFF_INITIAL_S
    backoff_max_s: float = BACKOFF_MAX_S
    backoff_jitter_s: float = BACKOFF_JITTER_S
    secondary_min_wait_s: float = SECONDARY_MIN_WAIT_S
    secondary_backoff_base: float = SECONDARY_BACKOFF_BASE
    secondary_jitter_fraction: float = SECONDARY_JITTER_FRACTION
    secondary_max_hits: int = SECONDARY_MAX_HITS
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based) of a 5xx/transport error."""
        exponential = self.backoff_initial_s * (2 ** max(attempt - 1, 0))
        return min(exponential, self.backoff_max_s) + self.rng.uniform(0, self.backoff_jitter_s)

    def secondary_wait(self, hit: int, retry_after: float | None) -> float:
        """Seconds to wait after the ``hit``-th (1-based) secondary-limit refusal of a request.

        Args:
            hit: how many secondary refusals this request got so far.
            retry_after: the ``retry-after`` header in seconds, if GitHub sent one (honoured as is).
        """
        if retry_after is not None:
            return retry_after
        wait = self.secondary_min_wait_s * (self.secondary_backoff_base ** max(hit - 1, 0))
        return wait + self.rng.uniform(0, wait * self.secondary_jitter_fraction)

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        # The attempt that failed may dictate its wait (secondary limit, primary reset);
        # otherwise exponential backoff with jitter.
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, GitHubError) and error.retry_after is not None:
            return error.retry_after
        return self.backoff(retry_state.attempt_number)

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

        Args:
            fn: one attempt.
            sleep: called with the seconds to wait between attempts (injectable for tests).
            before_sleep: called before each wait (logging, counters).

        Returns:
            What ``fn`` returned.
        """
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, GitHubError) and exc.retryable),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(fn)
