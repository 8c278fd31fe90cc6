"""Helpers shared by the relay and webhook DAG tests: signed deliveries, settings, a fast forwarder."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg

from github_sync.webhooks.relay.airflow_api import AirflowClient
from github_sync.webhooks.relay.forwarder import Forwarder
from github_sync.webhooks.relay.settings import RelaySettings
from github_sync.webhooks.relay.signature import compute_signature
from github_sync.webhooks.relay.store import DeliveryStore
from tests.webhooks.airflow_stub import PASSWORD, USERNAME

SECRET = "relay-test-secret-Zq9"
ADMIN_TOKEN = "relay-admin-token-for-tests-0001"
# The headers of a request to the relay's admin routes (/stats, /openapi.json).
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# (event, sample path relative to webhooks/), in the order a test posts them.
SAMPLES: list[tuple[str, str]] = [
    ("ping", "ping/payload.json"),
    ("repository", "repository/created.payload.json"),
    ("repository", "repository/renamed.payload.json"),
    ("issues", "issues/opened.payload.json"),
    ("issues", "issues/opened.with-empty-body.payload.json"),
    ("issues", "issues/labeled.payload.json"),
    ("issues", "issues/edited.payload.json"),
    ("issues", "issues/reopened.payload.json"),
    ("pull_request", "pull_request/opened.payload.json"),
    ("pull_request", "pull_request/opened.with-null-body.json"),
    ("pull_request", "pull_request/synchronize.payload.json"),
    ("pull_request", "pull_request/closed.payload.json"),
    ("push", "push/payload.json"),
    ("push", "push/with-new-branch.payload.json"),
]


def all_sample_files(github_samples: Path) -> list[Path]:
    return sorted((github_samples / "webhooks").rglob("*.json"))


def headers(body: bytes, event: str, delivery_id: str | None = None, secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "4242",
        "X-Hub-Signature-256": compute_signature(secret, body),
        "User-Agent": "GitHub-Hookshot/test",
    }


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def relay_settings(database_url: str, airflow_url: str, **overrides: Any) -> RelaySettings:
    values: dict[str, Any] = {
        "webhook_secret": SECRET,
        "database_url": database_url,
        "airflow_api_url": airflow_url,
        "airflow_username": USERNAME,
        "airflow_password": PASSWORD,
        "coalesce_seconds": 0.3,
        "admin_token": ADMIN_TOKEN,
    }
    values.update(overrides)
    # By field name and without reading os.environ: a test's settings are exactly these.
    return RelaySettings.model_validate(values)


def fast_forwarder(store: DeliveryStore, settings: RelaySettings, *, read_timeout: float = 0.5) -> Forwarder:
    """A forwarder with test-sized timeouts and backoff."""
    client = AirflowClient(
        settings.airflow_api_url,
        settings.airflow_username,
        settings.airflow_password_value(),
        timeout=(1.0, read_timeout),
    )
    return Forwarder(
        store,
        client,
        coalesce_seconds=settings.coalesce_seconds,
        max_ids_per_run=settings.max_ids_per_run,
        backoff_initial=0.1,
        backoff_max=0.4,
        poll_seconds=0.5,
    )


def delivery_rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    conn.commit()  # see other connections' commits
    return conn.execute(
        "SELECT delivery_id, event, action, status, dag_run_id, repository_id, repository "
        "FROM webhook_deliveries ORDER BY received_at, delivery_id"
    ).fetchall()
