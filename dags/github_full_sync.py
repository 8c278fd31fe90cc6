"""github_full_sync: every repository of an owner, one mapped task per repository."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, get_current_context, task

from github_sync import tasks
from github_sync.callbacks import import_log_callbacks
from github_sync.config import GITHUB_POOL
from github_sync.dag_params import (
    DEFAULT_ARGS,
    DEFAULT_FULL_SYNC_SCHEDULE,
    ENV_FULL_SYNC_SCHEDULE,
    schedule_from_env,
    sync_params,
)
from github_sync.operators import SyncRepositoryOperator


@dag(
    dag_id="github_full_sync",
    description="Full sync of a GitHub owner's repositories into PostgreSQL",
    schedule=schedule_from_env(ENV_FULL_SYNC_SCHEDULE, DEFAULT_FULL_SYNC_SCHEDULE),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=sync_params(),
    tags=["github-sync"],
    **import_log_callbacks("full"),
)
def github_full_sync() -> None:
    @task
    def list_repositories(params: dict | None = None) -> list[dict]:
        return tasks.list_repositories(
            get_current_context(),
            mode="full",
            owner=params["owner"],
            repos=params["repos"],
            include_archived=params["include_archived"],
        )

    # No retries: the summary fails on purpose when repositories failed; retrying changes nothing.
    @task(trigger_rule="all_done", retries=0)
    def summary(params: dict | None = None) -> dict:
        return tasks.summarize(get_current_context(), failure_tolerance=params["failure_tolerance"])

    targets = list_repositories()
    synced = SyncRepositoryOperator.partial(
        task_id="sync_repository",
        mode="full",
        commits_since_days="{{ params.commits_since_days }}",
        pool=GITHUB_POOL,
        map_index_template="{{ task.repository['full_name'] }}",
    ).expand(repository=targets)
    synced >> summary()


github_full_sync()
