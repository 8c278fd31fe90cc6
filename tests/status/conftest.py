"""Fixtures of the status tests: Airflow's real api-server app with the plugin, and a token.

The app is Airflow's own ``create_app("core")``: it loads the plugin from the plugins
folder (as the api-server does), mounts the status app under ``/github-sync`` and wires
Airflow's auth manager, so the tests exercise the real authentication path. The migrated
metadata database (``airflow_db``) is the shared fixture of ``tests/support/airflow.py``.
Nothing here may bypass the auth manager: clients authenticate as the api-server requires.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import TupleRow

from tests.status.seed import Seeded, clear_run_tables, seed_history, seed_owners


@pytest.fixture(scope="session")
def airflow_app(airflow_db: None) -> Any:
    """Airflow's api-server app (core API, UI routes, plugins), built once."""
    from airflow.api_fastapi.app import create_app

    return create_app("core")


@pytest.fixture(scope="session")
def admin_token(airflow_app: Any) -> str:
    """A JWT of the admin user, issued by the auth manager the app uses."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="ADMIN"))


@pytest.fixture
def status_env(monkeypatch: pytest.MonkeyPatch, pg_database: str) -> str:
    """Point the api-server side at the test database through the Airflow connection."""
    dsn = psycopg.conninfo.conninfo_to_dict(pg_database)
    monkeypatch.setenv(
        "AIRFLOW_CONN_GITHUB_SYNC_DB",
        f"postgres://{dsn.get('user', 'postgres')}@{dsn.get('host', '127.0.0.1')}:{dsn.get('port', 5432)}"
        f"/{dsn['dbname']}",
    )
    # The lazily built app caches the DSN: expire it so this test's connection is used.
    _expire_dsn_cache()
    return pg_database


def _expire_dsn_cache() -> None:
    from github_sync.orchestration.plugin import GitHubSyncPlugin

    app = GitHubSyncPlugin.fastapi_apps[0]["app"]
    if app.built is not None:
        app.built.state.database.forget_dsn()


@pytest.fixture
def client(airflow_app: Any, status_env: str) -> Iterator[Any]:
    """An unauthenticated client of the api-server app."""
    from fastapi.testclient import TestClient

    with TestClient(airflow_app, base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture
def auth_client(client: Any, admin_token: str) -> Any:
    """The client with the admin's Bearer token."""
    client.headers["Authorization"] = f"Bearer {admin_token}"
    return client


@pytest.fixture
def run_tables(pg_conn: psycopg.Connection[TupleRow]) -> Iterator[psycopg.Connection[TupleRow]]:
    """The test database with empty run tables."""
    clear_run_tables(pg_conn)
    yield pg_conn


@pytest.fixture
def seeded(run_tables: psycopg.Connection[TupleRow]) -> Seeded:
    """Ten finished runs of the full, incremental and webhook modes, two of them failed."""
    return seed_history(run_tables)


@pytest.fixture
def seeded_owners(seeded: Seeded, run_tables: psycopg.Connection[TupleRow]) -> Seeded:
    """:func:`seeded` plus projects and runs of more owners (``octo``, ``Ghost``, an acme+octo run)."""
    seeded.runs.extend(seed_owners(run_tables))
    return seeded
