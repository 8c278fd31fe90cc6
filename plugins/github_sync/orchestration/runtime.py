"""How task bodies obtain their collaborators from Airflow: connections, Variables, the run's time.

Owns :func:`task_resources`, the one way a task body opens the GitHub hook and the target
database (and closes both), :class:`RunInfo` (the run a task belongs to), the hook built
from its connection (with the ETag cache and shared budget in the target database), and
the label rules from their Variable.

It must not hold sync logic: it hands Airflow's connections to :mod:`github_sync.sync`,
:mod:`github_sync.store` and :mod:`github_sync.webhooks`, which stay testable without
Airflow. Airflow is imported inside the functions that need it, so that importing this
module (the DAG processor parses every DAG file) stays cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg

from github_sync.config import DATABASE_CONN_ID, GITHUB_CONN_ID, ConfigError
from github_sync.transform.labels import LABEL_RULES_VARIABLE, LabelRules, load_label_rules

if TYPE_CHECKING:
    from airflow.sdk import Context

    from github_sync.github.hook import GitHubHook

log = logging.getLogger(__name__)

DEFAULT_TRY_NUMBER = 1


@dataclass(frozen=True)
class RunInfo:
    """The DAG run a task belongs to."""

    dag_id: str
    run_id: str
    try_number: int
    as_of: datetime

    @classmethod
    def from_context(cls, context: Context) -> RunInfo:
        dag_run = context["dag_run"]
        ti = context.get("ti")
        # run_after is set for every run (manual, scheduled, API-triggered with a null
        # logical_date) and is the same for all tasks of the run: the run's "as of" time.
        # getattr: a run object from before run_after existed has only logical_date.
        as_of: datetime | None = getattr(dag_run, "run_after", None) or dag_run.logical_date
        if as_of is None:
            raise ValueError(f"DAG run {dag_run.run_id} has neither run_after nor logical_date")
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        return cls(
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            try_number=int(getattr(ti, "try_number", DEFAULT_TRY_NUMBER) or DEFAULT_TRY_NUMBER),
            as_of=datetime.fromtimestamp(as_of.timestamp(), tz=UTC),
        )


def connect_database(postgres_conn_id: str = DATABASE_CONN_ID) -> psycopg.Connection[Any]:
    """A new psycopg connection to the target database, through ``PostgresHook``.

    Raises:
        ConfigError: the provider handed out a psycopg2 connection (the sync needs psycopg 3).
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=postgres_conn_id).get_conn()
    if not isinstance(conn, psycopg.Connection):
        conn.close()
        raise ConfigError(
            f"connection {postgres_conn_id!r} opened a {type(conn).__module__} connection; "
            "github-sync needs psycopg 3 (SQLAlchemy 2 makes the Postgres provider use it)"
        )
    return conn


@contextmanager
def open_database(postgres_conn_id: str = DATABASE_CONN_ID) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the target database, closed at the end (uncommitted work is rolled back)."""
    conn = connect_database(postgres_conn_id)
    try:
        yield conn
    finally:
        conn.close()


def build_github_hook(
    github_conn_id: str = GITHUB_CONN_ID, postgres_conn_id: str = DATABASE_CONN_ID
) -> GitHubHook:
    """The GitHub hook of connection ``github_conn_id``, tuned by its ``github_sync`` extra.

    Its ETag cache lives in the target database; so does its credentials' rate-limit state
    unless the connection turns ``shared_budget`` off: every worker then sees what the
    others spent and the pauses they were told of.

    Raises:
        ConfigError: the connection is invalid (no credential, a bad extra), naming the key.
    """
    from airflow.sdk import BaseHook

    from github_sync.github.connection import read_connection
    from github_sync.github.hook import GitHubHook
    from github_sync.github.http_cache import PostgresHttpCache
    from github_sync.github.shared_budget import PostgresBudget

    connection = read_connection(github_conn_id, BaseHook.get_connection(github_conn_id))
    options = connection.options
    return GitHubHook(
        github_conn_id=github_conn_id,
        connection=connection,
        http_cache=PostgresHttpCache(lambda: connect_database(postgres_conn_id)),
        budget=PostgresBudget(lambda: connect_database(postgres_conn_id)) if options.shared_budget else None,
        **options.hook_kwargs(),
    )


def close_github_hook(hook: GitHubHook) -> None:
    """Close the hook's pooled HTTP connections and its cache's and budget's database connections."""
    hook.close()
    for store in (hook.http_cache, hook.budget):
        close_store = getattr(store, "close", None)
        if close_store is not None:
            close_store()


def label_rules_from_variable() -> LabelRules:
    """The label rules, with the team's override from the Airflow Variable when set.

    Raises:
        LabelRulesError: the Variable holds invalid JSON or rules; the message names it.
    """
    from airflow.sdk import Variable

    return load_label_rules(Variable.get(LABEL_RULES_VARIABLE, default=None))


@dataclass(frozen=True)
class TaskResources:
    """What a task body works with: its run, the target database and, when opened, the GitHub hook."""

    run: RunInfo
    conn: psycopg.Connection[Any]
    github_hook: GitHubHook | None

    @property
    def hook(self) -> GitHubHook:
        """The GitHub hook; only for resources opened with ``github=True``."""
        if self.github_hook is None:
            raise RuntimeError("this task opened no GitHub hook (task_resources(..., github=False))")
        return self.github_hook


@contextmanager
def task_resources(
    run: RunInfo,
    *,
    github: bool = True,
    github_conn_id: str = GITHUB_CONN_ID,
    postgres_conn_id: str = DATABASE_CONN_ID,
) -> Iterator[TaskResources]:
    """Open what a task body needs for ``run``; close all of it, however the body ends.

    Args:
        run: the task's run (:meth:`RunInfo.from_context`).
        github: also open the GitHub hook (the webhook and summary tasks call no API).
        github_conn_id: the GitHub connection.
        postgres_conn_id: the target database connection.

    Yields:
        The run, the database connection (the body commits its own work) and the hook.
    """
    with open_database(postgres_conn_id) as conn:
        if not github:
            yield TaskResources(run=run, conn=conn, github_hook=None)
            return
        hook = build_github_hook(github_conn_id, postgres_conn_id)
        try:
            yield TaskResources(run=run, conn=conn, github_hook=hook)
        finally:
            close_github_hook(hook)
