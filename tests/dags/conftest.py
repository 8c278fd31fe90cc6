"""Fixtures for running the DAGs with ``dag.test()`` against the simulator and PostgreSQL.

``dag.test()`` needs an initialised Airflow metadata database and its connections: the
``airflow_db`` and ``dagbag`` fixtures and :func:`connect_airflow_to` are shared with the
status tests (``tests/support/airflow.py``); the simulators are started by the shared
``start_simulator`` fixture (``tests/support/simulators.py``). This file only says which
organisations the DAG tests sync; it must not define Airflow fixtures of its own (the status
tests share them).
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from psycopg.rows import TupleRow

from github_sim import Simulator

# What the DAG and status tests import from here; the fixtures airflow_db and dagbag come from
# the same plugin module (registered in tests/conftest.py), not from this file.
from tests.support.airflow import FAST_RETRIES, TEST_TOKEN, connect_airflow_to

__all__ = ["FAST_RETRIES", "TEST_TOKEN", "connect_airflow_to"]


@pytest.fixture
def simulator(start_simulator: Callable[..., Simulator]) -> Simulator:
    """A fresh 180-repository organisation for the test (the size of the demo's)."""
    return start_simulator(repos=180, seed=1)


@pytest.fixture
def small_simulator(start_simulator: Callable[..., Simulator]) -> Simulator:
    """A fresh 12-repository organisation, for tests that do not need the demo's size."""
    return start_simulator(repos=12, seed=3)


@pytest.fixture
def wired(
    monkeypatch: pytest.MonkeyPatch,
    simulator: Simulator,
    pg_conn: psycopg.Connection[TupleRow],
    pg_database: str,
) -> tuple[Simulator, psycopg.Connection[TupleRow]]:
    """The 180-repository simulator and the emptied test database, the Airflow connections on them."""
    connect_airflow_to(monkeypatch, simulator, pg_database)
    return simulator, pg_conn
