"""What every github-sync DAG declares alike: its DAG-level arguments and the mapped sync pattern.

Owns the DAG ids by mode, the start date, the task defaults (retries), the tags, the
``import_logs`` callbacks, the schedules (with their environment overrides) and
:func:`sync_repositories`, the ``sync_repository`` map followed by the summary. The DAG
files call these, so that no two DAGs can drift apart.

It declares structure only, at parse time: nothing here may do I/O or call GitHub or the
database (the task bodies, :mod:`github_sync.orchestration.tasks`, do that at run time).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from airflow.sdk import get_current_context, task

from github_sync.config import (
    FULL_SYNC_DAG_ID,
    GITHUB_POOL,
    INCREMENTAL_SYNC_DAG_ID,
    REPOSITORY_SYNC_DAG_ID,
    WEBHOOK_DAG_ID,
)
from github_sync.orchestration import tasks
from github_sync.orchestration.assets import ASSETS_BY_MODE
from github_sync.orchestration.callbacks import import_log_callbacks
from github_sync.orchestration.operators import SyncRepositoryOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.definitions.xcom_arg import XComArg

DAG_ID_BY_MODE = {
    "full": FULL_SYNC_DAG_ID,
    "incremental": INCREMENTAL_SYNC_DAG_ID,
    "repository": REPOSITORY_SYNC_DAG_ID,
    "webhook": WEBHOOK_DAG_ID,
}
START_DATE = datetime(2026, 1, 1)
TAGS = ["github-sync"]
WEBHOOK_TAGS = [*TAGS, "webhooks"]

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "github-sync",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}
# A failed delivery is usually a bad payload, which a retry does not fix; one quick retry
# covers a database hiccup (processed deliveries are skipped on the retry).
WEBHOOK_DEFAULT_ARGS: dict[str, Any] = {**DEFAULT_ARGS, "retries": 1, "retry_delay": timedelta(seconds=10)}

DEFAULT_FULL_SYNC_SCHEDULE = "0 3 * * 0"  # weekly, Sunday 03:00 UTC: reconciles everything
DEFAULT_INCREMENTAL_SCHEDULE = "@hourly"
ENV_FULL_SYNC_SCHEDULE = "GITHUB_SYNC_FULL_SCHEDULE"
ENV_INCREMENTAL_SCHEDULE = "GITHUB_SYNC_INCREMENTAL_SCHEDULE"
NO_SCHEDULE = ("", "none", "manual")


def schedule_from_env(variable: str, default: str) -> str | None:
    """A DAG's schedule: ``default``, or the environment's override (``none`` for manual only).

    Read at parse time from the environment, which is not I/O; an invalid cron expression
    makes the DAG fail to import with Airflow's message naming it.
    """
    value = os.environ.get(variable)
    if value is None:
        return default
    return None if value.strip().lower() in NO_SCHEDULE else value.strip()


def full_sync_schedule() -> str | None:
    return schedule_from_env(ENV_FULL_SYNC_SCHEDULE, DEFAULT_FULL_SYNC_SCHEDULE)


def incremental_sync_schedule() -> str | None:
    return schedule_from_env(ENV_INCREMENTAL_SCHEDULE, DEFAULT_INCREMENTAL_SCHEDULE)


class DagArguments(TypedDict):
    """The ``@dag`` keyword arguments every github-sync DAG shares (typed, so mypy checks them)."""

    dag_id: str
    start_date: datetime
    catchup: bool
    default_args: dict[str, Any]
    tags: list[str]
    on_success_callback: Callable[[Context], None]
    on_failure_callback: Callable[[Context], None]


def dag_arguments(mode: str) -> DagArguments:
    """The shared ``@dag`` arguments of the DAG of ``mode``; each run writes one ``import_logs`` row."""
    callbacks = import_log_callbacks(mode)
    webhook = mode == "webhook"
    return DagArguments(
        dag_id=DAG_ID_BY_MODE[mode],
        start_date=START_DATE,
        catchup=False,
        default_args=WEBHOOK_DEFAULT_ARGS if webhook else DEFAULT_ARGS,
        tags=WEBHOOK_TAGS if webhook else TAGS,
        on_success_callback=callbacks["on_success_callback"],
        on_failure_callback=callbacks["on_failure_callback"],
    )


def sync_repositories(targets: XComArg, *, mode: str) -> XComArg:
    """Map one ``sync_repository`` task per shard (:mod:`github_sync.sync.shards`).

    A one-repository shard is named after its repository in the UI, a larger one
    ``shard i/n: k repositories``.

    The summary runs after all of them whatever their state (``all_done``) and decides the
    run's state by the failure rule (a failed listing fails the run); an empty ``targets``
    list skips the mapped task and the summary still runs. A successful summary emits the
    mode's Assets (:mod:`github_sync.orchestration.assets`).

    Args:
        targets: the XCom of a task returning ``Shard.to_mapping()`` dicts.
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
    def summary() -> dict[str, Any]:
        return tasks.summarize(
            get_current_context(),
            mode=mode,
            # Retention runs with the weekly full sync (README: "Retention").
            prune_state=mode == "full",
            outlets=outlets,
        )

    synced = SyncRepositoryOperator.partial(
        task_id="sync_repository",
        mode=mode,
        commits_since_days="{{ params.commits_since_days }}",
        pool=GITHUB_POOL,
        map_index_template="{{ task.shard['label'] }}",
    ).expand(shard=targets)
    done = summary()
    synced >> done
    return done
