"""The shared end-to-end deployment: one real Airflow 3.3 for all five scenarios.

Started once for the package (``scope="package"``) and stopped after its last test, so it
does not idle on the 2-core CI machine while the other packages' tests run:

* Airflow's api-server, scheduler, dag-processor and triggerer (LocalExecutor, metadata in
  a throwaway PostgreSQL database) started by :func:`github_sync.devtools.local_airflow.start_local_airflow`,
  the same commands as the compose services;
* the GitHub simulator (``github-sim``) and the webhook relay (``github-sync-relay``) as
  real processes, each in its own process group;
* a fresh migrated target database.

The connections are stored in the metadata database through the REST API (not as
``AIRFLOW_CONN_*`` variables, which would shadow it) so a scenario can repoint them.
Everything is stopped, and the databases dropped, also when a test fails.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from github_sync.config import DATABASE_CONN_ID, GITHUB_CONN_ID, github_connection, postgres_connection
from github_sync.devtools.local_airflow import free_port, start_local_airflow
from tests.conftest import REPO_ROOT
from tests.e2e.harness import (
    BIN,
    HOOK_EXTRA,
    RELAY_ADMIN_TOKEN,
    SIM_TOKEN,
    WEBHOOK_SECRET,
    Deployment,
    Service,
    metadata_url,
    simulator_service,
    temporary_database,
)

# A small organisation: enough mapped tasks to exercise the pool, quick on 2 cores.
SIM_REPOS = 30
SIM_SEED = 11
POOL_SLOTS = 4
# The relay batches deliveries arriving within this window into one DAG run (its default).
RELAY_COALESCE_S = 2.0
ARTIFACTS = REPO_ROOT / "test-artifacts"


def deployment_env() -> dict[str, str]:
    """Environment of the test's Airflow components (on top of local_airflow's)."""
    return {
        # Manual runs only: unpausing a scheduled DAG would start its latest scheduled run.
        "GITHUB_SYNC_FULL_SCHEDULE": "none",
        "GITHUB_SYNC_INCREMENTAL_SCHEDULE": "none",
        "GITHUB_OWNER": "acme",
        "AIRFLOW__API__WORKERS": "1",
        # Own log-server ports: another deployment (or a developer's `make run`) may hold the defaults.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        # The deferred tasks of the rate-limit scenario resume as soon as their trigger fires.
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
        # Each test's rows and logs stay apart from a developer's Airflow.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    }


@pytest.fixture(scope="package")
def e2e_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="package")
def deployment(e2e_home: Path) -> Iterator[Deployment]:
    """Airflow + simulator + relay + target database, shared by the scenarios."""
    env = deployment_env()
    # The connections live in the metadata database (set through the REST API below): an
    # AIRFLOW_CONN_* variable inherited from the caller would shadow them.
    for name in ("AIRFLOW_CONN_GITHUB_DEFAULT", "AIRFLOW_CONN_GITHUB_SYNC_DB"):
        os.environ.pop(name, None)
    with (
        temporary_database("github_sync_e2e", migrate=True) as target_url,
        temporary_database("airflow_e2e") as meta_url,
    ):
        sim, sim_url = simulator_service(e2e_home, repos=SIM_REPOS, seed=SIM_SEED)
        airflow = None
        relay = None
        deployment = None
        try:
            airflow = start_local_airflow(
                home=e2e_home / "airflow",
                metadata_url=metadata_url(meta_url),
                extra_env=env,
                pool_slots=POOL_SLOTS,
            )
            relay_port = free_port()
            relay_env = {
                **os.environ,
                "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "GITHUB_SYNC_DATABASE_URL": target_url,
                "AIRFLOW_API_URL": airflow.api_url,
                "AIRFLOW_API_USERNAME": "admin",
                "AIRFLOW_API_PASSWORD": airflow.admin_password,
                "GITHUB_SYNC_RELAY_HOST": "127.0.0.1",
                "GITHUB_SYNC_RELAY_PORT": str(relay_port),
                "GITHUB_SYNC_RELAY_COALESCE_SECONDS": str(RELAY_COALESCE_S),
                "GITHUB_SYNC_RELAY_ADMIN_TOKEN": RELAY_ADMIN_TOKEN,
            }
            relay = Service(
                "github-sync-relay", [str(BIN / "github-sync-relay")], relay_env, e2e_home / "relay.log"
            ).start()
            relay_url = f"http://127.0.0.1:{relay_port}"
            relay.wait_http(f"{relay_url}/readyz")
            deployment = Deployment(
                airflow=airflow,
                sim_url=sim_url,
                database_url=target_url,
                relay_url=relay_url,
                home=e2e_home,
                services={"simulator": sim, "relay": relay},
            )
            deployment.set_connection(
                GITHUB_CONN_ID,
                github_connection(sim_url, SIM_TOKEN, HOOK_EXTRA),
            )
            deployment.set_connection(DATABASE_CONN_ID, postgres_connection(target_url))
            airflow.wait_for_dags(["github_full_sync", "github_incremental_sync", "github_webhook_events"])
            yield deployment
        finally:
            processes = list(airflow.processes.values()) if airflow else []
            for service in (relay, sim):
                if service is not None:
                    service.stop()
            if airflow is not None:
                airflow.stop()
            if deployment is not None and deployment.figures:
                ARTIFACTS.mkdir(exist_ok=True)
                (ARTIFACTS / "e2e-figures.json").write_text(
                    json.dumps(deployment.figures, indent=2, default=str)
                )
            assert all(p.poll() is not None for p in processes), "an Airflow component survived stop()"


@pytest.fixture(scope="package")
def full_sync_run(deployment: Deployment) -> dict[str, object]:
    """The first full sync of the shared organisation (scenario 1 checks it, scenario 2 needs it)."""
    run_id = deployment.trigger("github_full_sync", {"owner": "acme"})
    state, waited = deployment.wait_for_run("github_full_sync", run_id, timeout=300)
    deployment.report("full_sync_run_s", round(waited, 1))
    return {"run_id": run_id, "state": state, "seconds": waited}
