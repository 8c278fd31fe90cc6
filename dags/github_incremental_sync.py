"""github_incremental_sync: hourly; probes every repository cheaply and syncs only the changed ones."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, get_current_context, task

from github_sync import tasks
from github_sync.callbacks import import_log_callbacks
from github_sync.config import GITHUB_POOL
from github_sync.dag_params import (
    DEFAULT_ARGS,
    DEFAULT_INCREMENTAL_SCHEDULE,
    ENV_INCREMENTAL_SCHEDULE,
    schedule_from_env,
    sync_params,
)
from github_sync.operators import SyncRepositoryOperator


@dag(
    dag_id="github_incremental_sync",
    description="Incremental sync: only the repositories that changed since their cursors",
    schedule=schedule_from_env(ENV_INCREMENTAL_SCHEDULE, DEFAULT_INCREMENTAL_SCHEDULE),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=sync_params(),
    tags=["github-sync"],
    **import_log_callbacks("incremental"),
)
def github_incremental_sync() -> None:
    @task
    def detect_changes(params: dict | None = None) -> list[dict]:
        return tasks.detect_changed_repositories(
            get_current_context(),
            owner=params["owner"],
            repos=params["repos"],
            include_archived=params["include_archived"],
        )

    # No retries: the summary fails on purpose when repositories failed; retrying changes nothing.
    @task(trigger_rule="all_done", retries=0)
    def summary(params: dict | None = None) -> dict:
        return tasks.summarize(get_current_context(), failure_tolerance=params["failure_tolerance"])

    # An empty list (nothing changed) skips the mapped task; the summary still runs.
    synced = SyncRepositoryOperator.partial(
        task_id="sync_repository",
        mode="incremental",
        commits_since_days="{{ params.commits_since_days }}",
        pool=GITHUB_POOL,
        map_index_template="{{ task.repository['full_name'] }}",
    ).expand(repository=detect_changes())
    synced >> summary()


github_incremental_sync()
