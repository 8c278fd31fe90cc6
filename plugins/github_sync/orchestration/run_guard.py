"""How a run-level task fails: its cause recorded for ``import_logs``, and at once when retrying cannot help.

A run-level task (listing, change detection, resolving the repository, applying webhook
deliveries, the summary) runs its body inside :func:`run_level_task`: :func:`run_stage`
around the task's resources (:func:`github_sync.orchestration.runtime.task_resources`), so
that even failing to open them is recorded and explained. On success the stage is
marked done in ``sync_runs.details.stages``; the summary refuses to call a run a success
whose targets stage is not done. On failure:

* the cause is recorded in the same place (it becomes an ``import_logs.errors`` line);
* errors that no retry can fix (bad credentials, unknown owner, invalid Params or
  Variables, a missing schema, a listing too long to map) become
  ``AirflowFailException`` with a message that says what to fix, so Airflow fails the
  task without its retries;
* anything else (5xx, timeouts, an unreachable database) is re-raised unchanged and keeps
  the task's retries.

This module decides how a task ends; it must not do a task's work (that is
:mod:`github_sync.orchestration.tasks`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg

from github_sync.config import DATABASE_CONN_ID, GITHUB_CONN_ID, ConfigError
from github_sync.github.errors import GitHubClientError, RepositoryUnavailable
from github_sync.github.owners import OwnerError
from github_sync.orchestration.runtime import RunInfo, TaskResources, open_database, task_resources
from github_sync.store.migrations import MigrationError
from github_sync.store.run_records import record_stage
from github_sync.sync.discovery import DiscoveryError
from github_sync.transform.labels import LabelRulesError
from github_sync.webhooks.apply import WebhookConfError, WebhookDeliveriesFailed

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

# The run-level stages, as recorded in sync_runs.details.stages: the first task of every DAG
# (whatever its task id) produces the targets; the summary decides the run.
TARGETS_STAGE = "targets"
SUMMARY_STAGE = "summary"


class RunVerdictFailed(RuntimeError):
    """The summary's verdict: the run did not do its job (the message says why)."""


# Input and configuration errors: the same input fails the same way on every retry.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    OwnerError,
    DiscoveryError,
    ConfigError,
    LabelRulesError,
    MigrationError,
    WebhookConfError,
)
# Schema objects the code needs but the database lacks: an outdated or foreign schema.
SCHEMA_ERRORS = (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn)


def explain_permanent(exc: BaseException, *, github_conn_id: str = GITHUB_CONN_ID) -> str | None:
    """What to fix, for an error no retry can fix; None for one a retry may fix.

    The text comes from the exception's own message (which never carries a secret: see
    :mod:`github_sync.github.errors`) and says where to act.
    """
    from airflow.sdk.exceptions import AirflowNotFoundException

    if isinstance(exc, PERMANENT_ERRORS):
        return str(exc)
    if isinstance(exc, AirflowNotFoundException):
        return (
            f"{exc}: define the Airflow connections {github_conn_id!r} (GitHub) and "
            f"{DATABASE_CONN_ID!r} (target database), e.g. with `github-sync setup-airflow`"
        )
    if isinstance(exc, SCHEMA_ERRORS):
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return (
            f"the target database's schema is missing or outdated ({first_line}): run `github-sync migrate`"
        )
    if isinstance(exc, RepositoryUnavailable):
        return f"{exc}: check the repository's name and that connection {github_conn_id!r} can read it"
    if isinstance(exc, GitHubClientError):
        if exc.status == 401:
            return (
                f"GitHub rejected the credentials of connection {github_conn_id!r} ({exc}): "
                "set a valid token in the connection's password"
            )
        if exc.status == 404 and exc.path.startswith("/users/"):
            login = exc.path.removeprefix("/users/").split("/")[0]
            return (
                f"GitHub has no user or organisation {login!r} ({exc}): check the Param 'owners' "
                "(or GITHUB_OWNER for scheduled runs)"
            )
        if exc.status == 403:
            return f"GitHub refused the request ({exc}): check what connection {github_conn_id!r} may read"
        return f"GitHub refused the request ({exc})"
    return None


@contextmanager
def run_stage(
    run: RunInfo, *, mode: str, stage: str, postgres_conn_id: str = DATABASE_CONN_ID
) -> Iterator[None]:
    """Run a run-level task's body: record how it ended; fail at once where retrying cannot help."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except RunVerdictFailed as exc:
        # The summary's verdict on outcomes recorded one by one: final, and its causes are
        # already in the run's records.
        raise AirflowFailException(str(exc)) from exc
    except WebhookDeliveriesFailed:
        # Each failed delivery is recorded with its error; the one retry covers a database hiccup.
        raise
    except Exception as exc:
        fix = explain_permanent(exc)
        message = fix if fix is not None else f"{type(exc).__name__}: {exc}"
        _record(run, mode=mode, stage=stage, error=message, postgres_conn_id=postgres_conn_id)
        if fix is not None:
            log.error("%s failed and retrying cannot fix it: %s", stage, fix)
            raise AirflowFailException(fix) from exc
        raise
    _record(run, mode=mode, stage=stage, error=None, postgres_conn_id=postgres_conn_id)


@contextmanager
def run_level_task(
    context: Context, *, mode: str, stage: str, github: bool = True
) -> Iterator[TaskResources]:
    """The body of a run-level task: its resources opened and closed inside :func:`run_stage`.

    Args:
        context: the task's Airflow context.
        mode: the run's sync mode (``full``, ``incremental``, ``repository``, ``webhook``).
        stage: :data:`TARGETS_STAGE` or :data:`SUMMARY_STAGE`.
        github: also open the GitHub hook.
    """
    run = RunInfo.from_context(context)
    with run_stage(run, mode=mode, stage=stage), task_resources(run, github=github) as resources:
        yield resources


def _record(run: RunInfo, *, mode: str, stage: str, error: str | None, postgres_conn_id: str) -> None:
    try:
        with open_database(postgres_conn_id) as conn:
            with conn.cursor() as cursor:
                record_stage(
                    cursor, dag_id=run.dag_id, run_id=run.run_id, mode=mode, stage=stage, error=error
                )
            conn.commit()
    except Exception:
        # Bookkeeping: when the database itself is the problem the task's own error says so.
        log.warning("Could not record the end of %s for %s/%s", stage, run.dag_id, run.run_id, exc_info=True)
