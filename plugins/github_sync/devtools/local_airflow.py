"""Start a real local Airflow 3 (api-server, scheduler, dag-processor, triggerer) for this project.

Used by ``make run`` (:mod:`github_sync.devtools.local_run`) and by the end-to-end tests: the same
environment, the same commands as the docker-compose services, LocalExecutor, metadata in
PostgreSQL. Every process is started in its own process group and stopped on exit.

It owns the local deployment's environment, its processes and the few REST calls callers
wait on; it must not know what the DAGs do (that is the callers' business) and is never
imported by the product itself.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

from github_sync.config import DEFAULT_POOL_SLOTS, ENV_POOL_SLOTS, GITHUB_POOL, GITHUB_POOL_DESCRIPTION

log = logging.getLogger(__name__)

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parents[3]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
ADMIN_USER = "admin"
STARTUP_TIMEOUT_S = 180
RUN_TIMEOUT_S = 1800
API_POLL_INTERVAL_S = 1
STATE_POLL_INTERVAL_S = 2
REQUEST_TIMEOUT_S = 10
FINISHED_RUN_STATES = ("success", "failed")
# [scheduler] scheduler_idle_sleep_time (seconds, a string for the environment): a fifth of the
# default 1 s; a webhook run waits at most this for the scheduler to notice it.
SCHEDULER_IDLE_SLEEP_SECONDS = "0.2"


def wait_for(check: Callable[[], T | None], *, timeout: float, interval: float, what: str) -> T:
    """Call ``check`` until it returns something other than None, and return that.

    Raises:
        TimeoutError: ``timeout`` seconds passed; the message says what did not happen.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def airflow_environment(
    *,
    home: Path,
    metadata_url: str,
    api_port: int,
    admin_password: str,
    extra: Mapping[str, str] | None = None,
    executor: str = "LocalExecutor",
) -> dict[str, str]:
    """The environment every Airflow component of a local deployment shares."""
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({ADMIN_USER: admin_password}))
    passwords.chmod(0o600)
    jwt_secret_file = home / "jwt_secret"
    if not jwt_secret_file.exists():
        jwt_secret_file.write_text(secrets.token_urlsafe(32))
        jwt_secret_file.chmod(0o600)
    api_url = f"http://127.0.0.1:{api_port}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret_file.read_text(),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        # Delivery -> row latency (README, "Webhook latency"): a run the relay triggers waits
        # for the scheduler's next loop, and an idle scheduler sleeps this long between loops
        # (default 1 s, i.e. 0.5 s on average added to every webhook). A busy scheduler does
        # not sleep, so this costs only idle loops (a few small metadata queries each).
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": SCHEDULER_IDLE_SLEEP_SECONDS,
        # Paused: unpausing a scheduled DAG creates its latest run at once, which callers
        # (make run, the end-to-end tests) want to control.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    env.update(extra or {})
    return env


@dataclass
class LocalAirflow:
    """A running local Airflow deployment."""

    home: Path
    env: dict[str, str]
    api_port: int
    admin_password: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def airflow(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command in this deployment's environment."""
        return subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env=self.env,
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_component(self, name: str, *args: str) -> None:
        """Start one long-running component (``api-server``, ``scheduler``...), logging to AIRFLOW_HOME."""
        log_path = self.home / f"{name}.log"
        # The child keeps its own copy of the descriptor: close ours, or every start leaks one.
        with log_path.open("ab") as log_file:
            self.processes[name] = subprocess.Popen(
                [str(Path(sys.executable).with_name("airflow")), name.split(":")[0], *args],
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.info("Started airflow %s (pid %d, log %s)", name, self.processes[name].pid, log_path)

    def stop_component(self, name: str, timeout: float = 30) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def stop(self) -> None:
        for name in list(self.processes):
            self.stop_component(name)

    def wait_for_api(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        def healthy() -> bool | None:
            process = self.processes.get("api-server")
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"airflow api-server exited with {process.returncode}; see {self.home}/api-server.log"
                )
            try:
                response = requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=2)
            except requests.RequestException:
                return None
            return True if response.status_code == 200 else None

        wait_for(
            healthy, timeout=timeout, interval=API_POLL_INTERVAL_S, what="airflow api-server did not answer"
        )

    def token(self) -> str:
        response = requests.post(
            f"{self.api_url}/auth/token",
            json={"username": ADMIN_USER, "password": self.admin_password},
            timeout=REQUEST_TIMEOUT_S,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def api(self) -> requests.Session:
        """A requests session authenticated against this deployment's REST API."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token()}"
        return session

    def wait_for_dags(self, dag_ids: Sequence[str], timeout: float = STARTUP_TIMEOUT_S) -> None:
        session = self.api()
        missing: set[str] = set(dag_ids)

        def parsed() -> bool | None:
            api = f"{self.api_url}/api/v2/dags"
            missing.clear()
            missing.update(
                d for d in dag_ids if session.get(f"{api}/{d}", timeout=REQUEST_TIMEOUT_S).status_code != 200
            )
            return True if not missing else None

        try:
            wait_for(parsed, timeout=timeout, interval=STATE_POLL_INTERVAL_S, what="DAGs not parsed")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}: {sorted(missing)}") from None

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None, run_id: str | None = None) -> str:
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf or {})}
        if run_id:
            body["dag_run_id"] = run_id
        session = self.api()
        session.patch(
            f"{self.api_url}/api/v2/dags/{dag_id}", json={"is_paused": False}, timeout=REQUEST_TIMEOUT_S
        ).raise_for_status()
        response = session.post(f"{self.api_url}/api/v2/dags/{dag_id}/dagRuns", json=body, timeout=30)
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str, session: requests.Session | None = None) -> str:
        """The state of a DAG run (``queued``, ``running``, ``success``, ``failed``...)."""
        response = (session or self.api()).get(
            f"{self.api_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}", timeout=REQUEST_TIMEOUT_S
        )
        return str(response.json()["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT_S) -> str:
        session = self.api()

        def finished() -> str | None:
            state = self.run_state(dag_id, run_id, session)
            return state if state in FINISHED_RUN_STATES else None

        return wait_for(
            finished,
            timeout=timeout,
            interval=STATE_POLL_INTERVAL_S,
            what=f"{dag_id}/{run_id} did not finish",
        )


def start_local_airflow(
    *,
    home: Path,
    metadata_url: str,
    extra_env: Mapping[str, str] | None = None,
    components: Sequence[str] = COMPONENTS,
    api_port: int | None = None,
    pool_slots: int = DEFAULT_POOL_SLOTS,
) -> LocalAirflow:
    """Migrate the metadata database, create the pool and start the components."""
    port = api_port or free_port()
    password = secrets.token_urlsafe(12)
    env = airflow_environment(
        home=home,
        metadata_url=metadata_url,
        api_port=port,
        admin_password=password,
        # The tasks plan shards from the pool's size (they may not read the metadata DB for it).
        extra={ENV_POOL_SLOTS: str(pool_slots), **(extra_env or {})},
    )
    airflow = LocalAirflow(home=home, env=env, api_port=port, admin_password=password)
    airflow.airflow("db", "migrate", timeout=600)
    airflow.airflow("pools", "set", GITHUB_POOL, str(pool_slots), GITHUB_POOL_DESCRIPTION)
    try:
        for name in components:
            airflow.start_component(name)
        airflow.wait_for_api()
    except BaseException:
        airflow.stop()
        raise
    return airflow
