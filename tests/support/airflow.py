"""The one place tests prepare an in-process Airflow: its metadata database, a DagBag, its connections.

A pytest plugin (registered by ``tests/conftest.py``): ``airflow_db`` migrates the SQLite
metadata database of the temporary AIRFLOW_HOME that tests/conftest.py sets, once per session,
and creates the ``github_api`` pool; ``dagbag`` parses the dags/ folder afresh. Connections
are given as ``AIRFLOW_CONN_*`` variables (:func:`connect_airflow_to`), as in a deployment
configured from the environment. Used by the DAG tests and the status tests alike.

It must not import Airflow at module level: Airflow reads its configuration when it is first
imported, and that must happen after tests/conftest.py has set the environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from github_sim import Simulator
from github_sync.config import (
    DATABASE_CONN_ID,
    GITHUB_CONN_ID,
    GITHUB_POOL,
    connection_env,
    github_connection,
    postgres_connection,
)

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag

AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))
TEST_TOKEN = "ghp_testtoken_dagtests_0123456789"
POOL_SLOTS = 8
MIGRATE_TIMEOUT_S = 600
POOL_TIMEOUT_S = 120
# Hook tunables for tests: quick retries, so a failing repository fails in seconds.
FAST_RETRIES = {"retry_max_attempts": 2, "retry_backoff_initial_s": 0.05, "retry_backoff_max_s": 0.1}


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Migrate the test Airflow metadata database and create the pool (once per session)."""
    subprocess.run([AIRFLOW_BIN, "db", "migrate"], check=True, capture_output=True, timeout=MIGRATE_TIMEOUT_S)
    subprocess.run(
        [AIRFLOW_BIN, "pools", "set", GITHUB_POOL, str(POOL_SLOTS), "GitHub API concurrency"],
        check=True,
        capture_output=True,
        timeout=POOL_TIMEOUT_S,
    )


@pytest.fixture
def dagbag(airflow_db: None) -> DagBag:
    """A freshly parsed DagBag: in-process task runs of dag.test() can leave state on the DAG objects."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert bag.import_errors == {}
    return bag


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
