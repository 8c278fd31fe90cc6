"""Pure tests of rate-limit header parsing, the tracker and the budget decision (no server)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from github_sync import RateLimit
from github_sync.github.ratelimit import (
    RESET_SAFETY_MARGIN_S,
    RateLimitTracker,
    budget_wait_until,
    resource_for_path,
)

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
    waiter.join(timeout=0.2)
    assert waiter.is_alive()  # undecided while two answers are pending
    # The server had already counted one of them: remaining 11 after both answers.
    tracker.update(RateLimit(limit=100, remaining=11, used=89, reset=RESET))
    tracker.release("core")
    tracker.release("core")
    waiter.join(timeout=2)
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


def test_exhaustion_reported_once() -> None:
    tracker = RateLimitTracker()
    assert tracker.first_report_of_exhaustion("core", RESET)
    assert not tracker.first_report_of_exhaustion("core", RESET)
    assert tracker.first_report_of_exhaustion("core", RESET + timedelta(hours=1))


def test_mark_exhausted_blocks_until_reset() -> None:
    tracker = RateLimitTracker()
    tracker.mark_exhausted("core", RESET)
    assert tracker.try_acquire("core", now=NOW) == RESET + timedelta(seconds=1)
    assert tracker.try_acquire("core", now=RESET + timedelta(seconds=1)) is None
