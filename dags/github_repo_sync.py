"""github_repo_sync: one repository, given as the ``repository`` Param (``owner/name``)."""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from github_sync.orchestration import tasks
from github_sync.orchestration.callbacks import import_log_callbacks
from github_sync.orchestration.dag_building import sync_repositories
from github_sync.orchestration.params import SYNC_DAG_ARGS, repository_params


@dag(
    dag_id="github_repo_sync",
    description="Sync one GitHub repository into PostgreSQL (trigger with config)",
    schedule=None,
    params=repository_params(),
    **SYNC_DAG_ARGS,
    **import_log_callbacks("repository"),
)
def github_repo_sync() -> None:
    @task
    def resolve_repository(params: dict | None = None) -> list[dict]:
        return tasks.resolve_repository(get_current_context(), repository=params["repository"])

    sync_repositories(resolve_repository(), mode="repository")


github_repo_sync()
