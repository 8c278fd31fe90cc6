"""Forwarding to Airflow: leading edge, in-flight coalescing and its ceiling, outages, exactly-once runs,
token renewal, rejections.

Airflow is played by tests/webhooks/airflow_stub.py (or, where a test needs a trigger that hangs,
by a client double); everything else is real (PostgreSQL, the relay app, its forwarder thread).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from github_sync.webhooks.relay.airflow_api import AirflowClient, RejectedError, TriggerOutcome
from github_sync.webhooks.relay.app import create_app
from github_sync.webhooks.relay.forwarder import Forwarder, retry_wait
from github_sync.webhooks.relay.store import DAG_RUN_ID_PREFIX, DeliveryStore, ForwardBatch
from tests.polling import wait_until
from tests.webhooks.airflow_stub import AirflowStub
from tests.webhooks.helpers import fast_forwarder, headers, relay_settings

WEBHOOK = "/webhooks/github"
# Nothing listens there.
NO_AIRFLOW = "http://127.0.0.1:9"
NO_DATABASE = "postgresql://nobody@127.0.0.1:1/none"
# The largest ceiling the settings allow: a test that passes with it did not wait for it.
LONG_CEILING_S = 60.0
# A ceiling short enough to wait for in a test, long enough that posting 4 deliveries fits in it.
SHORT_CEILING_S = 4.0


def status_counts(conn: psycopg.Connection) -> dict[str, int]:
    conn.commit()
    return dict(conn.execute("SELECT status, count(*) FROM webhook_deliveries GROUP BY status").fetchall())


def post_issues(client: TestClient, github_samples: Path, count: int) -> list[str]:
    body = (github_samples / "webhooks/issues/opened.payload.json").read_bytes()
    ids = []
    for _ in range(count):
        delivery_id = str(uuid.uuid4())
        response = client.post(WEBHOOK, content=body, headers=headers(body, "issues", delivery_id))
        assert response.status_code == 202, response.text
        ids.append(delivery_id)
    return ids


def test_airflow_outage_then_recovery_forwards_each_delivery_exactly_once(
    pg_database: str, pg_conn: psycopg.Connection, store: DeliveryStore, airflow_stub: AirflowStub,
    github_samples: Path,
) -> None:  # fmt: skip
    settings = relay_settings(pg_database, airflow_stub.url)
    forwarder = fast_forwarder(store, settings, read_timeout=0.5)
    with TestClient(create_app(settings, store=store, forwarder=forwarder)) as client:
        ids = post_issues(client, github_samples, 100)  # Airflow refuses connections meanwhile
        wait_until(
            lambda: forwarder.stats.failed_attempts >= 3, message="failed attempts while Airflow is down"
        )
        assert status_counts(pg_conn) == {"pending": 100}
        assert "unreachable" in client.get("/healthz").json()["last_error"]

        # Airflow comes back, but answers 503 twice and then creates a run without answering in time.
        airflow_stub.faults.extend(["503", "503", "timeout"])
        airflow_stub.start()
        wait_until(lambda: status_counts(pg_conn) == {"forwarded": 100}, message="all deliveries forwarded")

    per_id = Counter(i for run_ids in airflow_stub.runs.values() for i in run_ids)
    assert set(per_id) == set(ids) and set(per_id.values()) == {1}, "each delivery in exactly one DAG run"
    # The run whose answer timed out was asked for again under the same id: 409, counted as done.
    assert len(airflow_stub.timed_out) == 1
    assert [r for _, s, r in airflow_stub.requests if s == 409] == airflow_stub.timed_out
    assert all(run_id.startswith(DAG_RUN_ID_PREFIX) for run_id in airflow_stub.runs)
    assert all(b["logical_date"] is None and set(b["conf"]) == {"delivery_ids"} for b in airflow_stub.bodies)
    pg_conn.commit()
    assert pg_conn.execute("SELECT count(*) FROM webhook_deliveries WHERE attempts >= 2").fetchone()[0] > 0
    print(f"\noutage: {len(airflow_stub.runs)} DAG runs after recovery, {airflow_stub.conflicts} x 409")


class HangingClient(AirflowClient):
    """A client whose triggers do not return until the test releases them (a hung Airflow)."""

    def __init__(self) -> None:
        super().__init__(NO_AIRFLOW, None, None)
        self.in_trigger = threading.Event()
        self.release = threading.Event()

    def trigger(self, batch: ForwardBatch) -> TriggerOutcome:
        self.in_trigger.set()
        # Bounded only so that a broken test cannot hang the run: the test releases it.
        self.release.wait(timeout=120)
        return TriggerOutcome.CREATED


def test_deliveries_are_answered_while_airflow_hangs(
    pg_database: str, pg_conn: psycopg.Connection, store: DeliveryStore, github_samples: Path
) -> None:
    """GitHub's answer never waits for Airflow: 202s keep coming while a trigger is stuck."""
    settings = relay_settings(pg_database, NO_AIRFLOW, coalesce_seconds=0)
    hanging = HangingClient()
    forwarder = Forwarder(store, hanging, coalesce_seconds=0, max_ids_per_run=1_000)
    with TestClient(create_app(settings, store=store, forwarder=forwarder)) as client:
        post_issues(client, github_samples, 1)
        wait_until(hanging.in_trigger.is_set, message="the forwarder inside a trigger request")
        post_issues(client, github_samples, 99)  # each one asserts its 202
        assert status_counts(pg_conn) == {"pending": 100}, "all stored while the trigger was stuck"
        hanging.release.set()
        wait_until(lambda: status_counts(pg_conn) == {"forwarded": 100}, message="forwarded once released")


