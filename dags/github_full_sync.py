"""github_full_sync: every repository of an owner, one mapped task per repository; weekly and on demand.

A declaration only: the task bodies are in :mod:`github_sync.orchestration.tasks` and what
every DAG shares in :mod:`github_sync.orchestration.dag_building`; nothing here may do I/O
at parse time or import from github_sync anything but the integration package.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task

from github_sync.orchestration import tasks
from github_sync.orchestration.dag_building import dag_arguments, full_sync_schedule, sync_repositories
from github_sync.orchestration.params import sync_params


@dag(
    **dag_arguments("full"),
    description="Full sync of a GitHub owner's repositories into PostgreSQL",
    schedule=full_sync_schedule(),
    max_active_runs=1,
    params=sync_params(),
)
def github_full_sync() -> None:
    @task
    def list_repositories() -> list[dict[str, Any]]:
        return tasks.list_repositories(get_current_context(), mode="full")

    sync_repositories(list_repositories(), mode="full")


github_full_sync()
