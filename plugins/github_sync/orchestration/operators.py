"""The mapped ``sync_repository`` operator: one repository per task instance, deferrable.

A custom operator (rather than a ``@task``) because it defers: when the GitHub budget
is spent and the reset is further away than the hook may sleep, the task gives its
worker slot back until the reset (``DateTimeTrigger`` in the triggerer) and then starts
the repository again. Nothing of the repository was committed before the deferral (one
transaction per repository), and the pages already fetched are in the ETag cache, so
the restart costs no budget for them.

The operator owns how a repository task ends (success, deferral, skip, failure) and its
outcome row; the sync itself is :func:`github_sync.sync.repository.sync_repository`, and
this module must not reach into it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from github_sync.config import DATABASE_CONN_ID, GITHUB_CONN_ID
from github_sync.github.errors import RateLimitExhausted, RepositoryUnavailable
from github_sync.orchestration.run_guard import explain_permanent
from github_sync.orchestration.runtime import RunInfo, label_rules_from_variable, task_resources
from github_sync.store.run_records import RepositoryOutcome, record_repository_outcome
from github_sync.sync.repository import (
    DEFAULT_COMMITS_SINCE_DAYS,
    RepositoryTarget,
    SyncOptions,
    sync_repository,
)

if TYPE_CHECKING:
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    from github_sync.github.hook import GitHubHook

log = logging.getLogger(__name__)


class SyncRepositoryOperator(BaseOperator):
    """Sync one repository (projects, bugs, pull requests, commits, metrics, cursors).

    Args:
        repository: the target, ``{"full_name", "project_id", "default_branch"}`` (mapped).
        mode: ``full``, ``incremental`` or ``repository``.
        commits_since_days: how many days of commits to keep.
        github_conn_id: the GitHub connection.
        postgres_conn_id: the target database connection.
    """

    template_fields = ("repository", "mode", "commits_since_days")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        repository: Mapping[str, Any],
        mode: str = "full",
        commits_since_days: int | str = DEFAULT_COMMITS_SINCE_DAYS,
        github_conn_id: str = GITHUB_CONN_ID,
        postgres_conn_id: str = DATABASE_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.repository = repository
        self.mode = mode
        self.commits_since_days = commits_since_days
        self.github_conn_id = github_conn_id
        self.postgres_conn_id = postgres_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        target = RepositoryTarget.from_mapping(self.repository)
        run = RunInfo.from_context(context)
        options = SyncOptions(
            as_of=run.as_of,
            commits_since=run.as_of - timedelta(days=self._commit_window_days()),
            rules=label_rules_from_variable(),
            incremental=self.mode == "incremental",
        )
        resume_at: RateLimitExhausted | None = None
        skipped: RepositoryUnavailable | None = None
        with task_resources(
            run, github_conn_id=self.github_conn_id, postgres_conn_id=self.postgres_conn_id
        ) as task:
            hook, conn = task.hook, task.conn
            running = RepositoryOutcome(
                repository=target.full_name, state="running", project_id=target.project_id
            )
            self._record(conn, run, running, finished=False)
            try:
                outcome = sync_repository(hook, conn, target, options)
            except RateLimitExhausted as exc:
                self._record(conn, run, self._failed_outcome(target, "deferred", exc, hook))
                log.warning("Budget spent; %s resumes after %s", target.full_name, exc.reset_at.isoformat())
                resume_at = exc
            except RepositoryUnavailable as exc:
                self._record(conn, run, self._failed_outcome(target, "skipped", exc, hook))
                skipped = exc
            except Exception as exc:
                self._record(conn, run, self._failed_outcome(target, "failed", exc, hook))
                fix = explain_permanent(exc, github_conn_id=self.github_conn_id)
                if fix is not None:
                    # Bad credentials, a lost permission, a bad Variable: every retry fails alike.
                    raise AirflowFailException(fix) from exc
                raise
            else:
                _add_request_counters(outcome, hook)
                self._record(conn, run, outcome)
        # Deferring and skipping raise: only once the hook and the connection are closed.
        if resume_at is not None:
            self.defer(trigger=_reset_trigger(resume_at), method_name="execute_complete")
        if skipped is not None:
            raise AirflowSkipException(f"{target.full_name} skipped: {skipped.reason}") from skipped
        return outcome.to_xcom()

    def _commit_window_days(self) -> int:
        # A templated field: the rendered Param arrives as a string.
        try:
            return int(self.commits_since_days)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"commits_since_days must be a whole number of days, got {self.commits_since_days!r}"
            ) from exc

    def execute_complete(self, context: Context, event: object = None) -> dict[str, Any]:
        """Resume after the rate-limit reset: sync the repository again from its start."""
        return self.execute(context)

    def _failed_outcome(
        self, target: RepositoryTarget, state: str, exc: BaseException, hook: GitHubHook
    ) -> RepositoryOutcome:
        outcome = RepositoryOutcome(
            repository=target.full_name,
            state=state,
            project_id=target.project_id,
            error=f"{type(exc).__name__}: {exc}",
            operation="sync_repository",
        )
        _add_request_counters(outcome, hook)
        return outcome

    def _record(
        self,
        conn: psycopg.Connection[Any],
        run: RunInfo,
        outcome: RepositoryOutcome,
        *,
        finished: bool = True,
    ) -> None:
        try:
            with conn.cursor() as cursor:
                record_repository_outcome(
                    cursor,
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    outcome=outcome,
                    try_number=run.try_number,
                    finished=finished,
                )
            conn.commit()
        except Exception:
            conn.rollback()
            # The outcome row is bookkeeping; losing it must not fail a synced repository.
            log.exception("Could not record the outcome of %s", outcome.repository)


def _add_request_counters(outcome: RepositoryOutcome, hook: GitHubHook) -> None:
    stats = hook.stats
    outcome.requests = int(stats.requests_sent)
    outcome.budget_spent = int(stats.budget_spent)
    outcome.not_modified = int(stats.not_modified)
    outcome.retries = int(stats.retries)
    core = hook.rate_limit()
    outcome.rate_limit_remaining = core.remaining if core is not None else None


def _reset_trigger(exc: RateLimitExhausted) -> DateTimeTrigger:
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    return DateTimeTrigger(moment=exc.reset_at)