def test_stop_ends_the_retries_of_a_database_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forwarder retrying while its database is down stops when asked, without an error."""
    thread_errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args.exc_value))
    store = DeliveryStore(NO_DATABASE, connection_wait_seconds=0.1)
    forwarder = Forwarder(
        store, AirflowClient(NO_AIRFLOW, None, None), coalesce_seconds=0, max_ids_per_run=10,
        backoff_initial=0.05, backoff_max=0.2, poll_seconds=0.1,
    )  # fmt: skip
    try:
        forwarder.start()
        wait_until(lambda: forwarder.stats.consecutive_failures >= 3, message="retries of the outage")
        forwarder.stop()
        assert not forwarder.running
    finally:
        store.close()
    assert thread_errors == []


def test_burst_of_500_becomes_a_handful_of_runs(
    pg_database: str, pg_conn: psycopg.Connection, store: DeliveryStore, airflow_stub: AirflowStub,
    github_samples: Path,
) -> None:  # fmt: skip
    # Each run takes a second, about what a webhook run takes on real Airflow.
    airflow_stub.play_dag(pg_database, run_seconds=1.0).start()
    settings = relay_settings(pg_database, airflow_stub.url, coalesce_seconds=LONG_CEILING_S)
    forwarder = fast_forwarder(store, settings)
    with TestClient(create_app(settings, store=store, forwarder=forwarder)) as client:
        ids = post_issues(client, github_samples, 500)
        wait_until(lambda: status_counts(pg_conn) == {"processed": 500}, message="burst processed")
    runs = len(airflow_stub.runs)
    print(f"\nburst: 500 deliveries -> {runs} DAG runs (leading edge, 1 s runs)")
    assert runs <= 10
    assert sorted(i for run_ids in airflow_stub.runs.values() for i in run_ids) == sorted(ids)
    # Leading edge, coalescing while in flight: a run is only created once the one before it
    # has finished (the ceiling, a minute, was never reached).
    events = airflow_stub.events
    for before, after in zip(airflow_stub.created_runs(), airflow_stub.created_runs()[1:], strict=False):
        assert events.index(("processed", before)) < events.index(("created", after))


def test_a_delivery_with_no_run_in_flight_is_triggered_at_once(
    pg_database: str, pg_conn: psycopg.Connection, store: DeliveryStore, airflow_stub: AirflowStub,
    github_samples: Path,
) -> None:  # fmt: skip
    """No trailing window: with a ceiling of a minute, the run exists long before that could pass.

    The trailing forwarder waited ``coalesce_seconds`` (here the maximum, 60 s) after every
    wake-up, so the run would not exist within ``wait_until``'s 30 s.
    """
    airflow_stub.play_dag(pg_database).start()
    airflow_stub.hold_runs.set()
    settings = relay_settings(pg_database, airflow_stub.url, coalesce_seconds=LONG_CEILING_S)
    forwarder = fast_forwarder(store, settings)
    with TestClient(create_app(settings, store=store, forwarder=forwarder)) as client:
        first = post_issues(client, github_samples, 1)
        wait_until(lambda: list(airflow_stub.runs.values()) == [first], message="the run, without a window")
        # In flight (held): what arrives now waits for it and then becomes one run.
        later = post_issues(client, github_samples, 5)
        wait_until(lambda: forwarder.stats.in_flight_waits >= 3, message="the forwarder waiting for the run")
        assert len(airflow_stub.runs) == 1, "nothing triggered while the run is in flight"
        assert status_counts(pg_conn) == {"forwarded": 1, "pending": 5}
        airflow_stub.hold_runs.clear()
        wait_until(lambda: status_counts(pg_conn) == {"processed": 6}, message="both runs processed")
    assert list(airflow_stub.runs.values()) == [first, later]
    first_run, second_run = airflow_stub.created_runs()
    assert airflow_stub.events == [
        ("created", first_run), ("processed", first_run), ("created", second_run), ("processed", second_run),
    ]  # fmt: skip


def test_a_run_that_never_finishes_holds_forwarding_back_only_until_the_ceiling(
    pg_database: str, pg_conn: psycopg.Connection, store: DeliveryStore, airflow_stub: AirflowStub,
    github_samples: Path,
) -> None:  # fmt: skip
    airflow_stub.start()  # creates runs but never finishes them (a crashed or deleted run)
    settings = relay_settings(pg_database, airflow_stub.url, coalesce_seconds=SHORT_CEILING_S)
    forwarder = fast_forwarder(store, settings)
    with TestClient(create_app(settings, store=store, forwarder=forwarder)) as client:
        first = post_issues(client, github_samples, 1)
        wait_until(lambda: status_counts(pg_conn) == {"forwarded": 1}, message="the first run")
        later = post_issues(client, github_samples, 4)
        wait_until(lambda: status_counts(pg_conn) == {"forwarded": 5}, message="forwarded after the ceiling")
    assert list(airflow_stub.runs.values()) == [first, later], "the waiting deliveries went as one run"
    assert forwarder.stats.in_flight_waits > 0
    pg_conn.commit()
    gap = pg_conn.execute(
        "SELECT extract(epoch FROM max(forwarded_at) - min(forwarded_at)) FROM webhook_deliveries"
    ).fetchone()[0]
    assert gap >= SHORT_CEILING_S, "the second run waited for the ceiling (the first never finished)"


def test_a_run_in_flight_is_still_in_flight_after_a_restart(
    pg_database: str, pg_conn: psycopg.Connection, store: DeliveryStore, airflow_stub: AirflowStub,
    github_samples: Path,
) -> None:  # fmt: skip
    """The in-flight state is the table's: a new relay process waits for a run the old one started."""
    airflow_stub.play_dag(pg_database).start()
    airflow_stub.hold_runs.set()
    settings = relay_settings(pg_database, airflow_stub.url, coalesce_seconds=LONG_CEILING_S)
    with TestClient(create_app(settings, store=store, forwarder=fast_forwarder(store, settings))) as client:
        first = post_issues(client, github_samples, 1)
        wait_until(lambda: status_counts(pg_conn) == {"forwarded": 1}, message="the first run")
    # A "new process": a new store and forwarder; deliveries arrived while it was down.
    restarted_store = DeliveryStore(pg_database)
    try:
        forwarder = fast_forwarder(restarted_store, settings)
        with TestClient(create_app(settings, store=restarted_store, forwarder=forwarder)) as client:
            later = post_issues(client, github_samples, 3)
            wait_until(lambda: forwarder.stats.in_flight_waits >= 3, message="the restarted relay waiting")
            assert len(airflow_stub.runs) == 1
            airflow_stub.hold_runs.clear()
            wait_until(lambda: status_counts(pg_conn) == {"processed": 4}, message="both runs processed")
    finally:
        restarted_store.close()
    assert list(airflow_stub.runs.values()) == [first, later]
    first_run, second_run = airflow_stub.created_runs()
    assert airflow_stub.events.index(("processed", first_run)) < airflow_stub.events.index(
        ("created", second_run)
    )


