"""github_webhook_events end to end: samples posted to the relay, forwarded, applied by dag.test().

The relay's forwarder talks to a stand-in for Airflow's REST API (it records the conf the
relay sends); that exact conf is then run with ``dag.test()`` against PostgreSQL. No GitHub
API is reachable: the DAG must work from the payloads alone.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from github_sync.transform.normalizer import (
    normalize_commit,
    normalize_issue,
    normalize_pull_request,
    normalize_repository,
)
from github_sync.webhooks.relay.app import create_app
from github_sync.webhooks.relay.store import DeliveryStore
from tests.dags.conftest import connect_airflow_to
from tests.polling import wait_until
from tests.webhooks.airflow_stub import AirflowStub
from tests.webhooks.helpers import ADMIN, SAMPLES, body_of, fast_forwarder, headers, relay_settings

WEBHOOK = "/webhooks/github"
# Generous: forwarding takes well under a second once no run is in flight.
FORWARD_TIMEOUT_S = 20
# The relay's in-flight ceiling here: far longer than posting the samples takes, so that
# they all wait behind the run in flight (airflow_busy) and become one run.
IN_FLIGHT_CEILING_S = 60.0
# Nothing listens there: any GitHub API call from the DAG would fail the run.
NO_GITHUB = SimpleNamespace(url="http://127.0.0.1:9")


@pytest.fixture
def wired_webhooks(
    monkeypatch: pytest.MonkeyPatch, pg_conn: psycopg.Connection, pg_database: str
) -> Iterator[tuple[TestClient, AirflowStub]]:
    connect_airflow_to(monkeypatch, NO_GITHUB, pg_database)  # type: ignore[arg-type]
    stub = AirflowStub().start()
    settings = relay_settings(pg_database, stub.url, coalesce_seconds=IN_FLIGHT_CEILING_S)
    store = DeliveryStore(pg_database)
    try:
        with TestClient(
            create_app(settings, store=store, forwarder=fast_forwarder(store, settings))
        ) as client:
            yield client, stub
    finally:
        stub.stop()


@contextmanager
def airflow_busy(conn: psycopg.Connection) -> Iterator[None]:
    """A webhook run in flight meanwhile (one forwarded row of an earlier run).

    The relay forwards on the leading edge, and coalesces only behind a run in flight: the
    deliveries posted inside this block become one run, sent once the block ends (the row
    is gone, as if the earlier run had been processed and pruned).
    """
    conn.execute(
        "INSERT INTO webhook_deliveries (delivery_id, event, payload, status, dag_run_id, forwarded_at) "
        "VALUES ('earlier-run', 'ping', '{}', 'forwarded', 'webhook__earlier', now())"
    )
    conn.commit()
    try:
        yield
    finally:
        conn.execute("DELETE FROM webhook_deliveries WHERE delivery_id = 'earlier-run'")
        conn.commit()


def post(
    client: TestClient, event: str, body: bytes, delivery_id: str | None = None, *, expect: str | None = None
) -> str:
    delivery_id = delivery_id or str(uuid.uuid4())
    response = client.post(WEBHOOK, content=body, headers=headers(body, event, delivery_id))
    assert response.status_code == 202, response.text
    if expect is not None:
        assert response.json()["status"] == expect, response.text
    return delivery_id


def forwarded_count(conn: psycopg.Connection) -> int:
    conn.commit()  # a fresh snapshot: the relay writes from its own connections
    row = conn.execute("SELECT count(*) FROM webhook_deliveries WHERE status = 'forwarded'").fetchone()
    return int(row[0]) if row else 0


def wait_forwarded(conn: psycopg.Connection, count: int) -> None:
    wait_until(
        lambda: forwarded_count(conn) == count,
        timeout=FORWARD_TIMEOUT_S,
        message=f"{count} deliveries were not forwarded",
    )


def row(
    conn: psycopg.Connection, table: str, where: str, params: tuple[Any, ...], columns: list[str]
) -> dict:
    found = conn.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {where}", params).fetchone()
    assert found is not None, f"no {table} row where {where} {params}"
    return dict(zip(columns, found, strict=True))


def test_every_sample_through_relay_and_dag(
    dagbag: Any,
    wired_webhooks: tuple[TestClient, AirflowStub],
    pg_conn: psycopg.Connection,
    github_samples: Path,
) -> None:
    client, stub = wired_webhooks
    payloads: dict[str, dict[str, Any]] = {}
    ids = []
    with airflow_busy(pg_conn):
        for event, sample in SAMPLES:
            body = (github_samples / "webhooks" / sample).read_bytes()
            ids.append(post(client, event, body))
            payloads[sample] = json.loads(body)
        post(
            client,
            "star",
            body_of({"action": "created", "repository": payloads["ping/payload.json"]["repository"]}),
        )
    wait_forwarded(pg_conn, len(SAMPLES))
    body = (github_samples / "webhooks/issues/edited.payload.json").read_bytes()
    # A redelivery: no new row, so nothing waits to be forwarded and no new run can follow.
    post(client, "issues", body, ids[6], expect="duplicate")
    relay = client.get("/stats", headers=ADMIN).json()
    assert relay["requests"]["duplicates"] == 1, relay
    assert (relay["deliveries"]["pending_unassigned"], relay["deliveries"]["pending_assigned"]) == (0, 0), (
        relay
    )
    assert forwarded_count(pg_conn) == len(SAMPLES)
    assert len(stub.runs) == 1, stub.runs
    conf = stub.bodies[0]["conf"]
    assert conf == {"delivery_ids": ids}

    dag = dagbag.get_dag("github_webhook_events")
    run = dag.test(run_conf=conf)
    assert run.state == "success"
    pg_conn.commit()
    statuses = dict(
        pg_conn.execute("SELECT event, array_agg(DISTINCT status) FROM webhook_deliveries GROUP BY event")
    )
    assert statuses == {e: ["processed"] for e, _ in SAMPLES} | {"star": ["ignored"]}
    as_of = datetime.fromtimestamp(run.run_after.timestamp(), tz=UTC)

    # Codertocat/Hello-World: the newest repository metadata is pull_request/closed's (updated
    # 15:21:14, later than push's 15:20:41); last_commit is the latest pushed_at seen.
    repo = payloads["pull_request/closed.payload.json"]["repository"]
    expected = normalize_repository(repo)
    pushed = [normalize_repository(p["repository"])["last_commit"] for p in payloads.values() if
              p["repository"]["id"] == repo["id"]]  # fmt: skip
    expected["last_commit"] = max(pushed)
    assert row(pg_conn, "projects", "github_id = %s", (repo["id"],), list(expected)) == expected
    project_id = pg_conn.execute("SELECT id FROM projects WHERE github_id = %s", (repo["id"],)).fetchone()[0]
    # Octocoders/Hello-World: created then renamed (same updated_at: the later delivery wins).
    octo = normalize_repository(payloads["repository/renamed.payload.json"]["repository"])
    assert row(pg_conn, "projects", "github_id = %s", (octo["github_id"],), list(octo)) == octo
    # The issue: reopened (updated 2021) is the newest of the five issue deliveries.
    issue = {**normalize_issue(payloads["issues/reopened.payload.json"]["issue"], as_of=as_of),
             "project_id": project_id, "removed_at": None}  # fmt: skip
    assert row(pg_conn, "bugs", "github_id = %s", (issue["github_id"],), list(issue)) == issue
    # The pull request: closed (updated 15:21:18) is the newest.
    pr = {**normalize_pull_request(payloads["pull_request/closed.payload.json"]["pull_request"], as_of=as_of),
          "project_id": project_id}  # fmt: skip
    assert (
        row(pg_conn, "pull_requests", "project_id = %s AND number = %s", (project_id, pr["number"]), list(pr))
        == pr
    )
    # Commits: the push to the default branch; the tag push has none.
    commits = [normalize_commit(c) for c in payloads["push/with-new-branch.payload.json"]["commits"]]
    assert pg_conn.execute("SELECT count(*) FROM commits").fetchone() == (len(commits),)
    for commit in commits:
        assert row(pg_conn, "commits", "sha = %s", (commit["sha"],), list(commit)) == commit
    counts = [
        pg_conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("projects", "bugs", "pull_requests")
    ]
    assert counts == [2, 1, 1]

    log_row = pg_conn.execute(
        "SELECT records_imported, records_failed, errors, metadata FROM import_logs "
        "WHERE metadata ->> 'run_id' = %s",
        (run.run_id,),
    ).fetchone()
    assert log_row is not None
    records_imported, records_failed, errors, metadata = log_row
    assert records_imported > 0 and records_failed == 0 and errors == []
    assert metadata["mode"] == "webhook" and metadata["state"] == "success"
    assert metadata["webhook"]["applied"] == len(SAMPLES)
    print(f"\nwebhook DAG run: {len(SAMPLES)} deliveries -> 1 run, {records_imported} records")


def test_a_failed_delivery_fails_the_run_with_details(
    dagbag: Any,
    wired_webhooks: tuple[TestClient, AirflowStub],
    pg_conn: psycopg.Connection,
    github_samples: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, stub = wired_webhooks
    good = (github_samples / "webhooks/issues/opened.payload.json").read_bytes()
    broken = copy.deepcopy(
        json.loads((github_samples / "webhooks/pull_request/opened.payload.json").read_text())
    )
    del broken["pull_request"]["updated_at"]
    with airflow_busy(pg_conn):
        bad_id = post(client, "pull_request", body_of(broken))
        good_id = post(client, "issues", good)
    wait_forwarded(pg_conn, 2)
    dag = dagbag.get_dag("github_webhook_events")
    # A retry cannot fix a malformed payload; skip it so the test does not wait for it.
    monkeypatch.setattr(dag.task_dict["apply_deliveries"], "retries", 0)
    run = dag.test(run_conf=stub.bodies[0]["conf"])
    assert run.state == "failed"
    pg_conn.commit()
    statuses = dict(pg_conn.execute("SELECT delivery_id, status FROM webhook_deliveries"))
    assert statuses == {bad_id: "failed", good_id: "processed"}
    error = pg_conn.execute(
        "SELECT error FROM webhook_deliveries WHERE delivery_id = %s", (bad_id,)
    ).fetchone()[0]
    assert "updated_at" in error
    assert pg_conn.execute("SELECT count(*) FROM bugs").fetchone() == (1,)
    records_failed, errors, metadata = pg_conn.execute(
        "SELECT records_failed, errors, metadata FROM import_logs WHERE metadata ->> 'run_id' = %s",
        (run.run_id,),
    ).fetchone()
    assert metadata["state"] == "failed" and records_failed >= 1
    assert any(bad_id in e and "updated_at" in e for e in errors), errors


def test_a_malformed_conf_fails_at_once_with_the_reason_in_import_logs(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    from datetime import timedelta

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    connect_airflow_to(monkeypatch, NO_GITHUB, pg_database)  # type: ignore[arg-type]
    dag = dagbag.get_dag("github_webhook_events")
    dag.task_dict["apply_deliveries"].retry_delay = timedelta(0)  # a broken fail-fast shows as a second try

    run = dag.test(run_conf={"delivery_ids": "not-a-list"})

    assert run.state == "failed"
    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id).one()
        assert (str(ti.state), ti.try_number) == ("failed", 1)
    errors, metadata = pg_conn.execute(
        "SELECT errors, metadata FROM import_logs WHERE metadata->>'run_id' = %s", (run.run_id,)
    ).fetchone()
    assert metadata["state"] == "failed" and metadata["mode"] == "webhook"
    assert any("delivery_ids" in e and "non-empty list" in e for e in errors), errors
