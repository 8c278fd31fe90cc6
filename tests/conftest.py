"""Fixtures shared by every test: paths to GitHub's own samples, a real PostgreSQL, the simulator.

Airflow reads its configuration from the environment when it is first imported, so the
test Airflow home (SQLite metadata in a temporary folder, our dags/ folder) is set here,
before any test module imports Airflow.

The simulator fixtures (``sim``, ``start_simulator``, the ``simulator`` mark) live in
``tests/support/simulators.py`` and the in-process Airflow ones (``airflow_db``, ``dagbag``)
in ``tests/support/airflow.py``, registered below as plugins; a package's conftest only says
which organisation its ``sim`` is (``simulator_fields``). Tests wait for things in other
threads or processes with ``tests.polling.wait_until``, never with a loop of their own.
This module must not start anything at import time besides setting the environment.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import TupleRow

# Shared building blocks, one module each (fixtures of a plugin apply to every test package).
pytest_plugins = ["tests.support.simulators", "tests.support.airflow"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("GITHUB_SYNC_SHARED_DIR", REPO_ROOT.parent / "shared"))
GITHUB_SAMPLES = SHARED_DIR / "github-samples"

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="github-sync-airflow-"))
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME}/airflow.db")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO_ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")

# The PostgreSQL server the tests run against; each test session gets its own database.
PG_SERVER_DSN = os.environ.get("GITHUB_SYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def github_samples() -> Path:
    """GitHub's own webhook payloads, OpenAPI description and signature test vector."""
    if not GITHUB_SAMPLES.is_dir():
        pytest.fail(f"GitHub samples not found at {GITHUB_SAMPLES} (set GITHUB_SYNC_SHARED_DIR)")
    return GITHUB_SAMPLES


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session; returns its URL.

    Fails (never skips) when the server cannot be reached: the product is a
    PostgreSQL loader and a test run without PostgreSQL proves nothing.
    """
    from github_sync.store.migrations import apply_migrations

    name = f"github_sync_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_SERVER_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_SERVER_DSN}: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_SERVER_DSN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        apply_migrations(conn)
    try:
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A database on the test server with no github-sync schema at all (nobody ran `github-sync migrate`)."""
    name = f"github_sync_empty_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_SERVER_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_SERVER_DSN}: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_SERVER_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


SYNCED_TABLES = (
    "webhook_deliveries",
    "webhook_recovery",
    "webhook_redelivery_requests",
    "github_http_cache",
    "sync_cursors",
    "import_logs",
    "project_metrics",
    "commits",
    "pull_requests",
    "bugs",
    "projects",
)


@pytest.fixture
def pg_conn(pg_database: str) -> Iterator[psycopg.Connection[TupleRow]]:
    """A connection to the session database, emptied before the test."""
    conn = psycopg.connect(pg_database)
    conn.execute("TRUNCATE " + ", ".join(SYNCED_TABLES) + " RESTART IDENTITY CASCADE")
    conn.commit()
    try:
        yield conn
    finally:
        conn.close()