def test_runs_are_capped_at_max_ids(
    pg_database: str, pg_conn: psycopg.Connection, store: DeliveryStore, airflow_stub: AirflowStub,
    github_samples: Path,
) -> None:  # fmt: skip
    settings = relay_settings(pg_database, airflow_stub.url, coalesce_seconds=0.5, max_ids_per_run=7)
    forwarder = fast_forwarder(store, settings)
    with TestClient(create_app(settings, store=store, forwarder=forwarder)) as client:
        post_issues(client, github_samples, 20)
        airflow_stub.start()
        wait_until(lambda: status_counts(pg_conn) == {"forwarded": 20}, message="forwarded")
    # Leading edge: the first delivery was assigned at once (and retried while Airflow was
    # down), with whatever arrived before the forwarder read it (usually nothing, sometimes
    # the next one); the rest are the outage's backlog, sent 7 ids per run.
    sizes = [len(v) for v in airflow_stub.runs.values()]
    assert max(sizes) == 7 and sum(sizes) == 20 and len(sizes) == 4, sizes


def test_expired_token_is_renewed(
    pg_database: str, pg_conn: psycopg.Connection, store: DeliveryStore, airflow_stub: AirflowStub,
    github_samples: Path,
) -> None:  # fmt: skip
    airflow_stub.start()
    settings = relay_settings(pg_database, airflow_stub.url, coalesce_seconds=0.1)
    with TestClient(create_app(settings, store=store, forwarder=fast_forwarder(store, settings))) as client:
        post_issues(client, github_samples, 1)
        wait_until(lambda: status_counts(pg_conn) == {"forwarded": 1}, message="first run")
        airflow_stub.faults.append("expire")  # Airflow forgets every token (e.g. a new signing key)
        post_issues(client, github_samples, 1)
        wait_until(lambda: status_counts(pg_conn) == {"forwarded": 2}, message="second run")
    assert airflow_stub.token_requests == 2
    assert len(airflow_stub.runs) == 2


