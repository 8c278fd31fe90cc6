"""How tasks obtain their collaborators from Airflow: connections, Variables, the run's time.

Kept apart from the sync logic so that the logic stays testable without Airflow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from github_sync.config import DATABASE_CONN_ID, GITHUB_CONN_ID, ConfigError
from github_sync.transform.labels import LABEL_RULES_VARIABLE, LabelRules, load_label_rules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """The DAG run a task belongs to."""

    dag_id: str
    run_id: str
    try_number: int
    as_of: datetime

    @classmethod
    def from_context(cls, context: Any) -> RunInfo:
        dag_run = context["dag_run"]
        ti = context.get("ti")
        # run_after is set for every run (manual, scheduled, API-triggered with a null
        # logical_date) and is the same for all tasks of the run: the run's "as of" time.
        as_of = getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None)
        if as_of is None:
            raise ValueError(f"DAG run {dag_run.run_id} has neither run_after nor logical_date")
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        return cls(
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            try_number=int(getattr(ti, "try_number", 1) or 1),
            as_of=datetime.fromtimestamp(as_of.timestamp(), tz=UTC),
        )


def connect_database(postgres_conn_id: str = DATABASE_CONN_ID) -> Any:
    """A new psycopg connection to the target database, through ``PostgresHook``."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=postgres_conn_id).get_conn()


# Hook tunables a deployment may set in the GitHub connection's extra (JSON), with their types.
HOOK_EXTRA_OPTIONS: dict[str, type] = {
    "max_wait_s": float,
    "reserve_fraction": float,
    "max_in_flight": int,
    "retry_max_attempts": int,
    "retry_backoff_initial_s": float,
    "retry_backoff_max_s": float,
}


def hook_options_from_extra(extra: Mapping[str, Any], conn_id: str) -> dict[str, Any]:
    """Validate the hook tunables of a connection's extra; return GitHubHook keyword arguments.

    Raises:
        ValueError: an unknown key or a value of the wrong type, naming the connection and key.
    """
    options: dict[str, Any] = {}
    for key, value in extra.items():
        kind = HOOK_EXTRA_OPTIONS.get(key)
        if kind is None:
            raise ConfigError(
                f"connection {conn_id!r}: unknown extra {key!r}; allowed: {sorted(HOOK_EXTRA_OPTIONS)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(
                f"connection {conn_id!r}: extra {key!r} must be a non-negative number, got {value!r}"
            )
        options[key] = kind(value)
    hook_kwargs = {k: v for k, v in options.items() if not k.startswith("retry_")}
    retry = {k.removeprefix("retry_"): v for k, v in options.items() if k.startswith("retry_")}
    if retry:
        from github_sync.github.retry import RetryPolicy

        hook_kwargs["retry_policy"] = RetryPolicy(**retry)
    return hook_kwargs


def build_github_hook(github_conn_id: str = GITHUB_CONN_ID, postgres_conn_id: str = DATABASE_CONN_ID) -> Any:
    """The GitHub hook, tuned by its connection's extra, with its ETag cache in the target database."""
    from airflow.sdk import BaseHook

    from github_sync.github.hook import GitHubHook
    from github_sync.github.http_cache import PostgresHttpCache

    extra = BaseHook.get_connection(github_conn_id).extra_dejson or {}
    return GitHubHook(
        github_conn_id=github_conn_id,
        http_cache=PostgresHttpCache(lambda: connect_database(postgres_conn_id)),
        **hook_options_from_extra(extra, github_conn_id),
    )


def label_rules_from_variable() -> LabelRules:
    """The label rules, with the team's override from the Airflow Variable when set.

    Raises:
        LabelRulesError: the Variable holds invalid JSON or rules; the message names it.
    """
    from airflow.sdk import Variable

    return load_label_rules(Variable.get(LABEL_RULES_VARIABLE, default=None))


def close_github_hook(hook: Any) -> None:
    """Close the hook's pooled HTTP connections and its cache's database connection."""
    hook.close()
    cache = getattr(hook, "http_cache", None)
    if cache is not None and hasattr(cache, "close"):
        cache.close()


@contextmanager
def github_session(
    github_conn_id: str = GITHUB_CONN_ID, postgres_conn_id: str = DATABASE_CONN_ID
) -> Iterator[tuple[Any, Any]]:
    """The ``(GitHub hook, target database connection)`` of a task body, both closed at the end."""
    conn = connect_database(postgres_conn_id)
    try:
        hook = build_github_hook(github_conn_id, postgres_conn_id)
        try:
            yield hook, conn
        finally:
            close_github_hook(hook)
    finally:
        conn.close()
