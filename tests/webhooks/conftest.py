"""Fixtures of the relay tests: a delivery store on the test database and a fake Airflow.

The fake Airflow (``tests/webhooks/airflow_stub.py``) stands in for the REST API only; nothing
here may start a real Airflow (tests/e2e does).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import TupleRow

from github_sync.webhooks.relay.store import DeliveryStore
from tests.webhooks.airflow_stub import AirflowStub


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