def test_a_permanently_rejected_batch_does_not_block_the_next(
    pg_database: str, pg_conn: psycopg.Connection, store: DeliveryStore, airflow_stub: AirflowStub,
    github_samples: Path,
) -> None:  # fmt: skip
    airflow_stub.start()
    settings = relay_settings(pg_database, airflow_stub.url)
    forwarder = fast_forwarder(store, settings)
    with TestClient(create_app(settings, store=store, forwarder=forwarder)) as client:
        post_issues(client, github_samples, 2)
        wait_until(lambda: status_counts(pg_conn) == {"forwarded": 2}, message="forwarded")

    class Refusing(AirflowClient):
        def trigger(self, batch: ForwardBatch) -> TriggerOutcome:
            raise RejectedError("Airflow answered 422: invalid conf", summary="Airflow answered 422")

    body = (github_samples / "webhooks/ping/payload.json").read_bytes()
    pg_conn.execute(
        "INSERT INTO webhook_deliveries (delivery_id, event, payload) VALUES ('d-1', 'ping', %s::jsonb)",
        (body.decode(),),
    )
    pg_conn.commit()
    # The app closed `store` at the end of its lifespan: this forwarder gets a store of its own.
    rejecting_store = DeliveryStore(pg_database)
    try:
        rejecting = Forwarder(
            rejecting_store, Refusing(airflow_stub.url, None, None), coalesce_seconds=0, max_ids_per_run=10
        )
        assert rejecting.forward_pending() is True
    finally:
        rejecting_store.close()
    pg_conn.commit()
    assert pg_conn.execute(
        "SELECT status, error FROM webhook_deliveries WHERE delivery_id = 'd-1'"
    ).fetchone() == (
        "failed",
        "Airflow answered 422: invalid conf",
    )


def test_dag_run_id_is_assigned_before_the_request_and_kept(
    store: DeliveryStore, pg_conn: psycopg.Connection
) -> None:
    pg_conn.execute(
        "INSERT INTO webhook_deliveries (delivery_id, event, payload, received_at) VALUES "
        "('b', 'ping', '{}', '2026-01-02T03:04:05.000006Z'), "
        "('a', 'ping', '{}', '2026-01-02T03:04:05.000006Z')"
    )
    pg_conn.commit()
    batch = store.assign_batch(10)
    assert batch is not None and batch.delivery_ids == ("a", "b")
    assert batch.dag_run_id.startswith("webhook__20260102T030405000006Z__")
    assert store.assign_batch(10) is None  # nothing unassigned left
    assert store.unforwarded_batches() == [batch]  # what a restarted relay retries, unchanged
    pg_conn.commit()
    assert {r[0] for r in pg_conn.execute("SELECT dag_run_id FROM webhook_deliveries")} == {batch.dag_run_id}
    json.dumps(batch.delivery_ids)


def test_the_retry_backoff_keeps_its_jitter_at_the_cap() -> None:
    from tenacity import RetryCallState

    wait = retry_wait(1.0, 8.0)

    def wait_after(attempt: int) -> float:
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return wait(state)

    assert all(1.0 <= wait_after(1) <= 2.0 for _ in range(50))
    capped = {round(wait_after(30), 6) for _ in range(50)}
    # At the cap every wait lies in [cap, cap + initial] and they differ: relays stay out of step.
    assert all(8.0 <= value <= 9.0 for value in capped) and len(capped) > 1
