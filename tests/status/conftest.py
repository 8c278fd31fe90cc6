"""Fixtures of the status tests: Airflow's real api-server app with the plugin, tokens, a real port.

The app is Airflow's own ``create_app("core")``: it loads the plugin from the plugins
folder (as the api-server does), mounts the status app under ``/github-sync`` and wires
Airflow's auth manager, so the tests exercise the real authentication path. The migrated
metadata database (``airflow_db``) is the shared fixture of ``tests/support/airflow.py``.
Nothing here may bypass the auth manager: clients authenticate as the api-server requires.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import uvicorn
from psycopg.rows import TupleRow

from tests.polling import wait_until
from tests.status.seed import Seeded, clear_run_tables, seed_history, seed_owners

# The class path only: importing the module would import Airflow before tests/conftest.py
# has set its environment.
DAG_SCOPED_AUTH_MANAGER = "tests.status.dag_scoped_auth_manager.DagScopedAuthManager"
SERVER_START_TIMEOUT_S = 30
SERVER_STOP_TIMEOUT_S = 10


@pytest.fixture(scope="session")
def airflow_app(airflow_db: None) -> Any:
    """Airflow's api-server app (core API, UI routes, plugins), built once.

    Its auth manager is :class:`~tests.status.dag_scoped_auth_manager.DagScopedAuthManager`
    (SimpleAuthManager that can deny the sync DAGs to named users), configured only while
    the app is built so other Airflow processes of the session keep the default.
    """
    from airflow.api_fastapi.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__AUTH_MANAGER", DAG_SCOPED_AUTH_MANAGER)
        return create_app("core")


def user_token(username: str, role: str) -> str:
    """A JWT of a SimpleAuthManager user, issued by the auth manager the app uses."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role))


@pytest.fixture(scope="session")
def admin_token(airflow_app: Any) -> str:
    """A JWT of the admin user, issued by the auth manager the app uses."""
    return user_token("admin", "ADMIN")


@pytest.fixture
def served_app(airflow_app: Any, status_env: str) -> Iterator[str]:
    """Airflow's app on a real port (uvicorn in a thread); yields its base URL."""
    config = uvicorn.Config(airflow_app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-status", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), timeout=SERVER_START_TIMEOUT_S,
               message="uvicorn did not start")  # fmt: skip
    assert server.started, "uvicorn stopped while starting"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SERVER_STOP_TIMEOUT_S)


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
