"""The task pattern every sync DAG shares: map ``sync_repository`` over targets, then summarize."""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task

from github_sync.config import GITHUB_POOL
from github_sync.orchestration import tasks
from github_sync.orchestration.assets import ASSETS_BY_MODE
from github_sync.orchestration.operators import SyncRepositoryOperator


def sync_repositories(targets: Any, *, mode: str) -> Any:
    """Map one ``sync_repository`` task per target (named after its repository in the UI).

    The summary runs after all of them whatever their state (``all_done``) and decides the
    run's state by the failure rule (a failed listing fails the run); an empty ``targets``
    list skips the mapped task and the summary still runs. A successful summary emits the
    mode's Assets (:mod:`github_sync.orchestration.assets`).

    Args:
        targets: the XCom of a task returning ``RepositoryTarget.to_mapping()`` dicts.
        mode: ``full``, ``incremental`` or ``repository``.

    Returns:
        The summary task.
    """

    outlets = ASSETS_BY_MODE[mode]

    # all_done: the summary runs whatever happened upstream, and is the run's only leaf, so
    # it decides the run's state itself (tasks.summarize fails the run when the listing
    # failed or repositories did). Its verdict fails at once (AirflowFailException); the
    # default retries only cover a database hiccup while it reads and closes the run.
    @task(task_id="summary", trigger_rule="all_done", outlets=list(outlets))
    def summary(params: dict | None = None) -> dict:
        return tasks.summarize(
            get_current_context(),
            mode=mode,
            failure_tolerance=(params or {}).get("failure_tolerance", 0),
            # Retention runs with the weekly full sync (README: "Retention").
            prune_state=mode == "full",
            outlets=outlets,
        )

    synced = SyncRepositoryOperator.partial(
        task_id="sync_repository",
        mode=mode,
        commits_since_days="{{ params.commits_since_days }}",
        pool=GITHUB_POOL,
        map_index_template="{{ task.repository['full_name'] }}",
    ).expand(repository=targets)
    done = summary()
    synced >> done
    return done
