"""Fixtures for running the DAGs with ``dag.test()`` against the simulator and PostgreSQL.

``dag.test()`` needs an initialised Airflow metadata database: the session fixture
migrates the SQLite database of the temporary AIRFLOW_HOME set in tests/conftest.py and
creates the ``github_api`` pool. Connections come from ``AIRFLOW_CONN_*`` variables, as
they would in a deployment configured from the environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from github_sim import Simulator, SimulatorConfig
from github_sync.config import (
    DATABASE_CONN_ID,
    GITHUB_CONN_ID,
    GITHUB_POOL,
    connection_env,
    github_connection,
    postgres_connection,
)

AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))
TEST_TOKEN = "ghp_testtoken_dagtests_0123456789"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Migrate the test Airflow metadata database and create the pool (once per session)."""
    subprocess.run([AIRFLOW_BIN, "db", "migrate"], check=True, capture_output=True, timeout=600)
    subprocess.run(
        [AIRFLOW_BIN, "pools", "set", GITHUB_POOL, "8", "GitHub API concurrency"],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def dagbag(airflow_db: None) -> Any:
    """A freshly parsed DagBag: in-process task runs of dag.test() can leave state on the DAG objects."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert bag.import_errors == {}
    return bag


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A fresh 180-repository organisation for the test."""
    with Simulator(SimulatorConfig(owner="acme", repos=180, seed=1)) as sim:
        yield sim


@pytest.fixture
def small_simulator() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(owner="acme", repos=12, seed=3)) as sim:
        yield sim


# Hook tunables for tests: quick retries, so a failing repository fails in seconds.
FAST_RETRIES = {"retry_max_attempts": 2, "retry_backoff_initial_s": 0.05, "retry_backoff_max_s": 0.1}


def connect_airflow_to(
    monkeypatch: pytest.MonkeyPatch,
    sim: Simulator,
    database_url: str,
    hook_extra: dict[str, Any] | None = None,
) -> None:
    """Point the Airflow connections at the simulator and the test database."""
    connections = {
        GITHUB_CONN_ID: github_connection(sim.url, TEST_TOKEN, {**FAST_RETRIES, **(hook_extra or {})}),
        DATABASE_CONN_ID: postgres_connection(database_url),
    }
    for name, value in connection_env(connections).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def wired(
    monkeypatch: pytest.MonkeyPatch, simulator: Simulator, pg_conn: psycopg.Connection, pg_database: str
) -> tuple[Simulator, psycopg.Connection]:
    connect_airflow_to(monkeypatch, simulator, pg_database)
    return simulator, pg_conn
