"""github_incremental_sync: hourly; probes every repository cheaply and syncs only the changed ones.

A declaration only: the task bodies are in :mod:`github_sync.orchestration.tasks` and what
every DAG shares in :mod:`github_sync.orchestration.dag_building`; nothing here may do I/O
at parse time or import from github_sync anything but the integration package.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task

from github_sync.orchestration import tasks
from github_sync.orchestration.dag_building import (
    dag_arguments,
    incremental_sync_schedule,
    sync_repositories,
)
from github_sync.orchestration.params import sync_params


@dag(
    **dag_arguments("incremental"),
    description="Incremental sync: only the repositories that changed since their cursors",
    schedule=incremental_sync_schedule(),
    max_active_runs=1,
    params=sync_params(),
)
def github_incremental_sync() -> None:
    @task
    def detect_changes() -> list[dict[str, Any]]:
        return tasks.detect_changed_repositories(get_current_context())

    # An empty list (nothing changed) skips the mapped task; the summary still runs and logs.
    sync_repositories(detect_changes(), mode="incremental")


github_incremental_sync()
