"""github_repo_sync: one repository, given as the ``repository`` Param (``owner/name``).

A declaration only: the task bodies are in :mod:`github_sync.orchestration.tasks` and what
every DAG shares in :mod:`github_sync.orchestration.dag_building`; nothing here may do I/O
at parse time or import from github_sync anything but the integration package.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task

from github_sync.orchestration import tasks
from github_sync.orchestration.dag_building import dag_arguments, sync_repositories
from github_sync.orchestration.params import repository_params


@dag(
    **dag_arguments("repository"),
    description="Sync one GitHub repository into PostgreSQL (trigger with config)",
    schedule=None,
    params=repository_params(),
)
def github_repo_sync() -> None:
    @task
    def resolve_repository() -> list[dict[str, Any]]:
        return tasks.resolve_repository(get_current_context())

    sync_repositories(resolve_repository(), mode="repository")


github_repo_sync()
