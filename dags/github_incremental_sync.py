"""github_incremental_sync: hourly; probes every repository cheaply and syncs only the changed ones."""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from github_sync.orchestration import tasks
from github_sync.orchestration.callbacks import import_log_callbacks
from github_sync.orchestration.dag_building import sync_repositories
from github_sync.orchestration.params import (
    DEFAULT_INCREMENTAL_SCHEDULE,
    ENV_INCREMENTAL_SCHEDULE,
    SYNC_DAG_ARGS,
    schedule_from_env,
    sync_params,
)


@dag(
    dag_id="github_incremental_sync",
    description="Incremental sync: only the repositories that changed since their cursors",
    schedule=schedule_from_env(ENV_INCREMENTAL_SCHEDULE, DEFAULT_INCREMENTAL_SCHEDULE),
    max_active_runs=1,
    params=sync_params(),
    **SYNC_DAG_ARGS,
    **import_log_callbacks("incremental"),
)
def github_incremental_sync() -> None:
    @task
    def detect_changes(params: dict | None = None) -> list[dict]:
        return tasks.detect_changed_repositories(
            get_current_context(),
            owner=params.get("owner"),
            owners=params.get("owners"),
            repos=params.get("repos"),
            include_archived=params["include_archived"],
        )

    # An empty list (nothing changed) skips the mapped task; the summary still runs and logs.
    sync_repositories(detect_changes(), mode="incremental")


github_incremental_sync()
