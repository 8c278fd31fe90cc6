"""github_repo_sync: one repository, given as the ``repository`` Param (``owner/name``)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, get_current_context, task

from github_sync import tasks
from github_sync.callbacks import import_log_callbacks
from github_sync.config import GITHUB_POOL
from github_sync.dag_params import DEFAULT_ARGS, repository_params
from github_sync.operators import SyncRepositoryOperator


@dag(
    dag_id="github_repo_sync",
    description="Sync one GitHub repository into PostgreSQL (trigger with config)",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params=repository_params(),
    tags=["github-sync"],
    **import_log_callbacks("repository"),
)
def github_repo_sync() -> None:
    @task
    def resolve_repository(params: dict | None = None) -> list[dict]:
        return tasks.resolve_repository(get_current_context(), repository=params["repository"])

    # No retries: the summary fails on purpose when repositories failed; retrying changes nothing.
    @task(trigger_rule="all_done", retries=0)
    def summary() -> dict:
        return tasks.summarize(get_current_context())

    synced = SyncRepositoryOperator.partial(
        task_id="sync_repository",
        mode="repository",
        commits_since_days="{{ params.commits_since_days }}",
        pool=GITHUB_POOL,
        map_index_template="{{ task.repository['full_name'] }}",
    ).expand(repository=resolve_repository())
    synced >> summary()


github_repo_sync()
