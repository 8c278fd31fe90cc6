"""PostgresBudget against the real PostgreSQL: the BudgetStore contract, workers, leases, failures.

The contract tests run over InMemoryBudget and PostgresBudget alike, so both behave the
same. Every test uses credential keys of its own, so the shared tables need no truncation.
Workers are real OS processes (spawned), each with its own connection; a database failure
is a real one (its backend terminated) or a connection factory that refuses to connect.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from github_sync.github.budget import BudgetStore, BudgetView, InMemoryBudget
from github_sync.github.ratelimit import RESOURCE_CORE, RESOURCE_SEARCH, RateLimit
from github_sync.github.shared_budget import APPLICATION_NAME, PostgresBudget
from tests.polling import wait_until

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
RESET = NOW + timedelta(minutes=30)
# Short lease for the expiry tests: long enough to see it count, short enough to wait out.
SHORT_LEASE_S = 1.0
WORKERS = 4
FAKE_LIMIT = 100
RESERVE_FRACTION = 0.1


def _window(
    remaining: int, *, limit: int = 100, reset: datetime = RESET, resource: str = RESOURCE_CORE
) -> RateLimit:
    return RateLimit(limit=limit, remaining=remaining, used=limit - remaining, reset=reset, resource=resource)


def _key() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def postgres_budget(pg_database: str) -> Iterator[Callable[..., PostgresBudget]]:
    """Build PostgresBudgets on the session database; closed after the test."""
    made: list[PostgresBudget] = []

    def make(**kwargs: Any) -> PostgresBudget:
        budget = PostgresBudget(pg_database, **kwargs)
        made.append(budget)
        return budget

    yield make
    for budget in made:
        budget.close()


@pytest.fixture(params=["memory", "postgres"])
def budget(request: pytest.FixtureRequest, postgres_budget: Callable[..., PostgresBudget]) -> BudgetStore:
    """Each contract test runs once per store."""
    if request.param == "memory":
        return InMemoryBudget()
    return postgres_budget()


# ---------------------------------------------------------------------------------- contract


def test_acquire_within_budget_and_when_nothing_is_known(budget: BudgetStore) -> None:
    key = _key()
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW) is None  # nothing known: the first goes out
    budget.record(key, _window(50))
    budget.release(key, RESOURCE_CORE)
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW, reserve_fraction=RESERVE_FRACTION) is None
    assert budget.views([key], RESOURCE_CORE)[key].in_flight == 1


def test_refusal_at_the_reserve_returns_the_reset_plus_a_second(budget: BudgetStore) -> None:
    key = _key()
    budget.record(key, _window(10))  # 10 left = the reserve of 100 at 10%
    resume = budget.try_acquire(key, RESOURCE_CORE, now=NOW, reserve_fraction=RESERVE_FRACTION)
    assert resume == RESET + timedelta(seconds=1)
    assert budget.views([key], RESOURCE_CORE)[key].in_flight == 0  # nothing taken


def test_a_window_whose_reset_passed_admits(budget: BudgetStore) -> None:
    key = _key()
    budget.record(key, _window(0))
    assert budget.try_acquire(key, RESOURCE_CORE, now=RESET + timedelta(seconds=1)) is None


def test_newest_window_wins_whatever_the_order_of_the_answers(budget: BudgetStore) -> None:
    key = _key()
    budget.record(key, _window(40))
    budget.record(key, _window(45))  # a late answer of the same window: ignored
    assert budget.window(key, RESOURCE_CORE) == _window(40)
    budget.record(key, _window(40))  # the same remaining again: kept (as RateLimitTracker does)
    assert budget.window(key, RESOURCE_CORE) == _window(40)
    later = _window(99, reset=RESET + timedelta(hours=1))
    budget.record(key, later)  # a later window replaces a lower remaining
    budget.record(key, _window(1))  # an answer of the earlier window: ignored
    assert budget.window(key, RESOURCE_CORE) == later
    search = _window(29, limit=30, resource=RESOURCE_SEARCH)
    budget.record(key, search)
    assert budget.windows(key) == {RESOURCE_CORE: later, RESOURCE_SEARCH: search}
    assert budget.window(_key(), RESOURCE_CORE) is None


def test_mark_exhausted_keeps_the_limit_and_refuses_until_reset(budget: BudgetStore) -> None:
    key = _key()
    budget.record(key, _window(70))
    budget.mark_exhausted(key, RESOURCE_CORE, RESET)
    assert budget.window(key, RESOURCE_CORE) == RateLimit(100, 0, 100, RESET, RESOURCE_CORE)
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW, reserve_fraction=0) == RESET + timedelta(seconds=1)
    unknown = _key()
    budget.mark_exhausted(unknown, RESOURCE_SEARCH, RESET)
    assert budget.window(unknown, RESOURCE_SEARCH) == RateLimit(0, 0, 0, RESET, RESOURCE_SEARCH)


def test_pause_keeps_the_later_one(budget: BudgetStore) -> None:
    key = _key()
    assert budget.paused_until(key) is None
    budget.pause(key, NOW + timedelta(minutes=2))
    budget.pause(key, NOW + timedelta(minutes=1))
    assert budget.paused_until(key) == NOW + timedelta(minutes=2)
    budget.pause(key, NOW + timedelta(minutes=3))
    assert budget.paused_until(key) == NOW + timedelta(minutes=3)


def test_views_of_several_keys(budget: BudgetStore) -> None:
    seen, busy, unknown = _key(), _key(), _key()
    budget.record(seen, _window(80))
    budget.record(busy, _window(60))
    budget.pause(busy, NOW + timedelta(minutes=1))
    assert budget.try_acquire(busy, RESOURCE_CORE, now=NOW) is None
    assert budget.try_acquire(busy, RESOURCE_CORE, now=NOW) is None
    views = budget.views([seen, busy, unknown], RESOURCE_CORE)
    assert set(views) == {seen, busy, unknown}
    assert (views[seen].window, views[seen].in_flight, views[seen].paused_until) == (_window(80), 0, None)
    assert (views[busy].window, views[busy].in_flight) == (_window(60), 2)
    assert views[busy].paused_until == NOW + timedelta(minutes=1)
    assert (views[unknown].window, views[unknown].in_flight, views[unknown].paused_until) == (None, 0, None)
    assert budget.views([busy], RESOURCE_SEARCH)[busy].in_flight == 0  # leases are per resource


def test_release_frees_a_slot(budget: BudgetStore) -> None:
    key = _key()
    budget.record(key, _window(12))  # 12 - in_flight - 1 >= 10 admits two at a time
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW) is None
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW) is None
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW, in_flight_timeout_s=0) is not None
    budget.release(key, RESOURCE_CORE)
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW, in_flight_timeout_s=0) is None


# ---------------------------------------------------------------------------------- workers


def test_two_instances_share_leases_and_pauses(postgres_budget: Callable[..., PostgresBudget]) -> None:
    one, other = postgres_budget(), postgres_budget()
    key = _key()
    one.record(key, _window(12))
    assert other.window(key, RESOURCE_CORE) == _window(12)
    assert one.try_acquire(key, RESOURCE_CORE, now=NOW) is None
    assert other.try_acquire(key, RESOURCE_CORE, now=NOW) is None
    # Two leases (one each) leave 12 - 2 - 1 < 10: refused for both.
    assert one.try_acquire(key, RESOURCE_CORE, now=NOW, in_flight_timeout_s=0) is not None
    assert other.views([key], RESOURCE_CORE)[key].in_flight == 2
    other.release(key, RESOURCE_CORE)
    other.release(key, RESOURCE_CORE)  # holds no second lease: gives back nothing of `one`'s
    assert one.views([key], RESOURCE_CORE)[key].in_flight == 1
    one.pause(key, NOW + timedelta(minutes=5))
    assert other.paused_until(key) == NOW + timedelta(minutes=5)


def test_a_waiting_acquire_decides_on_another_workers_answer(
    postgres_budget: Callable[..., PostgresBudget],
) -> None:
    one, other = postgres_budget(), postgres_budget()
    key = _key()
    one.record(key, _window(11))
    assert one.try_acquire(key, RESOURCE_CORE, now=NOW) is None  # 11 - 0 - 1 >= 10
    # Only `one`'s lease stands between the budget and the reserve: `other` polls for its answer.
    answered: list[datetime | None] = []
    waiter = threading.Thread(
        target=lambda: answered.append(other.try_acquire(key, RESOURCE_CORE, now=NOW, in_flight_timeout_s=30))
    )
    waiter.start()
    wait_until(lambda: waiter.is_alive(), message="the waiter started")
    fresh = _window(100, reset=RESET + timedelta(hours=1))  # the answer reports a new window
    one.record(key, fresh)
    one.release(key, RESOURCE_CORE)
    waiter.join(timeout=30)
    assert answered == [None]
    assert other.views([key], RESOURCE_CORE)[key] == BudgetView(window=fresh, in_flight=1)


def _worker(url: str, key: str, reset_epoch: float, results: Any) -> None:
    """One simulated worker: acquire -> a request to a fake GitHub -> record -> release, until refused."""
    budget = PostgresBudget(url)
    reset = datetime.fromtimestamp(reset_epoch, tz=UTC)
    admitted = 0
    lowest = FAKE_LIMIT
    with psycopg.connect(url, autocommit=True) as github:
        while True:
            now = datetime.now(UTC)
            if budget.try_acquire(
                key, RESOURCE_CORE, now=now, reserve_fraction=RESERVE_FRACTION, in_flight_timeout_s=30
            ):
                break
            admitted += 1
            row = github.execute(
                "UPDATE fake_github SET remaining = remaining - 1 WHERE key = %s RETURNING remaining", (key,)
            ).fetchone()
            assert row is not None
            remaining = int(row[0])
            lowest = min(lowest, remaining)
            budget.record(key, _window(remaining, limit=FAKE_LIMIT, reset=reset))
            budget.release(key, RESOURCE_CORE)
    budget.close()
    results.put((admitted, lowest))


def test_worker_processes_together_never_spend_below_the_reserve(
    pg_database: str, postgres_budget: Callable[..., PostgresBudget]
) -> None:
    key = _key()
    reset = datetime.now(UTC) + timedelta(hours=1)
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS fake_github (key text PRIMARY KEY, remaining int NOT NULL)")
        conn.execute("INSERT INTO fake_github VALUES (%s, %s)", (key, FAKE_LIMIT))
    # The window the workers start from, as an earlier answer reported it.
    postgres_budget().record(key, _window(FAKE_LIMIT, limit=FAKE_LIMIT, reset=reset))
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=_worker, args=(pg_database, key, reset.timestamp(), results))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    with psycopg.connect(pg_database, autocommit=True) as conn:
        row = conn.execute("SELECT remaining FROM fake_github WHERE key = %s", (key,)).fetchone()
    reserve = _window(0, limit=FAKE_LIMIT).reserve(RESERVE_FRACTION)
    assert min(lowest for _, lowest in outcomes) >= reserve
    assert row == (reserve,)
    # Every request above the reserve was spent, by the workers together.
    assert sum(admitted for admitted, _ in outcomes) == FAKE_LIMIT - reserve
    assert sum(1 for admitted, _ in outcomes if admitted) > 1


# ---------------------------------------------------------------------------------- leases


def _take_lease_and_die(url: str, key: str) -> None:
    """A worker killed between admission and answer: takes a lease, never releases it."""
    budget = PostgresBudget(url, lease_s=SHORT_LEASE_S)
    admitted = budget.try_acquire(key, RESOURCE_CORE, now=NOW)
    os._exit(0 if admitted is None else 3)


def test_a_killed_workers_lease_stops_counting_after_it_expires(
    pg_database: str, postgres_budget: Callable[..., PostgresBudget]
) -> None:
    budget = postgres_budget()
    key = _key()
    budget.record(key, _window(11))  # one lease in flight leaves 11 - 1 - 1 < 10
    dead = multiprocessing.get_context("spawn").Process(target=_take_lease_and_die, args=(pg_database, key))
    dead.start()
    dead.join(timeout=60)
    assert dead.exitcode == 0
    assert budget.views([key], RESOURCE_CORE)[key].in_flight == 1
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW, in_flight_timeout_s=0) == RESET + timedelta(
        seconds=1
    )
    # Waiting for the answer in flight: the lease expires instead, and the slot comes back.
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW, in_flight_timeout_s=30) is None
    with psycopg.connect(pg_database) as conn:
        holders = conn.execute(
            "SELECT count(*) FROM github_rate_limit_leases WHERE credential_key = %s", (key,)
        ).fetchone()
    assert holders == (1,)  # the dead worker's lease was purged; ours remains


def test_leases_expire_after_the_constructor_s_duration(
    postgres_budget: Callable[..., PostgresBudget],
) -> None:
    budget = postgres_budget(lease_s=SHORT_LEASE_S)
    key = _key()
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW) is None
    assert budget.views([key], RESOURCE_CORE)[key].in_flight == 1
    wait_until(
        lambda: budget.views([key], RESOURCE_CORE)[key].in_flight == 0,
        timeout=10,
        message="the lease expired",
    )


# ---------------------------------------------------------------------------------- failures


def _terminate_store_backends(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()",
            (APPLICATION_NAME,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_database_failure_falls_back_to_the_local_budget_and_recovers(
    pg_database: str, postgres_budget: Callable[..., PostgresBudget], caplog: pytest.LogCaptureFixture
) -> None:
    budget = postgres_budget()
    key = _key()
    budget.record(key, _window(10))  # at the reserve: refused by both stores
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW, in_flight_timeout_s=0) is not None
    assert _terminate_store_backends(pg_database) == 1
    with caplog.at_level(logging.WARNING, logger="github_sync.github.shared_budget"):
        # The fallback knows the window this process recorded: still refused, no error.
        assert budget.try_acquire(key, RESOURCE_CORE, now=NOW, in_flight_timeout_s=0) == RESET + timedelta(
            seconds=1
        )
    assert budget.stats.fallbacks == 1
    assert [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    # The next call reconnects and answers from the database again.
    budget.record(key, _window(50, reset=RESET + timedelta(hours=1)))
    assert budget.stats.fallbacks == 1
    assert postgres_budget().window(key, RESOURCE_CORE) == _window(50, reset=RESET + timedelta(hours=1))


def test_a_burst_of_failures_warns_once_and_slots_go_back_where_they_came_from(
    pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    down = True

    def connect() -> psycopg.Connection[Any]:
        if down:
            raise psycopg.OperationalError("connection refused (simulated)")
        return psycopg.connect(pg_database, autocommit=True)

    budget = PostgresBudget(connect)
    key = _key()
    with caplog.at_level(logging.WARNING, logger="github_sync.github.shared_budget"):
        budget.record(key, _window(12))
        assert budget.try_acquire(key, RESOURCE_CORE, now=NOW) is None  # a slot of the fallback
        assert budget.views([key], RESOURCE_CORE)[key].in_flight == 1
        budget.pause(key, NOW + timedelta(minutes=1))
        assert budget.paused_until(key) == NOW + timedelta(minutes=1)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert budget.stats.fallbacks == 5  # every call above
    down = False
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW) is None  # a lease in the database
    budget.release(key, RESOURCE_CORE)  # the oldest slot: the fallback's
    budget.release(key, RESOURCE_CORE)  # then the lease
    assert budget.fallback.views([key], RESOURCE_CORE)[key].in_flight == 0
    assert budget.views([key], RESOURCE_CORE)[key].in_flight == 0
    assert repr(budget) == "PostgresBudget()"
    budget.close()


def test_statements_per_request(postgres_budget: Callable[..., PostgresBudget]) -> None:
    budget = postgres_budget()
    key = _key()
    budget.record(key, _window(90))  # opens the connection (one settings statement)
    before = budget.stats
    assert budget.try_acquire(key, RESOURCE_CORE, now=NOW) is None
    acquired = budget.stats
    budget.record(key, _window(89))
    recorded = budget.stats
    budget.release(key, RESOURCE_CORE)
    released = budget.stats
    assert acquired.round_trips - before.round_trips <= 2
    assert recorded.round_trips - acquired.round_trips == 1
    assert released.round_trips - recorded.round_trips == 1
