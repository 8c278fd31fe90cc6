"""A run that could not do its job is red, with its cause in import_logs (dag.test(), real HTTP, real PostgreSQL).

Every case here is one a new user hits first: GitHub unreachable, a bad token, an unknown
owner, a database nobody migrated, every
repository failing. None of them may end green.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from github_sim import Simulator, SimulatorConfig
from github_sync.config import (
    DATABASE_CONN_ID,
    GITHUB_CONN_ID,
    connection_env,
    github_connection,
    postgres_connection,
)
from github_sync.store.migrations import MIGRATIONS_DIR, apply_migrations
from tests.dags.conftest import FAST_RETRIES, TEST_TOKEN, connect_airflow_to


@pytest.fixture
def small_sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(owner="acme", repos=6, seed=5, big_repos=0)) as sim:
        yield sim


def import_log(database_url: str) -> tuple[list[str], dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT errors, metadata FROM import_logs ORDER BY id").fetchall()
    assert len(rows) == 1, rows
    return rows[0]


def task_tries(run: Any, task_id: str) -> tuple[str, int]:
    """The (state, try_number) of a task of a finished dag.test() run, from Airflow's metadata DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = (
            session.query(TaskInstance)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, map_index=-1)
            .one()
        )
        return str(ti.state), int(ti.try_number)


def without_retry_delay(dag: Any, task_id: str) -> None:
    # Retries stay on (the behaviour under test is that permanent errors skip them), but
    # without the production delay, so a broken fail-fast shows up as extra tries, not minutes.
    dag.task_dict[task_id].retry_delay = timedelta(0)
    dag.task_dict[task_id].retry_exponential_backoff = 0


def full_sync_failing_at_once(dagbag: Any, conf: dict[str, Any]) -> Any:
    """Run github_full_sync; assert it failed with its listing tried once (retries configured)."""
    dag = dagbag.get_dag("github_full_sync")
    without_retry_delay(dag, "list_repositories")
    run = dag.test(run_conf=conf)
    assert run.state == "failed"
    assert task_tries(run, "list_repositories") == ("failed", 1)
    return run


