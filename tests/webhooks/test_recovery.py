"""Missed-delivery recovery: deliveries GitHub could not make while the relay was down come back, once.

The acceptance case runs a real ``github-sync-relay`` process against the simulator's hook
deliveries API (GitHub's endpoints, github_sim.webhooks) and real PostgreSQL: the relay is
killed, 50 deliveries fail at GitHub's side (connection refused), the relay starts again and
its recovery asks for each of them; every one is then stored and forwarded exactly once. The
other cases drive :class:`Recovery` in-process on the same simulator: the gap past GitHub's
retention, the advisory lock between relays, the bounded retries, and the pure plan.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from github_sim import Simulator
from github_sim.webhooks import HOOK_ID
from github_sync.config import INCREMENTAL_SYNC_DAG_ID
from github_sync.webhooks.relay import hook_deliveries
from github_sync.webhooks.relay.airflow_api import AirflowClient
from github_sync.webhooks.relay.hook_deliveries import DeliverySummary, HookDeliveriesClient, HookTarget
from github_sync.webhooks.relay.recovery import (
    MAX_FAILED_REQUESTS,
    MAX_REDELIVERY_REQUESTS,
    RESCAN_OVERLAP,
    HookState,
    Recovery,
    RecoveryLedger,
    RedeliveryRequest,
    plan_redeliveries,
    recovery_run_id,
)
from tests.polling import wait_until
from tests.simulator.test_apps import StartSimulator
from tests.support.simulators import OWNER
from tests.webhooks.airflow_stub import PASSWORD, USERNAME, AirflowStub, free_port
from tests.webhooks.helpers import ADMIN, SECRET
from tests.webhooks.test_cli import processes, relay_env, start_relay

__all__ = ["processes"]  # the fixture, imported for its use here

TOKEN = "ghp_relay_recovery_token_acceptance"
ORG_HOOK = HookTarget("org", OWNER, "", HOOK_ID)
# The same hook configured without its id: the relay takes it from the deliveries' X-GitHub-Hook-ID.
ORG_HOOK_BY_DELIVERIES = HookTarget("org", OWNER)
MISSED = 50


@pytest.fixture
def org_sim(start_simulator: StartSimulator) -> Simulator:
    """A small organisation whose hook is the simulator's (id HOOK_ID)."""
    return start_simulator(repos=3, big_repos=0)


def open_issues(sim: Simulator, count: int, prefix: str) -> None:
    """Open ``count`` issues (one delivery each) and wait until GitHub has attempted each delivery."""
    with sim.state.lock:
        names = [repo.name for repo in sim.state.repos()]
    for n in range(count):
        sim.state.create_issue(names[n % len(names)], f"{prefix} {n}")
    sim.drain_webhooks()


def stored_guids(conn: psycopg.Connection) -> set[str]:
    conn.commit()
    return {row[0] for row in conn.execute("SELECT delivery_id FROM webhook_deliveries")}


