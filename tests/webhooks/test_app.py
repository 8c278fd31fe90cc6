"""The relay's HTTP contract, through FastAPI's TestClient on a real PostgreSQL."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from github_sync.webhooks.relay.app import MAX_BODY_BYTES, create_app
from github_sync.webhooks.relay.forwarder import Forwarder
from github_sync.webhooks.relay.signature import compute_signature
from github_sync.webhooks.relay.store import DeliveryStore
from tests.polling import wait_until
from tests.webhooks.airflow_stub import AirflowStub
from tests.webhooks.helpers import (
    ADMIN,
    SECRET,
    all_sample_files,
    body_of,
    delivery_rows,
    fast_forwarder,
    headers,
    relay_settings,
)

WEBHOOK = "/webhooks/github"


def forwarder_of(client: TestClient) -> Forwarder:
    """The forwarder of the app under test (to run a forwarding pass of the test's own)."""
    forwarder: Forwarder = client.app.state.forwarder
    return forwarder


def test_github_vector_secret_gets_past_the_signature_check(
    pg_database: str, store: DeliveryStore, airflow_stub: AirflowStub, github_samples: Path
) -> None:
    vector = json.loads((github_samples / "webhook_signature_test_vector.json").read_text())
    settings = relay_settings(pg_database, airflow_stub.url, webhook_secret=vector["secret"])
    app = create_app(settings, store=store, forwarder=fast_forwarder(store, settings))
    with TestClient(app) as client:
        base = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid4())}
        good = client.post(
            WEBHOOK,
            content=vector["payload"],
            headers={**base, "X-Hub-Signature-256": vector["x_hub_signature_256"]},
        )
        bad = client.post(
            WEBHOOK, content=vector["payload"], headers={**base, "X-Hub-Signature-256": "sha256=" + "0" * 64}
        )
    # The vector's body is not JSON: a valid signature leads to the JSON check (400), an invalid one to 401.
    assert good.status_code == 400 and "not valid JSON" in good.json()["detail"]
    assert bad.status_code == 401


@pytest.mark.parametrize(
    "case", ["wrong secret", "tampered body", "missing header", "sha1 only", "empty header"]
)
def test_bad_signatures_are_rejected_and_nothing_is_stored(
    client: TestClient, pg_conn: psycopg.Connection, case: str
) -> None:
    body = body_of({"zen": "Keep it logically awesome.", "hook_id": 1})
    sent = dict(headers(body, "ping"))
    if case == "wrong secret":
        sent["X-Hub-Signature-256"] = compute_signature("other secret", body)
    elif case == "tampered body":
        body = body.replace(b"awesome", b"awesomE")
    elif case == "missing header":
        del sent["X-Hub-Signature-256"]
    elif case == "sha1 only":
        del sent["X-Hub-Signature-256"]
        sent["X-Hub-Signature"] = "sha1=0a4d55a8d778e5022fab701977c5d840bbc486d0"
    else:
        sent["X-Hub-Signature-256"] = ""
    response = client.post(WEBHOOK, content=body, headers=sent)
    assert response.status_code == 401, response.text
    assert SECRET not in response.text
    assert delivery_rows(pg_conn) == []


def test_oversized_bodies_get_413_and_nothing_is_stored(
    client: TestClient, pg_conn: psycopg.Connection
) -> None:
    body = body_of({"zen": "x"})
    declared = client.post(
        WEBHOOK, content=body, headers={**headers(body, "ping"), "Content-Length": str(MAX_BODY_BYTES + 1)}
    )
    assert declared.status_code == 413

    big = b'{"zen": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'

    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to check first
        step = 1024 * 1024
        for start in range(0, len(big), step):
            yield big[start : start + step]

    streamed = client.post(WEBHOOK, content=chunks(), headers=headers(big, "ping"))
    assert streamed.status_code == 413
    assert delivery_rows(pg_conn) == []


@pytest.mark.parametrize(
    ("case", "detail"),
    [
        ("no event", "X-GitHub-Event"),
        ("no delivery", "X-GitHub-Delivery"),
        ("bad json", "not valid JSON"),
        ("json array", "JSON object"),
    ],
)
def test_malformed_requests_get_400_with_a_clear_message(
    client: TestClient, pg_conn: psycopg.Connection, case: str, detail: str
) -> None:
    body = {"bad json": b'{"zen": ', "json array": b"[1, 2]"}.get(case, body_of({"zen": "x"}))
    sent = headers(body, "ping")
    if case == "no event":
        del sent["X-GitHub-Event"]
    if case == "no delivery":
        del sent["X-GitHub-Delivery"]
    response = client.post(WEBHOOK, content=body, headers=sent)
    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert delivery_rows(pg_conn) == []