def wire(monkeypatch: pytest.MonkeyPatch, api_url: str, database_url: str, token: str = TEST_TOKEN) -> None:
    connections = {
        GITHUB_CONN_ID: github_connection(api_url, token, FAST_RETRIES),
        DATABASE_CONN_ID: postgres_connection(database_url),
    }
    for name, value in connection_env(connections).items():
        monkeypatch.setenv(name, value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("dag_id", ["github_full_sync", "github_incremental_sync"])
def test_github_unreachable_fails_the_run_with_the_cause_in_import_logs(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, pg_conn: psycopg.Connection, pg_database: str, dag_id: str
) -> None:
    wire(monkeypatch, f"http://127.0.0.1:{free_port()}", pg_database)  # nothing listens there
    dag = dagbag.get_dag(dag_id)
    first = "list_repositories" if dag_id == "github_full_sync" else "detect_changes"
    dag.task_dict[first].retries = 0  # transient: it keeps its retries in production; not needed here

    run = dag.test(run_conf={"owner": "acme"})

    assert run.state == "failed"
    errors, metadata = import_log(pg_database)
    assert metadata["state"] == "failed"
    assert any(e.startswith("targets | GitHubTransportError") and "/users/acme" in e for e in errors), errors
    assert metadata["repositories"]["ok"] == 0
    assert pg_conn.execute("SELECT state FROM sync_runs WHERE run_id = %s", (run.run_id,)).fetchall() == [
        ("failed",)
    ]


def test_bad_credentials_fail_at_once_without_retries_and_say_what_to_fix(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    with Simulator(SimulatorConfig(owner="acme", repos=3, tokens={"the-right-token"})) as sim:
        wire(monkeypatch, sim.url, pg_database, token=TEST_TOKEN)
        dag = dagbag.get_dag("github_full_sync")
        without_retry_delay(dag, "list_repositories")
        run = dag.test(run_conf={"owner": "acme"})
        requests_answered = sim.stats()["requests_total"]

    assert run.state == "failed"
    assert task_tries(run, "list_repositories") == ("failed", 1)
    assert requests_answered == 1  # one try of one request, not three
    errors, metadata = import_log(pg_database)
    assert metadata["state"] == "failed"
    (error,) = [e for e in errors if e.startswith("targets |")]
    assert "401" in error and "connection 'github_default'" in error and "valid token" in error
    assert TEST_TOKEN not in repr(errors) + repr(metadata)


def test_an_unknown_owner_fails_at_once_naming_the_param(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, small_sim: Simulator, pg_conn: psycopg.Connection,
    pg_database: str,
) -> None:  # fmt: skip
    connect_airflow_to(monkeypatch, small_sim, pg_database)
    full_sync_failing_at_once(dagbag, {"owner": "no-such-owner"})
    errors, _ = import_log(pg_database)
    assert any("no user or organisation 'no-such-owner'" in e and "Param 'owners'" in e for e in errors), (
        errors
    )


def test_a_missing_schema_with_automatic_migration_off_fails_at_once_naming_the_command(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, small_sim: Simulator, empty_database: str
) -> None:
    connect_airflow_to(monkeypatch, small_sim, empty_database)
    monkeypatch.setenv("GITHUB_SYNC_AUTO_MIGRATE", "false")
    full_sync_failing_at_once(dagbag, {"owner": "acme"})
    with psycopg.connect(empty_database) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    assert tables == 0  # automatic migration off means the run never writes the schema


def test_an_outdated_schema_with_automatic_migration_off_fails_with_the_command_in_import_logs(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, small_sim: Simulator, empty_database: str, tmp_path: Path
) -> None:
    only_first = tmp_path / "migrations"
    only_first.mkdir()
    shutil.copy(MIGRATIONS_DIR / "0001_initial.sql", only_first)
    with psycopg.connect(empty_database) as conn:
        apply_migrations(conn, only_first)
    connect_airflow_to(monkeypatch, small_sim, empty_database)
    monkeypatch.setenv("GITHUB_SYNC_AUTO_MIGRATE", "false")
    full_sync_failing_at_once(dagbag, {"owner": "acme"})
    errors, metadata = import_log(empty_database)
    assert metadata["state"] == "failed"
    assert any("is behind" in e and "0002_webhooks" in e and "`github-sync migrate`" in e for e in errors), (
        errors
    )


def test_invalid_params_fail_at_once_naming_the_param(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, small_sim: Simulator, pg_conn: psycopg.Connection,
    pg_database: str,
) -> None:  # fmt: skip
    connect_airflow_to(monkeypatch, small_sim, pg_database)
    full_sync_failing_at_once(dagbag, {"owner": None, "owners": ["acme", "other"], "repos": ["bare-name"]})
    errors, _ = import_log(pg_database)
    assert any("'bare-name' is ambiguous" in e and "owner/name" in e for e in errors), errors
    assert pg_conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 0  # nothing written


def test_a_run_in_which_no_repository_could_be_synced_fails_whatever_the_tolerance(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, small_sim: Simulator, pg_conn: psycopg.Connection,
    pg_database: str,
) -> None:  # fmt: skip
    connect_airflow_to(monkeypatch, small_sim, pg_database)
    small_sim.faults.fail_paths = {r"^/repos/acme/[^/]+/issues": 502}
    dag = dagbag.get_dag("github_full_sync")
    dag.task_dict["sync_repository"].retries = 0

    run = dag.test(run_conf={"owner": "acme", "failure_tolerance": 100})

    assert run.state == "failed"
    errors, metadata = import_log(pg_database)
    assert metadata["state"] == "failed" and metadata["repositories"]["ok"] == 0
    assert metadata["repositories"]["failed"] > 0
    assert any("502" in e for e in errors)


@pytest.mark.parametrize(
    ("dag_id", "first_task", "conf"),
    [
        ("github_full_sync", "list_repositories", {"owner": "acme", "repos": ["api", "acme/.."]}),
        ("github_full_sync", "list_repositories", {"owner": "acme\n"}),
        ("github_repo_sync", "resolve_repository", {"repository": "acme/.."}),
    ],
)
def test_a_path_changing_or_newline_param_is_refused_at_trigger_before_any_request(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, pg_database: str, dag_id: str, first_task: str,
    conf: dict[str, Any],
) -> None:  # fmt: skip
    # The Param schema refuses these when the run is created (and Airflow checks the Params again
    # when each task starts; the task's own check, github_sync.github.owners, is the last line).
    # Before, "acme\n" and "acme/.." passed the schema, and ["acme/.."] listed the owner's repositories.
    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag.get_dag(dag_id)
    (param,) = conf.keys() - {"owner"} or {"owner"}
    with socket.socket() as github:
        # GitHub is a socket that never answers: the kernel queues any connection, so a
        # non-blocking accept afterwards tells whether the run sent anything.
        github.bind(("127.0.0.1", 0))
        github.listen()
        github.setblocking(False)
        wire(monkeypatch, f"http://127.0.0.1:{github.getsockname()[1]}", pg_database)
        without_retry_delay(dag, first_task)
        with pytest.raises(ParamValidationError, match=f"Invalid input for param {param}:"):
            dag.test(run_conf=conf)
        with pytest.raises(BlockingIOError):
            github.accept()
