"""github_full_sync: every repository of an owner, one mapped task per repository; weekly and on demand."""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from github_sync.orchestration import tasks
from github_sync.orchestration.callbacks import import_log_callbacks
from github_sync.orchestration.dag_building import sync_repositories
from github_sync.orchestration.params import (
    DEFAULT_FULL_SYNC_SCHEDULE,
    ENV_FULL_SYNC_SCHEDULE,
    SYNC_DAG_ARGS,
    schedule_from_env,
    sync_params,
)


@dag(
    dag_id="github_full_sync",
    description="Full sync of a GitHub owner's repositories into PostgreSQL",
    schedule=schedule_from_env(ENV_FULL_SYNC_SCHEDULE, DEFAULT_FULL_SYNC_SCHEDULE),
    max_active_runs=1,
    params=sync_params(),
    **SYNC_DAG_ARGS,
    **import_log_callbacks("full"),
)
def github_full_sync() -> None:
    @task
    def list_repositories(params: dict | None = None) -> list[dict]:
        return tasks.list_repositories(
            get_current_context(),
            mode="full",
            owner=params.get("owner"),
            owners=params.get("owners"),
            repos=params.get("repos"),
            include_archived=params["include_archived"],
        )

    sync_repositories(list_repositories(), mode="full")


github_full_sync()
