"""Fixtures of the relay tests: a delivery store on the test database and a fake Airflow.

The fake Airflow (``tests/webhooks/airflow_stub.py``) stands in for the REST API only; nothing
here may start a real Airflow (tests/e2e does).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import TupleRow

from github_sync.webhooks.relay.app import create_app
from github_sync.webhooks.relay.store import DeliveryStore
from tests.webhooks.airflow_stub import AirflowStub
from tests.webhooks.helpers import fast_forwarder, relay_settings


@pytest.fixture
def airflow_stub() -> Iterator[AirflowStub]:
    """A fake Airflow API, not yet listening (call ``start()``)."""
    stub = AirflowStub()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def store(pg_database: str, pg_conn: psycopg.Connection[TupleRow]) -> Iterator[DeliveryStore]:
    """A delivery store on the (emptied) test database."""
    delivery_store = DeliveryStore(pg_database)
    try:
        yield delivery_store
    finally:
        delivery_store.close()


@pytest.fixture
def client(pg_database: str, store: DeliveryStore, airflow_stub: AirflowStub) -> Iterator[TestClient]:
    """The relay with a running fake Airflow."""
    airflow_stub.start()
    settings = relay_settings(pg_database, airflow_stub.url)
    app = create_app(settings, store=store, forwarder=fast_forwarder(store, settings))
    with TestClient(app) as test_client:
        yield test_client
