"""Pure tests of the rate-limit module: headers, refusals, the tracker, the budget and the limiter (no server)."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from github_sync import RateLimit
from github_sync.github.errors import RateLimitExhausted, SecondaryRateLimitExceeded
from github_sync.github.ratelimit import (
    RESET_SAFETY_MARGIN_S,
    SECONDARY_MIN_WAIT_S,
    RateLimiter,
    RateLimitTracker,
    SecondaryLimitPolicy,
    budget_wait_until,
    is_secondary_limit,
    resource_for_path,
    retry_after_seconds,
)
from tests.polling import wait_until

from .clocks import StoppedClock

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
RESET = NOW + timedelta(minutes=30)


def _headers(
    limit: int = 5000, remaining: int = 4999, used: int | None = 1, resource: str | None = "core"
) -> dict:
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(RESET.timestamp())),
    }
    if used is not None:
        headers["X-RateLimit-Used"] = str(used)
    if resource is not None:
        headers["X-RateLimit-Resource"] = resource
    return headers


def test_parses_every_header_case_insensitively() -> None:
    rl = RateLimit.from_headers(_headers(remaining=4990, used=10, resource="search"))
    assert rl == RateLimit(limit=5000, remaining=4990, used=10, reset=RESET, resource="search")
    assert rl.reset.tzinfo is not None and rl.reset.utcoffset() == timedelta(0)


def test_documented_example_values(github_samples: Path) -> None:
    # GitHub's own documented header examples (components/headers) parse to the same numbers.
    documented = json.loads((github_samples / "openapi" / "_components_headers.json").read_text())
    headers = documented["components/headers"]
    raw = {
        "x-ratelimit-limit": str(headers["x-rate-limit-limit"]["example"]),
        "x-ratelimit-remaining": str(headers["x-rate-limit-remaining"]["example"]),
        "x-ratelimit-reset": str(headers["x-rate-limit-reset"]["example"]),
    }
    rl = RateLimit.from_headers(raw)
    assert rl is not None
    assert (rl.limit, rl.remaining, rl.used) == (5000, 4999, 1)
    assert rl.reset == datetime.fromtimestamp(1590701888, tz=UTC)
    assert rl.resource == "core"  # missing x-ratelimit-resource means core


def test_rate_limit_endpoint_sample_matches_schema(github_samples: Path) -> None:
    body = json.loads((github_samples / "openapi" / "rate-limit__get.200.default.json").read_text())["value"]
    core = body["resources"]["core"]
    rl = RateLimit.from_headers(
        {
            "x-ratelimit-limit": core["limit"],
            "x-ratelimit-remaining": core["remaining"],
            "x-ratelimit-reset": core["reset"],
            "x-ratelimit-used": core["used"],
        }
    )
    assert rl is not None and rl.limit == core["limit"] and rl.used == core["used"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-ratelimit-limit": "5000"},
        {"x-ratelimit-limit": "x", "x-ratelimit-remaining": "1", "x-ratelimit-reset": "1"},
    ],
)
def test_missing_or_malformed_headers_give_none(headers: dict) -> None:
    assert RateLimit.from_headers(headers) is None


def test_used_is_derived_when_missing() -> None:
    rl = RateLimit.from_headers(_headers(remaining=4000, used=None))
    assert rl is not None and rl.used == 1000


def test_reserve_and_resume_at() -> None:
    rl = RateLimit(limit=5000, remaining=100, used=4900, reset=RESET)
    assert rl.reserve(0.1) == 500
    assert rl.reserve(0) == 0
    assert rl.resume_at() == RESET + timedelta(seconds=RESET_SAFETY_MARGIN_S)


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/repos/acme/api/issues", "core"),
        ("/search/issues?q=x", "search"),
        ("https://api.github.com/search/code", "search"),
        ("/graphql", "graphql"),
        ("/repos/acme/search-engine/issues", "core"),
    ],
)
def test_resource_for_path(path: str, resource: str) -> None:
    assert resource_for_path(path) == resource


def test_budget_allows_above_reserve_and_stops_at_it() -> None:
    above = RateLimit(limit=5000, remaining=501, used=4499, reset=RESET)
    at = RateLimit(limit=5000, remaining=500, used=4500, reset=RESET)
    assert budget_wait_until(above, now=NOW, reserve_fraction=0.1) is None
    # The last allowed request leaves exactly the reserve; at the reserve it waits for the reset.
    assert budget_wait_until(at, now=NOW, reserve_fraction=0.1) == RESET + timedelta(seconds=1)
    # Requests already in flight count against the budget.
    assert budget_wait_until(above, now=NOW, reserve_fraction=0.1, in_flight=1) is not None


def test_budget_unknown_or_reset_window_allows() -> None:
    assert budget_wait_until(None, now=NOW) is None
    spent = RateLimit(limit=5000, remaining=0, used=5000, reset=RESET)
    assert budget_wait_until(spent, now=RESET) is None
    assert budget_wait_until(spent, now=RESET - timedelta(seconds=1)) is not None


def test_zero_reserve_still_stops_at_zero() -> None:
    one = RateLimit(limit=60, remaining=1, used=59, reset=RESET)
    zero = RateLimit(limit=60, remaining=0, used=60, reset=RESET)
    assert budget_wait_until(one, now=NOW, reserve_fraction=0) is None
    assert budget_wait_until(zero, now=NOW, reserve_fraction=0) is not None


def test_tracker_ignores_stale_out_of_order_updates() -> None:
    tracker = RateLimitTracker()
    newer = RateLimit(limit=5000, remaining=4000, used=1000, reset=RESET)
    stale = RateLimit(limit=5000, remaining=4005, used=995, reset=RESET)
    older_window = RateLimit(limit=5000, remaining=10, used=4990, reset=RESET - timedelta(hours=1))
    tracker.update(newer)
    # With other requests in flight, a higher remaining of the same window is a late answer.
    assert tracker.try_acquire("core", now=NOW) is None
    assert tracker.try_acquire("core", now=NOW) is None
    tracker.update(stale)
    assert tracker.get("core") == newer
    tracker.release("core")
    tracker.release("core")
    tracker.update(older_window)
    assert tracker.get("core") == newer
    # A new window always wins.
    fresh = RateLimit(limit=5000, remaining=4999, used=1, reset=RESET + timedelta(hours=1))
    tracker.update(fresh)
    assert tracker.get("core") == fresh


def test_tracker_waits_for_answers_in_flight_before_declaring_exhaustion() -> None:
    tracker = RateLimitTracker()
    tracker.update(RateLimit(limit=100, remaining=12, used=88, reset=RESET))
    # Reserve 10: two slots are certain.
    assert tracker.try_acquire("core", now=NOW) is None
    assert tracker.try_acquire("core", now=NOW) is None
    result: list[object] = []
    waiter = threading.Thread(target=lambda: result.append(tracker.try_acquire("core", now=NOW)))
    waiter.start()
    # Undecided while two answers are pending: it waits for them instead of answering.
    wait_until(lambda: tracker.waiting_for_answers("core") == 1, message="try_acquire waits for answers")
    assert result == []
    # The server had already counted one of them: remaining 11 after both answers.
    tracker.update(RateLimit(limit=100, remaining=11, used=89, reset=RESET))
    tracker.release("core")
    tracker.release("core")
    wait_until(lambda: result, message="try_acquire decides once the answers are in")
    waiter.join()
    assert result == [None]
    # Its answer brings the window to the reserve: now the budget is certainly spent.
    tracker.update(RateLimit(limit=100, remaining=10, used=90, reset=RESET))
    tracker.release("core")
    assert tracker.try_acquire("core", now=NOW) == RESET + timedelta(seconds=1)


def test_tracker_per_resource_and_threads() -> None:
    tracker = RateLimitTracker()
    tracker.update(RateLimit(limit=30, remaining=30, used=0, reset=RESET, resource="search"))
    tracker.update(RateLimit(limit=5000, remaining=5000, used=0, reset=RESET, resource="core"))
    assert set(tracker.snapshot()) == {"core", "search"}
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            # Nothing is ever answered here: do not wait for answers in flight.
            if tracker.try_acquire("search", now=NOW, reserve_fraction=0.1, in_flight_timeout_s=0.01) is None:
                with lock:
                    granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 30 remaining, reserve ceil(3) -> exactly 27 slots while none is released.
    assert len(granted) == 27


def test_exhaustion_reported_once_per_credential() -> None:
    limiter = RateLimiter(sleep=lambda _s: None, clock=lambda: RESET)
    assert limiter.first_report_of_exhaustion("core", RESET)
    assert not limiter.first_report_of_exhaustion("core", RESET)
    assert limiter.first_report_of_exhaustion("core", RESET + timedelta(hours=1))
    assert limiter.first_report_of_exhaustion("core", RESET, key="other")


def test_mark_exhausted_blocks_until_reset() -> None:
    tracker = RateLimitTracker()
    tracker.mark_exhausted("core", RESET)
    assert tracker.try_acquire("core", now=NOW) == RESET + timedelta(seconds=1)
    assert tracker.try_acquire("core", now=RESET + timedelta(seconds=1)) is None


SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


def test_documented_secondary_limit_error_body(github_samples: Path) -> None:
    # The documented 403 body is a basic-error; with GitHub's secondary wording it is secondary.
    errors = json.loads((github_samples / "openapi" / "_components_responses_errors.json").read_text())
    assert "forbidden" in errors["components/responses (subset)"]
    assert is_secondary_limit(403, {}, {"message": SECONDARY_MESSAGE, "documentation_url": "https://docs"})
    assert not is_secondary_limit(403, {}, {"message": "Must have admin rights to Repository."})
    assert not is_secondary_limit(403, {"x-ratelimit-remaining": "0", "retry-after": "5"}, None)


@pytest.mark.parametrize(("value", "seconds"), [("30", 30.0), (" 0 ", 0.0), ("-5", 0.0), ("soon", None)])
def test_retry_after(value: str, seconds: float | None) -> None:
    assert retry_after_seconds({"Retry-After": value}) == seconds
    assert retry_after_seconds({}) is None


def test_secondary_wait_honours_retry_after_else_min_then_exponential() -> None:
    policy = SecondaryLimitPolicy(rng=random.Random(2))
    assert policy.wait(1, 7.0) == 7.0
    first, second, third = (policy.wait(n, None) for n in (1, 2, 3))
    assert SECONDARY_MIN_WAIT_S <= first <= SECONDARY_MIN_WAIT_S * 1.1
    assert 2 * SECONDARY_MIN_WAIT_S <= second <= 2 * SECONDARY_MIN_WAIT_S * 1.1
    assert 4 * SECONDARY_MIN_WAIT_S <= third


def _limiter(clock: StoppedClock, slept: list[float], **kwargs: Any) -> RateLimiter:
    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    return RateLimiter(sleep=sleep, clock=clock.now, **kwargs)


def test_limiter_admits_within_the_budget_and_records_answers() -> None:
    clock, slept = StoppedClock(NOW), []
    limiter = _limiter(clock, slept)
    with limiter.admit("core", "/repos/acme/api"):
        recorded = limiter.record(_headers(remaining=4000))
    assert recorded is not None and limiter.window("core") == recorded
    assert limiter.windows() == {"core": recorded}
    assert limiter.record({}) is None
    assert slept == []


def test_limiter_sleeps_a_short_exhaustion_and_raises_a_long_one() -> None:
    clock, slept = StoppedClock(RESET - timedelta(seconds=30)), []
    limiter = _limiter(clock, slept, max_wait_s=60)
    limiter.record(_headers(remaining=500))  # at the 10 % reserve
    with limiter.admit("core", "/x"):
        pass
    assert slept == [30 + RESET_SAFETY_MARGIN_S] and clock.now() == RESET + timedelta(seconds=1)
    far = _limiter(StoppedClock(NOW), [], max_wait_s=60)
    far.record(_headers(remaining=500))
    with pytest.raises(RateLimitExhausted) as info, far.admit("core", "/x"):
        pass
    assert info.value.reset_at == RESET + timedelta(seconds=1) and not info.value.retryable


def test_primary_refusal_marks_the_window_spent_for_the_next_attempt() -> None:
    clock, slept = StoppedClock(NOW), []
    limiter = _limiter(clock, slept)
    window = RateLimit(limit=5000, remaining=0, used=5000, reset=RESET)
    error = limiter.primary_refused(window, "core", "/x")
    assert error.retryable and error.retry_after == 0
    assert error.reset_at == RESET + timedelta(seconds=1)
    spent = limiter.window("core")
    assert spent is not None and (spent.remaining, spent.reset) == (0, RESET)
    with pytest.raises(RateLimitExhausted), limiter.admit("core", "/x"):
        pass
    # Without usable headers the hook pauses for the secondary minimum instead.
    paused = _limiter(clock, slept)
    unknown = paused.primary_refused(None, "search", "/search/issues")
    assert unknown.resource == "search" and unknown.reset_at == NOW + timedelta(seconds=SECONDARY_MIN_WAIT_S)
    with paused.admit("core", "/x"):
        pass
    assert slept == [SECONDARY_MIN_WAIT_S]


def test_secondary_refusal_pauses_every_request_until_given_up() -> None:
    clock, slept = StoppedClock(NOW), []
    limiter = _limiter(clock, slept, secondary=SecondaryLimitPolicy(max_hits=2))
    retry_after = {"Retry-After": "61"}
    first = limiter.secondary_refused(403, retry_after, resource="core", path="/x", hit=1)
    assert isinstance(first, SecondaryRateLimitExceeded)
    assert first.retryable and first.retry_after == 0 and first.reset_at == NOW + timedelta(seconds=61)
    # Any request, not only the refused one, waits out the pause.
    with limiter.admit("core", "/y"):
        pass
    assert slept == [61]
    third = limiter.secondary_refused(403, retry_after, resource="core", path="/x", hit=3)
    assert not third.retryable
    too_long = limiter.secondary_refused(403, {"Retry-After": "600"}, resource="core", path="/x", hit=1)
    assert not too_long.retryable and too_long.reset_at == clock.now() + timedelta(seconds=600)
    with limiter.admit("core", "/y"):
        pass
    assert slept == [61]  # refusals given up set no pause