def test_every_sample_is_accepted_and_stored(
    client: TestClient, pg_conn: psycopg.Connection, github_samples: Path
) -> None:
    sent: dict[str, tuple[str, dict]] = {}
    for path in all_sample_files(github_samples):
        event = path.parent.name
        body = path.read_bytes()
        delivery_id = str(uuid.uuid4())
        response = client.post(WEBHOOK, content=body, headers=headers(body, event, delivery_id))
        assert response.status_code == 202, (path, response.text)
        assert response.json() == {"delivery_id": delivery_id, "status": "pending"}
        sent[delivery_id] = (event, json.loads(body))
    pg_conn.commit()
    rows = pg_conn.execute(
        "SELECT delivery_id, event, action, hook_id, repository_id, repository, payload "
        "FROM webhook_deliveries"
    ).fetchall()
    assert len(rows) == len(sent) >= 14
    for delivery_id, event, action, hook_id, repository_id, repository, payload in rows:
        expected_event, expected = sent[delivery_id]
        assert (event, action, hook_id) == (expected_event, expected.get("action"), "4242")
        assert (repository_id, repository) == (
            expected["repository"]["id"],
            expected["repository"]["full_name"],
        )
        assert payload == expected


def test_form_encoded_delivery_is_accepted(
    client: TestClient, pg_conn: psycopg.Connection, github_samples: Path
) -> None:
    from urllib.parse import urlencode

    payload = (github_samples / "webhooks/ping/payload.json").read_text()
    body = urlencode({"payload": payload}).encode()
    sent = {**headers(body, "ping"), "Content-Type": "application/x-www-form-urlencoded"}
    assert client.post(WEBHOOK, content=body, headers=sent).status_code == 202
    assert [r[1] for r in delivery_rows(pg_conn)] == ["ping"]


def test_redelivery_is_a_no_op(
    client: TestClient, pg_conn: psycopg.Connection, airflow_stub: AirflowStub, github_samples: Path
) -> None:
    body = (github_samples / "webhooks/issues/opened.payload.json").read_bytes()
    sent = headers(body, "issues", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    first = client.post(WEBHOOK, content=body, headers=sent)
    wait_until(lambda: airflow_stub.runs, message="the first delivery's DAG run")
    again = client.post(WEBHOOK, content=body, headers=sent)  # GitHub's "Redeliver": same GUID
    # A forwarding pass of our own, after the redelivery was answered: whatever it left to
    # forward would be triggered now, so no second run here means there is none to come.
    assert forwarder_of(client).forward_pending() is True
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["status"] == "duplicate"
    assert len(delivery_rows(pg_conn)) == 1
    assert list(airflow_stub.runs.values()) == [["72d3162e-cc78-11e3-81ab-4c9367dc0958"]]
    assert client.get("/stats", headers=ADMIN).json()["requests"]["duplicates"] == 1


def test_unsupported_events_are_acknowledged_stored_ignored_and_counted(
    client: TestClient, pg_conn: psycopg.Connection, airflow_stub: AirflowStub
) -> None:
    for event in ("star", "star", "workflow_run"):
        body = body_of({"action": "created", "repository": {"id": 1, "full_name": "acme/app"}})
        assert client.post(WEBHOOK, content=body, headers=headers(body, event)).status_code == 202
    # A forwarding pass of our own forwards everything pending: ignored deliveries are not.
    assert forwarder_of(client).forward_pending() is True
    assert {r[3] for r in delivery_rows(pg_conn)} == {"ignored"}
    assert airflow_stub.runs == {}
    stats = client.get("/stats", headers=ADMIN).json()
    assert stats["deliveries"]["ignored_by_event"] == {"star": 2, "workflow_run": 1}
    assert stats["requests"]["ignored_by_event"] == {"star": 2, "workflow_run": 1}
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_database_down_answers_503_not_202(airflow_stub: AirflowStub) -> None:
    settings = relay_settings("postgresql://nobody@127.0.0.1:1/none", airflow_stub.url)
    # A short wait for a connection keeps the test quick; the answer is the same after 5 s.
    store = DeliveryStore(settings.database_url, connection_wait_seconds=0.5)
    app = create_app(settings, store=store, forwarder=fast_forwarder(store, settings))
    with TestClient(app) as client:
        body = body_of({"zen": "x"})
        assert client.post(WEBHOOK, content=body, headers=headers(body, "ping")).status_code == 503
        assert client.get("/healthz").status_code == 503


def test_secret_never_appears_in_logs(
    client: TestClient, caplog: pytest.LogCaptureFixture, github_samples: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    body = (github_samples / "webhooks/ping/payload.json").read_bytes()
    client.post(WEBHOOK, content=body, headers=headers(body, "ping"))
    client.post(WEBHOOK, content=body, headers=headers(body, "ping", secret="wrong"))
    client.post(WEBHOOK, content=b"{", headers=headers(b"{", "ping"))
    assert caplog.records
    assert SECRET not in caplog.text