def recovery_row(conn: psycopg.Connection, target: HookTarget = ORG_HOOK) -> tuple[int, int] | None:
    conn.commit()
    row = conn.execute(
        "SELECT redeliveries_requested, syncs_triggered FROM webhook_recovery WHERE target = %s",
        (str(target),),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def test_deliveries_missed_while_the_relay_was_down_are_each_applied_once(
    pg_database: str,
    pg_conn: psycopg.Connection,
    airflow_stub: AirflowStub,
    org_sim: Simulator,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    airflow_stub.start()
    port = free_port()
    env = relay_env(pg_database, airflow_stub.url, port) | {
        "GITHUB_SYNC_RELAY_HOOKS": str(ORG_HOOK_BY_DELIVERIES),
        "GITHUB_SYNC_RELAY_GITHUB_TOKEN": TOKEN,
        "GITHUB_SYNC_RELAY_GITHUB_API_URL": org_sim.url,
        "GITHUB_SYNC_RELAY_RECOVERY_INTERVAL_SECONDS": "10",
    }
    log_path = tmp_path / "relay.log"
    start_relay(env, log_path, processes)
    wait_until(
        lambda: recovery_row(pg_conn, ORG_HOOK_BY_DELIVERIES) is not None,
        message="the relay's first scan of the hook",
    )
    org_sim.webhook_target = (f"http://127.0.0.1:{port}/webhooks/github", SECRET)
    open_issues(org_sim, 2, "while up")
    assert len(stored_guids(pg_conn)) == 2

    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait(10)
    open_issues(org_sim, MISSED, "while down")
    attempts = org_sim.hook_deliveries
    missed = {d.guid for d in attempts if d.status_code == 0}
    assert len(missed) == MISSED, "GitHub's side: each delivery failed (connection refused)"

    start_relay(env, log_path, processes)  # recovery scans at start
    wait_until(lambda: missed <= stored_guids(pg_conn), timeout=30, message="every missed delivery stored")
    wait_until(
        lambda: sum(len(ids) for ids in airflow_stub.runs.values()) == MISSED + 2,
        timeout=30,
        message="every delivery forwarded",
    )

    def recovery_stats() -> dict[str, object]:
        relay = httpx.get(f"http://127.0.0.1:{port}/stats", headers=ADMIN).json()
        stats: dict[str, object] = relay["recovery"][str(ORG_HOOK_BY_DELIVERIES)]
        return stats

    # A later scan (the 10 s interval) finds nothing more to ask for.
    wait_until(lambda: recovery_stats()["scans"] == 2, timeout=30, message="a second scan after the recovery")
    forwarded = Counter(i for ids in airflow_stub.runs.values() for i in ids)
    assert set(forwarded.values()) == {1} and missed <= set(forwarded), "each delivery in exactly one run"
    per_guid = Counter(d.guid for d in org_sim.hook_deliveries)
    assert {per_guid[g] for g in missed} == {2}, "one failed attempt and one redelivery per missed delivery"
    assert all(
        d.redelivery and d.status_code == 202 for d in org_sim.hook_deliveries if d.id > attempts[0].id
    )
    assert recovery_row(pg_conn, ORG_HOOK_BY_DELIVERIES) == (MISSED, 0)
    kept = pg_conn.execute(
        "SELECT hook_id FROM webhook_recovery WHERE target = %s", (str(ORG_HOOK_BY_DELIVERIES),)
    )
    assert kept.fetchone() == (HOOK_ID,), "the id taken from the deliveries is kept"
    assert recovery_stats()["last_error"] is None and recovery_stats()["redeliveries_requested"] == MISSED
    assert TOKEN not in log_path.read_text()


def in_process_recovery(
    database_url: str, sim: Simulator, airflow_url: str, webhook_url: str, *, per_page: int = 100
) -> Recovery:
    sim.webhook_target = (webhook_url, SECRET)  # the hook exists once it has a URL
    github = HookDeliveriesClient(
        sim.url, TOKEN, timeout=(2.0, 5.0), attempts=2, backoff_initial=0.01, per_page=per_page
    )
    airflow = AirflowClient(airflow_url, USERNAME, PASSWORD, timeout=2.0)
    return Recovery(RecoveryLedger(database_url), github, airflow, [ORG_HOOK], interval_seconds=3600)


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A webhook URL nothing listens on: every delivery to it fails."""
    yield f"http://127.0.0.1:{free_port()}/webhooks/github"


@pytest.fixture
def recovery(
    pg_database: str,
    pg_conn: psycopg.Connection,
    airflow_stub: AirflowStub,
    org_sim: Simulator,
    refused_url: str,
) -> Recovery:
    """The recovery of ORG_HOOK, in-process, after its first scan (the relay stays unreachable).

    After ``pg_conn``, which empties the tables: the first scan's state must survive it.
    """
    scanner = in_process_recovery(pg_database, org_sim, airflow_stub.url, refused_url)
    scanner.scan(ORG_HOOK)  # the first scan: compare from now on
    return scanner


def test_a_gap_longer_than_github_keeps_deliveries_triggers_one_incremental_sync(
    recovery: Recovery, pg_conn: psycopg.Connection, airflow_stub: AirflowStub, org_sim: Simulator
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=4)
    pg_conn.execute("UPDATE webhook_recovery SET last_scan_at = %s", (long_ago,))
    pg_conn.commit()
    open_issues(org_sim, 2, "missed")

    recovery.scan(ORG_HOOK)  # Airflow is down: the gap's sync waits, the redeliveries do not
    assert recovery.stats.targets[str(ORG_HOOK)].last_error == "Airflow unreachable (ConnectionError)"
    assert airflow_stub.other_runs == {} and recovery_row(pg_conn) == (2, 0)
    recovery.scan(ORG_HOOK)
    assert recovery.stats.failing, "failing after two scans in a row"

    airflow_stub.start()
    recovery.scan(ORG_HOOK)
    recovery.scan(ORG_HOOK)  # the gap is closed: no second run
    assert airflow_stub.other_runs == {
        recovery_run_id(ORG_HOOK, long_ago): (INCREMENTAL_SYNC_DAG_ID, {"owners": [OWNER]})
    }
    row = recovery_row(pg_conn)
    assert not recovery.stats.failing and row is not None and row[1] == 1


def test_a_listing_longer_than_the_client_reads_falls_back_to_a_sync(
    pg_database: str,
    pg_conn: psycopg.Connection,
    airflow_stub: AirflowStub,
    org_sim: Simulator,
    refused_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    airflow_stub.start()
    monkeypatch.setattr(hook_deliveries, "MAX_PAGES", 1)  # one page of 2: a listing of 5 is cut short
    recovery = in_process_recovery(pg_database, org_sim, airflow_stub.url, refused_url, per_page=2)
    recovery.scan(ORG_HOOK)
    open_issues(org_sim, 5, "many")
    recovery.scan(ORG_HOOK)
    assert recovery_row(pg_conn) == (2, 1), "the newest page redelivered, the rest left to one sync"
    assert [dag for dag, _ in airflow_stub.other_runs.values()] == [INCREMENTAL_SYNC_DAG_ID]


def test_a_hook_another_relay_is_scanning_is_left_alone(
    recovery: Recovery, pg_database: str, pg_conn: psycopg.Connection, org_sim: Simulator
) -> None:
    open_issues(org_sim, 3, "missed")
    with psycopg.connect(pg_database, autocommit=True) as other_relay:
        assert RecoveryLedger.try_lock(other_relay, ORG_HOOK)
        recovery.scan(ORG_HOOK)
        assert recovery_row(pg_conn) == (0, 0), "no request while the other relay holds the hook"
    recovery.scan(ORG_HOOK)
    assert recovery_row(pg_conn) == (3, 0)


def test_a_delivery_that_keeps_failing_is_asked_for_a_bounded_number_of_times(
    recovery: Recovery, pg_conn: psycopg.Connection, airflow_stub: AirflowStub, org_sim: Simulator
) -> None:
    open_issues(org_sim, 1, "unlucky")
    for _ in range(MAX_REDELIVERY_REQUESTS + 3):
        recovery.scan(ORG_HOOK)
        org_sim.drain_webhooks()
    assert recovery_row(pg_conn) == (MAX_REDELIVERY_REQUESTS, 0)
    assert len(org_sim.hook_deliveries) == 1 + MAX_REDELIVERY_REQUESTS
    assert recovery.stats.targets[str(ORG_HOOK)].given_up == 1, "given up once, not on every scan"


def test_a_redelivery_refused_by_a_rate_limit_is_not_counted(
    recovery: Recovery, pg_conn: psycopg.Connection, airflow_stub: AirflowStub, org_sim: Simulator
) -> None:
    open_issues(org_sim, 1, "limited")
    org_sim.set_rate_limit_remaining(TOKEN, 1)  # the listing gets the last request, the redelivery none
    recovery.scan(ORG_HOOK)
    assert recovery.stats.targets[str(ORG_HOOK)].last_error == "rate limited (403)"
    assert recovery_row(pg_conn) == (0, 0)
    org_sim.set_rate_limit_remaining(TOKEN, 5000)
    recovery.scan(ORG_HOOK)
    assert recovery_row(pg_conn) == (1, 0), recovery.stats


def test_one_failing_redelivery_does_not_block_the_others(
    recovery: Recovery, pg_conn: psycopg.Connection, airflow_stub: AirflowStub, org_sim: Simulator
) -> None:
    open_issues(org_sim, 3, "one poisoned")
    first, second, _third = sorted(d.id for d in org_sim.hook_deliveries)
    # GitHub answers the oldest one's redelivery with a status the client has no name for,
    # and refuses the second for good (422, documented for this endpoint).
    org_sim.faults.fail_paths = {
        f"/deliveries/{first}/attempts$": 409,
        f"/deliveries/{second}/attempts$": 422,
    }
    for _ in range(MAX_FAILED_REQUESTS + 1):
        recovery.scan(ORG_HOOK)
    stats = recovery.stats.targets[str(ORG_HOOK)]
    assert (stats.redeliveries_failed, stats.redeliveries_refused) == (MAX_FAILED_REQUESTS, 1)
    # The first after its failures, the third after its requests (the relay stays unreachable).
    assert stats.given_up == 2 and stats.last_error is None
    redelivered = [d for d in org_sim.hook_deliveries if d.redelivery]
    assert len(redelivered) == MAX_REDELIVERY_REQUESTS, "the third was asked for despite the two before it"
    asked = {row[0] for row in pg_conn.execute("SELECT delivery_guid FROM webhook_redelivery_requests")}
    assert len(asked) == 3


def test_a_gap_is_synced_even_while_the_listing_fails(
    recovery: Recovery, pg_conn: psycopg.Connection, airflow_stub: AirflowStub, org_sim: Simulator
) -> None:
    airflow_stub.start()
    pg_conn.execute("UPDATE webhook_recovery SET last_scan_at = now() - interval '4 days'")
    pg_conn.commit()
    org_sim.faults.fail_paths = {"/hooks/.*/deliveries$": 404}  # e.g. a token that lost its rights
    recovery.scan(ORG_HOOK)
    assert [dag for dag, _ in airflow_stub.other_runs.values()] == [INCREMENTAL_SYNC_DAG_ID]
    assert recovery.stats.targets[str(ORG_HOOK)].last_error == "hook not found or not administrable (404)"


def test_a_hook_without_an_id_and_without_deliveries_keeps_the_gap_clock(
    pg_database: str, pg_conn: psycopg.Connection, airflow_stub: AirflowStub, org_sim: Simulator
) -> None:
    airflow_stub.start()
    github = HookDeliveriesClient(org_sim.url, TOKEN, timeout=(2.0, 5.0), attempts=1)
    airflow = AirflowClient(airflow_stub.url, USERNAME, PASSWORD, timeout=2.0)
    recovery = Recovery(
        RecoveryLedger(pg_database), github, airflow, [ORG_HOOK_BY_DELIVERIES], interval_seconds=3600
    )
    recovery.scan(ORG_HOOK_BY_DELIVERIES)
    pg_conn.execute("UPDATE webhook_recovery SET last_scan_at = now() - interval '4 days'")
    pg_conn.commit()
    recovery.scan(ORG_HOOK_BY_DELIVERIES)  # still nothing stored: no id, nothing listed
    assert recovery.stats.targets[str(ORG_HOOK_BY_DELIVERIES)].hook_id is None
    assert [dag for dag, _ in airflow_stub.other_runs.values()] == [INCREMENTAL_SYNC_DAG_ID], (
        "three days without a single stored delivery get their sync"
    )


def test_the_listing_goes_back_an_overlap_before_the_newest_compared_delivery() -> None:
    compared = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    state = HookState(datetime(2026, 12, 1, tzinfo=UTC), compared, None, compared, None)
    assert state.listing_floor() == compared - RESCAN_OVERLAP
    first = HookState(compared, None, None, compared, None)
    assert first.listing_floor() == compared, "never before the first scan"


class BrokenGitHub:
    """A deliveries API with a bug of its own (it raises what the client never does): the one
    fault here that cannot be caused for real, for the thread's survival."""

    def recent_deliveries(self, target: HookTarget, since: datetime | None = None) -> list[DeliverySummary]:
        raise RuntimeError("a bug")

    def redeliver(self, target: HookTarget, delivery_id: int) -> None:
        raise AssertionError("never reached")


def test_an_unexpected_error_is_recorded_and_the_recovery_thread_lives_on(
    pg_database: str, airflow_stub: AirflowStub
) -> None:
    airflow = AirflowClient(airflow_stub.url, USERNAME, PASSWORD, timeout=2.0)
    recovery = Recovery(
        RecoveryLedger(pg_database), BrokenGitHub(), airflow, [ORG_HOOK], interval_seconds=3600
    )
    recovery.start()
    try:
        wait_until(
            lambda: recovery.stats.targets[str(ORG_HOOK)].consecutive_failures == 1, message="a failed scan"
        )
        recovery.scan_now()
        wait_until(lambda: recovery.stats.failing, message="a second failed scan, on the same thread")
        assert recovery.stats.targets[str(ORG_HOOK)].last_error == "unexpected RuntimeError"
    finally:
        recovery.stop()


def test_a_hook_github_does_not_know_is_reported_with_what_to_fix(
    pg_database: str, airflow_stub: AirflowStub, org_sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = HookTarget("org", OWNER, "", HOOK_ID + 1)
    github = HookDeliveriesClient(org_sim.url, TOKEN, timeout=(2.0, 5.0), attempts=1)
    airflow = AirflowClient(airflow_stub.url, USERNAME, PASSWORD, timeout=2.0)
    recovery = Recovery(RecoveryLedger(pg_database), github, airflow, [wrong], interval_seconds=3600)
    recovery.scan(wrong)
    assert recovery.stats.targets[str(wrong)].last_error == "hook not found or not administrable (404)"
    assert "check the hook id" in caplog.text and TOKEN not in caplog.text


def summary(delivery_id: int, guid: str, status_code: int) -> DeliverySummary:
    return DeliverySummary(
        id=delivery_id,
        guid=guid,
        delivered_at=datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=delivery_id),
        status="OK" if 200 <= status_code < 300 else f"Invalid HTTP Response: {status_code}",
        status_code=status_code,
        redelivery=False,
        event="issues",
        action="opened",
        repository_id=1,
        installation_id=None,
    )


def test_the_plan_asks_for_the_latest_attempt_of_what_is_neither_stored_nor_delivered() -> None:
    listed = [
        summary(9, "a", 0),  # refused, then...
        summary(12, "a", 503),  # ...503 on its redelivery: ask again, for the latest attempt
        summary(10, "b", 202),  # delivered: stored (or pruned since), never redelivered
        summary(11, "c", 0),  # missing but already stored by a redelivery in flight
        summary(13, "d", 400),  # the relay refused the body: a redelivery gets the same answer
        summary(14, "e", 0),  # asked for MAX times already
        summary(15, "f", 408),  # too slow: worth another try
        summary(
            16, "g", 0
        ),  # this very attempt was asked for by an earlier scan: its redelivery is on its way
        summary(17, "h", 404),  # a proxy's 404 during a deploy: worth another try
    ]
    asked = {
        "a": RedeliveryRequest(1, 9),
        "e": RedeliveryRequest(MAX_REDELIVERY_REQUESTS, 5),
        "g": RedeliveryRequest(1, 16),
    }
    plan = plan_redeliveries(listed, {"c"}, asked)
    assert [(d.guid, d.id) for d in plan.redeliver] == [("a", 12), ("f", 15), ("h", 17)]
    assert [d.guid for d in plan.given_up] == ["e"]
    assert plan.compared_through == summary(17, "h", 0).delivered_at
    assert plan_redeliveries([], set(), {}).compared_through is None
