"""``make run``: the whole product on this machine in one command.

Applies the migrations, starts Airflow 3.3 (api-server, scheduler, dag-processor,
triggerer; LocalExecutor; metadata in PostgreSQL), creates the connections and the
``github_api`` pool, unpauses the DAGs and triggers a full sync, shows its progress,
prints a summary and where the UI is, and keeps everything running until Ctrl-C.

With ``GITHUB_TOKEN`` and ``GITHUB_OWNER`` set it syncs real GitHub; without them it
starts the built-in GitHub simulator, so a newcomer sees the whole pipeline with no
credentials.

A developer tool: it drives a local deployment (:mod:`github_sync.devtools.local_airflow`)
through Airflow's REST API like a user would, and must not call the sync or the DAGs'
task bodies itself. It talks to the user through ``logging``. It is one piece, a little
over 300 lines, because it is one command's script, read from :func:`main` down: its
helpers (PostgreSQL, the simulator, progress) serve nothing else.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import TupleRow

from github_sync.config import (
    DAG_IDS,
    DATABASE_CONN_ID,
    DEMO_OWNER,
    ENV_DATABASE_URL,
    ENV_GITHUB_OWNER,
    FULL_SYNC_DAG_ID,
    GITHUB_CONN_ID,
    ConfigError,
    Settings,
    connection_env,
    github_connection,
    postgres_connection,
)
from github_sync.devtools.local_airflow import (
    FINISHED_RUN_STATES,
    PROJECT_ROOT,
    REQUEST_TIMEOUT_S,
    LocalAirflow,
    free_port,
    start_local_airflow,
    wait_for,
)
from github_sync.store.import_log import ImportLogMetadata, metadata_sql
from github_sync.store.migrations import apply_migrations

log = logging.getLogger("github_sync.run")

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/github_sync"
METADATA_DATABASE = "github_sync_airflow"
DEMO_TOKEN = "ghp_local_demo_token"
DEMO_REPOSITORIES = 180
DEMO_LATENCY_MS = 20
PREFERRED_API_PORT = 8080
PROGRESS_INTERVAL_S = 3
SIMULATOR_START_ATTEMPTS = 60
SIMULATOR_START_INTERVAL_S = 0.5
POSTGRES_START_WAIT_S = 3
FIRST_RUN_WAIT_S = 20
# The import_logs row is written by the DAG-level callback, which the dag-processor runs a few
# seconds after the run's state is final: wait this long for it before summarising.
IMPORT_LOG_WAIT_S = 60
IMPORT_LOG_POLL_S = 0.5
RUN_POLL_INTERVAL_S = 2
DASHBOARD_TABLES = ("projects", "bugs", "pull_requests", "commits", "project_metrics", "import_logs")


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def ensure_postgres(url: str) -> None:
    """Make sure the server is up and the database exists; explain exactly what to do if not."""
    server_url = _with_database(url, "postgres")
    try:
        admin = psycopg.connect(server_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if shutil.which("pg_ctlcluster") and Path("/etc/postgresql").is_dir():
            version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
            log.info("PostgreSQL is not answering; starting the local cluster %s/main", version)
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False
            )
            time.sleep(POSTGRES_START_WAIT_S)
            try:
                admin = psycopg.connect(server_url, autocommit=True, connect_timeout=5)
            except psycopg.OperationalError:
                pass
            else:
                return ensure_postgres(url)
        host = urlsplit(url).hostname
        raise SystemExit(
            f"PostgreSQL is not reachable at {host}: {exc}\n"
            "Start a PostgreSQL server (e.g. `pg_ctlcluster 15 main start` or `docker compose up postgres`) "
            "or point GITHUB_SYNC_DATABASE_URL at one: postgresql://user:password@host:5432/github_sync"
        ) from None
    with admin:
        for database in (urlsplit(url).path.lstrip("/"), METADATA_DATABASE):
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if not exists:
                admin.execute(f'CREATE DATABASE "{database}"')
                log.info("Created database %s", database)
    return None


def start_simulator() -> tuple[subprocess.Popen[bytes], str]:
    """Start the GitHub simulator as its own process; return it and its URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("github-sim")),
            "--port", str(port), "--repos", str(DEMO_REPOSITORIES), "--seed", "1",
            "--owner", DEMO_OWNER, "--latency-ms", str(DEMO_LATENCY_MS),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    import requests

    for _ in range(SIMULATOR_START_ATTEMPTS):
        try:
            requests.get(f"{url}/rate_limit", timeout=1)
            return process, url
        except requests.RequestException:
            time.sleep(SIMULATOR_START_INTERVAL_S)
    process.kill()
    raise SystemExit("the GitHub simulator did not start")


