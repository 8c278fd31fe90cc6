"""The compose file's commands, natively: a full sync on the CeleryExecutor with two workers.

api-server, scheduler, dag-processor and triggerer as in the LocalExecutor deployment, plus
two ``airflow celery worker`` processes (distinct Celery hostnames and log-server ports,
as two containers would have), the machine's Redis as broker (a database number of its
own, flushed before and after) and a ``db+postgresql://`` result backend in the metadata
database. A small simulator organisation is synced to success through them.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from github_sync.config import postgres_connection
from github_sync.devtools.local_airflow import LocalAirflow, free_port, start_local_airflow
from tests.e2e.harness import POLL_S, Deployment, metadata_url, simulator_service, temporary_database
from tests.polling import wait_until

pytestmark = pytest.mark.e2e

REDIS_HOST = os.environ.get("GITHUB_SYNC_TEST_REDIS_HOST", "127.0.0.1")
# Dedicated to this test (flushed before and after); other users of the machine's Redis keep theirs.
REDIS_DB = int(os.environ.get("GITHUB_SYNC_TEST_REDIS_DB", "14"))
WORKERS = ("worker1", "worker2")
WORKER_CONCURRENCY = 2
POOL_SLOTS = 4
REPOS = 12
TOKEN = "ghp_e2e_celery_0123456789"
WORKER_POLL_S = 1  # a worker's log is read whole: once a second is plenty
READY = re.compile(r"\S+@\S+ ready\.")
RECEIVED = re.compile(r"Task \S*execute_workload\S* received|Received task", re.IGNORECASE)


@pytest.fixture
def celery_airflow(tmp_path: Path) -> Iterator[tuple[LocalAirflow, str, str]]:
    """Airflow on the CeleryExecutor with two workers; yields it, the target DB and the simulator URL."""
    broker = redis.Redis(host=REDIS_HOST, port=6379, db=REDIS_DB)
    broker.flushdb()
    sim, sim_url = simulator_service(tmp_path, repos=REPOS, seed=3)
    airflow: LocalAirflow | None = None
    try:
        with (
            temporary_database("github_sync_e2e_celery", migrate=True) as target,
            temporary_database("airflow_e2e_celery") as meta,
        ):
            extra_env = {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:6379/{REDIS_DB}",
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "GITHUB_SYNC_FULL_SCHEDULE": "none",
                "GITHUB_SYNC_INCREMENTAL_SCHEDULE": "none",
                "GITHUB_OWNER": "acme",
                "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps(
                    {"conn_type": "github", "host": sim_url, "password": TOKEN}
                ),
                "AIRFLOW_CONN_GITHUB_SYNC_DB": json.dumps(postgres_connection(target)),
            }
            airflow = start_local_airflow(
                home=tmp_path / "airflow",
                metadata_url=metadata_url(meta),
                extra_env=extra_env,
                pool_slots=POOL_SLOTS,
            )
            for worker in WORKERS:
                # As two containers would: own Celery hostname, own log-server port.
                airflow.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
                airflow.start_component(f"celery:{worker}", "worker", "--celery-hostname", f"{worker}@%h")
            for worker in WORKERS:
                log_path = airflow.home / f"celery:{worker}.log"
                wait_until(
                    lambda p=log_path: p.exists() and READY.search(p.read_text(errors="replace")),
                    timeout=180,
                    interval=WORKER_POLL_S,
                    message=f"celery {worker} ready (log {log_path})",
                )
            yield airflow, target, sim_url
    finally:
        started = list(airflow.processes.values()) if airflow else []
        if airflow is not None:
            airflow.stop()
        sim.stop()
        broker.flushdb()
        broker.close()
        assert all(p.poll() is not None for p in started), "an Airflow component survived stop()"


def test_full_sync_on_celery_executor(celery_airflow: tuple[LocalAirflow, str, str]) -> None:
    airflow, target, sim_url = celery_airflow
    airflow.wait_for_dags(["github_full_sync"])
    deployment = Deployment(
        airflow=airflow, sim_url=sim_url, database_url=target, relay_url="", home=airflow.home
    )
    started = time.monotonic()
    run_id = deployment.trigger("github_full_sync", {"owner": "acme"})
    state, waited = deployment.wait_for_run("github_full_sync", run_id, timeout=300)
    assert state == "success", f"see {airflow.home}"

    mapped = deployment.task_instances("github_full_sync", run_id, task_id="sync_repository")
    assert mapped and {ti.state.value for ti in mapped} <= {"success", "skipped"}
    assert {ti.executor or "CeleryExecutor" for ti in mapped} == {"CeleryExecutor"}
    outcomes = deployment.query(
        "SELECT state, count(*) FROM sync_repository_runs WHERE run_id = %s GROUP BY state", (run_id,)
    )
    assert dict(outcomes).get("success", 0) >= len(mapped) - 2
    wait_until(
        lambda: deployment.query("SELECT 1 FROM import_logs WHERE metadata->>'run_id' = %s", (run_id,)),
        timeout=90,
        interval=POLL_S,
        message="the import_logs row",
    )
    # Both workers executed task instances.
    received = {
        worker: len(RECEIVED.findall((airflow.home / f"celery:{worker}.log").read_text(errors="replace")))
        for worker in WORKERS
    }
    assert all(received.values()), f"a worker received no task: {received}"
    print(
        f"[e2e] celery_full_sync: {json.dumps({'run_s': round(waited, 1), 'mapped': len(mapped), 'tasks_per_worker': received, 'total_s': round(time.monotonic() - started, 1)})}"
    )
