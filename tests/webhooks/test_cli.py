"""The real ``github-sync-relay`` console script: startup checks, real HTTP, restart with pending work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.polling import wait_until
from tests.webhooks.airflow_stub import PASSWORD, USERNAME, AirflowStub, free_port
from tests.webhooks.helpers import ADMIN, ADMIN_TOKEN, SECRET, headers

RELAY_BIN = str(Path(sys.executable).with_name("github-sync-relay"))
STARTUP_TIMEOUT = 30.0


def relay_env(database_url: str, airflow_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "GITHUB_"))}
    env.update(
        {
            "GITHUB_WEBHOOK_SECRET": SECRET,
            "GITHUB_SYNC_DATABASE_URL": database_url,
            "AIRFLOW_API_URL": airflow_url,
            "AIRFLOW_API_USERNAME": USERNAME,
            "AIRFLOW_API_PASSWORD": PASSWORD,
            "GITHUB_SYNC_RELAY_HOST": "127.0.0.1",
            "GITHUB_SYNC_RELAY_PORT": str(port),
            "GITHUB_SYNC_RELAY_COALESCE_SECONDS": "0.2",
            "GITHUB_SYNC_RELAY_ADMIN_TOKEN": ADMIN_TOKEN,
        }
    )
    return env


def start_relay(env: dict[str, str], log_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    """Start the relay (added to ``processes``, which the fixture kills) and wait until it accepts deliveries."""
    log = log_path.open("ab")
    process = subprocess.Popen([RELAY_BIN], env=env, stdout=log, stderr=subprocess.STDOUT)
    processes.append(process)
    url = f"http://127.0.0.1:{env['GITHUB_SYNC_RELAY_PORT']}/readyz"

    def healthy() -> bool:
        if process.poll() is not None:
            pytest.fail(f"relay exited with {process.returncode}: {log_path.read_text()}")
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout=STARTUP_TIMEOUT, interval=0.1, message="relay ready")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def test_refuses_to_start_without_a_secret(pg_database: str) -> None:
    env = relay_env(pg_database, "http://127.0.0.1:9", free_port())
    del env["GITHUB_WEBHOOK_SECRET"]
    result = subprocess.run([RELAY_BIN], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "GITHUB_WEBHOOK_SECRET is not set" in result.stderr


def test_config_errors_do_not_leak_the_secret(pg_database: str) -> None:
    env = relay_env(pg_database, "not a url", free_port())
    result = subprocess.run([RELAY_BIN], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "AIRFLOW_API_URL" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_restart_with_pending_deliveries_forwards_them(
    pg_database: str,
    pg_conn: psycopg.Connection,
    airflow_stub: AirflowStub,
    github_samples: Path,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    port = free_port()
    env = relay_env(pg_database, airflow_stub.url, port)  # Airflow is down: the stub is not listening
    webhook = f"http://127.0.0.1:{port}/webhooks/github"
    log_path = tmp_path / "relay.log"
    start_relay(env, log_path, processes)

    body = (github_samples / "webhooks/push/with-new-branch.payload.json").read_bytes()
    bad = httpx.post(webhook, content=body, headers=headers(body, "push", secret="wrong secret"))
    assert bad.status_code == 401
    ids = []
    for _ in range(10):
        ids.append(str(uuid.uuid4()))
        assert httpx.post(webhook, content=body, headers=headers(body, "push", ids[-1])).status_code == 202

    def assigned() -> set[str]:
        pg_conn.commit()
        return {r[0] for r in pg_conn.execute("SELECT DISTINCT dag_run_id FROM webhook_deliveries") if r[0]}

    first_runs = wait_until(
        assigned, timeout=10, message="the forwarder assigns a run id even while Airflow is down"
    )
    for _ in range(5):  # arrive while the first batch is being retried: stay unassigned
        ids.append(str(uuid.uuid4()))
        assert httpx.post(webhook, content=body, headers=headers(body, "push", ids[-1])).status_code == 202
    processes[0].send_signal(signal.SIGKILL)  # a crash, not a clean shutdown
    processes[0].wait(10)
    pg_conn.commit()
    assert (
        pg_conn.execute("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'").fetchone()[0]
        == 15
    )
    assert airflow_stub.runs == {}

    airflow_stub.start()
    start_relay(env, log_path, processes)

    def forwarded() -> int:
        pg_conn.commit()
        return pg_conn.execute(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'forwarded'"
        ).fetchone()[0]

    wait_until(lambda: forwarded() == 15, timeout=20, interval=0.1, message="all forwarded after restart")
    per_id = Counter(i for run_ids in airflow_stub.runs.values() for i in run_ids)
    assert set(per_id) == set(ids) and set(per_id.values()) == {1}
    assert first_runs <= set(airflow_stub.runs), "the batch assigned before the crash kept its run id"
    stats = httpx.get(f"http://127.0.0.1:{port}/stats", headers=ADMIN).json()
    assert stats["deliveries"]["by_status"] == {"forwarded": 15}
    processes[1].send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal (exit status -15).
    assert processes[1].wait(15) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log_path.read_text()
    assert SECRET not in log_path.read_text()