def _progress(conn: psycopg.Connection[TupleRow], dag_id: str, run_id: str) -> tuple[int, int, list[str]]:
    row = conn.execute(
        "SELECT repositories_total FROM sync_runs WHERE dag_id = %s AND run_id = %s", (dag_id, run_id)
    ).fetchone()
    total = row[0] if row else 0
    done, running = 0, []
    for repository, state in conn.execute(
        "SELECT repository, state FROM sync_repository_runs WHERE dag_id = %s AND run_id = %s",
        (dag_id, run_id),
    ):
        if state == "running":
            running.append(repository)
        else:
            done += 1
    conn.commit()
    return done, total, running


def watch_run(airflow: LocalAirflow, conn: psycopg.Connection[TupleRow], dag_id: str, run_id: str) -> str:
    """Show progress (done/total, current repositories, ETA) until the run finishes; return its state."""
    session = airflow.api()
    started = time.monotonic()
    while True:
        state = airflow.run_state(dag_id, run_id, session)
        done, total, running = _progress(conn, dag_id, run_id)
        elapsed = time.monotonic() - started
        eta = f"{(total - done) * elapsed / done:.0f} s" if done and total else "?"
        current = ", ".join(running[:3]) + (" ..." if len(running) > 3 else "")
        log.info("%s: %d/%d repositories, %.0f s elapsed, ETA %s%s", state, done, total, elapsed, eta,
                 f" (syncing {current})" if current else "")  # fmt: skip
        if state in FINISHED_RUN_STATES:
            return state
        time.sleep(PROGRESS_INTERVAL_S)


def _count(conn: psycopg.Connection[TupleRow], table: str) -> int:
    # table is one of DASHBOARD_TABLES, never user input.
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _import_log_metadata(conn: psycopg.Connection[TupleRow], run_id: str) -> Any:
    """The run's stored ``import_logs.metadata`` (None while the callback has not written it)."""
    row = conn.execute(
        f"SELECT metadata FROM import_logs WHERE {metadata_sql('run_id')} = %s", (run_id,)
    ).fetchone()
    # Do not hold a transaction open across the polls (autocommit is off).
    conn.rollback()
    return row[0] if row else None


