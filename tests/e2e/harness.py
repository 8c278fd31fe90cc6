"""Building blocks of the end-to-end tests: real processes, throwaway databases, the REST client.

Every process is started in its own process group (``start_new_session``) and stopped by
its process-group id, never by name: ``pkill -f airflow`` would also match the PostgreSQL
backends serving the Airflow metadata database. Every wait goes through
``tests.polling.wait_until`` (the one polling helper); nothing here sleeps to let time pass.
The harness must not start Airflow itself (``github_sync.devtools.local_airflow`` does, with
the same commands as ``make run`` and the compose services) nor talk to Airflow other than
through its official REST client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg.rows import TupleRow

from github_sync.devtools.local_airflow import LocalAirflow, free_port
from tests.conftest import PG_SERVER_DSN
from tests.polling import wait_until

log = logging.getLogger(__name__)

BIN = Path(sys.executable).parent
SIM_OWNER = "acme"
WEBHOOK_SECRET = "e2e-webhook-secret-0123456789"
# The relay's /stats needs its admin token (GITHUB_SYNC_RELAY_ADMIN_TOKEN).
RELAY_ADMIN_TOKEN = "e2e-relay-admin-token-0001"
RELAY_ADMIN_HEADERS = {"Authorization": f"Bearer {RELAY_ADMIN_TOKEN}"}
SIM_TOKEN = "ghp_e2e_shared_token_0123456789"
# Tasks retry in seconds rather than Airflow's 30 s, so a transient error does not stall a scenario.
HOOK_EXTRA = {"retry_max_attempts": 3, "retry_backoff_initial_s": 0.2, "retry_backoff_max_s": 1.0}
POLL_S = 0.5
HTTP_POLL_S = 0.2  # a starting service answers within a second or two
HTTP_ATTEMPT_TIMEOUT_S = 2
FINAL_RUN_STATES = ("success", "failed")


def server_host() -> str:
    """``host:port`` of the test PostgreSQL server."""
    return PG_SERVER_DSN.split("@", 1)[1].rsplit("/", 1)[0]


def database_url(name: str) -> str:
    """A libpq URL of database ``name`` on the test server."""
    return PG_SERVER_DSN.rsplit("/", 1)[0] + f"/{name}"


@contextlib.contextmanager
def temporary_database(prefix: str, *, migrate: bool = False) -> Iterator[str]:
    """A fresh database (dropped afterwards, even on failure); yields its libpq URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_SERVER_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    try:
        if migrate:
            from github_sync.store.migrations import apply_migrations

            with psycopg.connect(url, autocommit=True) as conn:
                apply_migrations(conn)
        yield url
    finally:
        with psycopg.connect(PG_SERVER_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def metadata_url(url: str) -> str:
    """The SQLAlchemy URL Airflow wants for a libpq URL."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


@dataclass
class Service:
    """One long-running process of the test (simulator, relay, Celery worker...)."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                list(self.argv),
                env=dict(self.env),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.info("Started %s (pid %d, log %s)", self.name, self.process.pid, self.log_path)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the process group, SIGKILL it if it does not leave in time."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        # Children that outlived their leader (e.g. a Celery pool process) go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def wait_http(self, url: str, timeout: float = 60) -> None:
        """Wait until ``url`` answers (any status); fail at once if the process dies meanwhile."""

        def answers() -> bool:
            if not self.alive():
                pytest.fail(f"{self.name} exited; see {self.log_path}:\n{self.tail()}")
            try:
                requests.get(url, timeout=HTTP_ATTEMPT_TIMEOUT_S)
            except requests.RequestException:
                return False
            return True

        wait_until(answers, timeout=timeout, interval=HTTP_POLL_S, message=f"{self.name} answering at {url}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def simulator_service(
    home: Path, *, repos: int, seed: int, reset_interval_s: int = 3600, latency_ms: int = 0
) -> tuple[Service, str]:
    """The ``github-sim`` console script as a process; returns it and its URL (once it answers)."""
    port = free_port()
    argv = [
        str(BIN / "github-sim"), "--port", str(port), "--repos", str(repos), "--seed", str(seed),
        "--owner", SIM_OWNER, "--latency-ms", str(latency_ms), "--reset-interval-s", str(reset_interval_s),
        "--log-level", "WARNING",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    service = Service(f"github-sim:{port}", argv, os.environ, home / f"github-sim-{port}.log").start()
    try:
        service.wait_http(f"{url}/_sim/info")
    except BaseException:
        service.stop()
        raise
    return service, url


def sim_control(sim_url: str, route: str, body: Mapping[str, Any] | None = None) -> Any:
    """Call the simulator's ``/_sim/`` control API (POST with a body, GET without)."""
    url = f"{sim_url}/_sim/{route}"
    response = (
        requests.post(url, json=dict(body), timeout=10) if body is not None else requests.get(url, timeout=10)
    )
    response.raise_for_status()
    return response.json()


def organisation(sim_url: str, token: str = "ghp_e2e_reader") -> list[dict[str, Any]]:
    """The simulator's repositories as GitHub lists them (read with a token of its own)."""
    response = requests.get(
        f"{sim_url}/orgs/{SIM_OWNER}/repos",
        params={"per_page": 100},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json())


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: with few samples it is an observed value)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latency_summary(latencies: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(latencies),
        "median_s": round(statistics.median(latencies), 3),
        "p95_s": round(percentile(latencies, 0.95), 3),
        "max_s": round(max(latencies), 3),
    }


@dataclass
class Deployment:
    """The shared deployment of the scenarios: Airflow, the simulator, the relay, the target DB."""

    airflow: LocalAirflow
    sim_url: str
    database_url: str
    relay_url: str
    home: Path
    services: dict[str, Service] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    # -- the official REST client ----------------------------------------------------------------
    def client(self) -> Any:
        """An ``airflow_client.client.ApiClient`` with a fresh admin token."""
        import airflow_client.client as airflow_client

        configuration = airflow_client.Configuration(host=self.airflow.api_url)
        configuration.access_token = self.airflow.token()
        return airflow_client.ApiClient(configuration)

    def set_connection(self, conn_id: str, conn: Mapping[str, Any]) -> None:
        """Create or replace an Airflow connection through the REST API."""
        from airflow_client.client.api.connection_api import ConnectionApi
        from airflow_client.client.exceptions import NotFoundException
        from airflow_client.client.models import ConnectionBody

        extra = conn.get("extra")
        # By the API's field names ("schema", which the model calls var_schema), as the client parses them.
        body = ConnectionBody.model_validate(
            {
                "connection_id": conn_id,
                "conn_type": str(conn["conn_type"]),
                "host": conn.get("host"),
                "port": conn.get("port"),
                "login": conn.get("login"),
                "password": conn.get("password"),
                "schema": conn.get("schema"),
                "extra": json.dumps(extra) if extra is not None else None,
            }
        )
        with self.client() as api_client:
            api = ConnectionApi(api_client)
            try:
                api.get_connection(conn_id)
            except NotFoundException:
                api.post_connection(body)
            else:
                api.patch_connection(conn_id, body)

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Unpause ``dag_id`` and trigger a run through the official client; returns the run id."""
        from airflow_client.client.api.dag_api import DAGApi
        from airflow_client.client.api.dag_run_api import DagRunApi
        from airflow_client.client.models import DAGPatchBody, TriggerDAGRunPostBody

        run_id = f"e2e__{dag_id}__{uuid.uuid4().hex[:8]}"
        with self.client() as api_client:
            DAGApi(api_client).patch_dag(dag_id, DAGPatchBody(is_paused=False))
            body = TriggerDAGRunPostBody(dag_run_id=run_id, logical_date=None, conf=dict(conf or {}))
            return str(DagRunApi(api_client).trigger_dag_run(dag_id, body).dag_run_id)

    def run_state(self, dag_id: str, run_id: str) -> str:
        from airflow_client.client.api.dag_run_api import DagRunApi

        with self.client() as api_client:
            return str(DagRunApi(api_client).get_dag_run(dag_id, run_id).state.value)

    def task_instances(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[Any]:
        """The run's task instances (mapped ones included) through the official client."""
        from airflow_client.client.api.task_instance_api import TaskInstanceApi

        with self.client() as api_client:
            return list(
                TaskInstanceApi(api_client)
                .get_task_instances(dag_id, run_id, task_id=task_id, limit=1000)
                .task_instances
            )

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        timeout: float,
        on_poll: Callable[[], None] | None = None,
    ) -> tuple[str, float]:
        """Poll until the run finishes; returns its state and how long the wait took.

        ``on_poll`` runs before every poll (a scenario watches task states with it).
        """
        started = time.monotonic()

        def final_state() -> str | None:
            if on_poll is not None:
                on_poll()
            state = self.run_state(dag_id, run_id)
            return state if state in FINAL_RUN_STATES else None

        state = wait_until(
            final_state,
            timeout=timeout,
            interval=POLL_S,
            message=f"{dag_id}/{run_id} finishing (logs in {self.home})",
        )
        return state, time.monotonic() - started

    # -- target database ------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | None = None, url: str | None = None) -> list[TupleRow]:
        """Rows of ``sql`` in the target database (or the database at ``url``)."""
        with psycopg.connect(url or self.database_url, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())

    def report(self, key: str, value: Any) -> None:
        """Keep a measured figure; printed (with -s) and written to test-artifacts/e2e-figures.json."""
        self.figures[key] = value
        print(f"[e2e] {key}: {json.dumps(value, default=str)}")