def summarize(conn: psycopg.Connection[TupleRow], run_id: str) -> dict[str, Any]:
    """The row counts of the dashboard tables and the run's request counters, for the log."""
    try:
        stored = wait_for(
            lambda: _import_log_metadata(conn, run_id),
            timeout=IMPORT_LOG_WAIT_S,
            interval=IMPORT_LOG_POLL_S,
            what=f"no import_logs row for {run_id}",
        )
    except TimeoutError as exc:
        log.warning("%s: request counters unknown", exc)
        stored = None
    metadata = ImportLogMetadata.from_stored(stored)
    counts = {table: _count(conn, table) for table in DASHBOARD_TABLES}
    return {
        "rows": counts,
        "requests": metadata.requests,
        "budget_spent": metadata.budget_spent,
        "not_modified": metadata.not_modified,
        "duration_s": metadata.duration_s,
    }


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    database_url = settings.database_url or DEFAULT_DATABASE_URL
    ensure_postgres(database_url)
    with psycopg.connect(database_url) as conn:
        apply_migrations(conn)

    simulator = None
    if settings.github_token and settings.github_owners:
        api_url, token = settings.github_api_url, settings.github_token
        owners = list(settings.github_owners)
        log.info("Syncing %s from %s", ", ".join(owners), api_url)
    else:
        simulator, api_url = start_simulator()
        token, owners = DEMO_TOKEN, [DEMO_OWNER]
        log.info("No GITHUB_TOKEN/GITHUB_OWNER: syncing the built-in GitHub simulator (%s, %d repositories)",
                 api_url, DEMO_REPOSITORIES)  # fmt: skip
    extra_env = {
        ENV_GITHUB_OWNER: ",".join(owners),
        ENV_DATABASE_URL: database_url,
        **connection_env(
            {
                GITHUB_CONN_ID: github_connection(api_url, token),
                DATABASE_CONN_ID: postgres_connection(database_url),
            }
        ),
    }
    metadata_url = _with_database(database_url, METADATA_DATABASE).replace(
        "postgresql://", "postgresql+psycopg2://", 1
    )
    port = PREFERRED_API_PORT if _port_free(PREFERRED_API_PORT) else free_port()
    log.info("Starting Airflow 3.3 (api-server on port %d, scheduler, dag-processor, triggerer) ...", port)
    airflow = start_local_airflow(
        home=PROJECT_ROOT / ".airflow", metadata_url=metadata_url, extra_env=extra_env, api_port=port
    )
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        airflow.wait_for_dags(DAG_IDS)
        run_id = first_full_sync(airflow, owners)
        with psycopg.connect(database_url) as conn:
            state = watch_run(airflow, conn, FULL_SYNC_DAG_ID, run_id)
            summary = summarize(conn, run_id)
        log.info("Full sync %s: %s", state, json.dumps(summary, indent=2, default=str))
        session = airflow.api()
        for dag_id in DAG_IDS:
            session.patch(
                f"{airflow.api_url}/api/v2/dags/{dag_id}",
                json={"is_paused": False},
                timeout=REQUEST_TIMEOUT_S,
            )
        log.info("All DAGs unpaused: incremental sync hourly, full sync weekly, webhooks on delivery")
        log.info("Airflow UI:        %s  (user admin, password %s)", airflow.api_url, airflow.admin_password)
        log.info(
            "Sync dashboard:    %s/plugin/github-sync (in the Airflow UI), %s/github-sync/",
            airflow.api_url,
            airflow.api_url,
        )
        log.info("Logs and state:    %s", airflow.home)
        log.info("Everything keeps running; press Ctrl-C to stop.")
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        log.info("Stopping Airflow%s ...", " and the simulator" if simulator else "")
        airflow.stop()
        if simulator is not None:
            os.killpg(simulator.pid, signal.SIGTERM)
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def first_full_sync(airflow: LocalAirflow, owners: list[str], wait_s: float = FIRST_RUN_WAIT_S) -> str:
    """Unpause github_full_sync and return the run to watch.

    Unpausing a scheduled DAG makes the scheduler create its latest scheduled run at once
    (and only one runs at a time), so that run is the first full sync; a manual run is
    triggered only when none appears.
    """
    session = airflow.api()
    # A metadata database kept from an earlier `make run` may have the others unpaused.
    for dag_id in DAG_IDS:
        session.patch(
            f"{airflow.api_url}/api/v2/dags/{dag_id}", json={"is_paused": True}, timeout=REQUEST_TIMEOUT_S
        )
    base = f"{airflow.api_url}/api/v2/dags/{FULL_SYNC_DAG_ID}"
    session.patch(base, json={"is_paused": False}, timeout=REQUEST_TIMEOUT_S).raise_for_status()
    latest_run: dict[str, str | int] = {"order_by": "-run_after", "limit": 1}
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        runs = session.get(f"{base}/dagRuns", params=latest_run, timeout=REQUEST_TIMEOUT_S).json()
        if runs.get("dag_runs"):
            run_id = str(runs["dag_runs"][0]["dag_run_id"])
            log.info("Watching %s run %s", FULL_SYNC_DAG_ID, run_id)
            return run_id
        time.sleep(RUN_POLL_INTERVAL_S)
    run_id = airflow.trigger(FULL_SYNC_DAG_ID, {"owners": owners})
    log.info("Triggered %s run %s", FULL_SYNC_DAG_ID, run_id)
    return run_id


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
