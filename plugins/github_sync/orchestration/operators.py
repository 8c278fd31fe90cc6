"""The mapped ``sync_repository`` operator: one repository per task instance, deferrable.

A custom operator (rather than a ``@task``) because it defers: when the GitHub budget
is spent and the reset is further away than the hook may sleep, the task gives its
worker slot back until the reset (``DateTimeTrigger`` in the triggerer) and then starts
the repository again. Nothing of the repository was committed before the deferral (one
transaction per repository), and the pages already fetched are in the ETag cache, so
the restart costs no budget for them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, Context

from github_sync.config import DATABASE_CONN_ID, GITHUB_CONN_ID
from github_sync.github.errors import RateLimitExhausted, RepositoryUnavailable
from github_sync.orchestration.run_guard import explain_permanent
from github_sync.orchestration.runtime import (
    RunInfo,
    build_github_hook,
    close_github_hook,
    connect_database,
    label_rules_from_variable,
)
from github_sync.store.run_records import RepositoryOutcome, record_repository_outcome
from github_sync.sync.repository import (
    DEFAULT_COMMITS_SINCE_DAYS,
    RepositoryTarget,
    SyncOptions,
    sync_repository,
)

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
        try:
            days = int(self.commits_since_days)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"commits_since_days must be a whole number of days, got {self.commits_since_days!r}"
            ) from exc
        options = SyncOptions(
            as_of=run.as_of,
            commits_since=run.as_of - timedelta(days=days),
            rules=label_rules_from_variable(),
            incremental=self.mode == "incremental",
        )
        hook = build_github_hook(self.github_conn_id, self.postgres_conn_id)
        conn = connect_database(self.postgres_conn_id)
        try:
            running = RepositoryOutcome(
                repository=target.full_name, state="running", project_id=target.project_id
            )
            self._record(conn, run, running, finished=False)
            try:
                outcome = sync_repository(hook, conn, target, options)
            except RateLimitExhausted as exc:
                self._record(conn, run, self._failed_outcome(target, "deferred", exc, hook))
                log.warning("Budget spent; %s resumes after %s", target.full_name, exc.reset_at.isoformat())
                resume_at: RateLimitExhausted | None = exc
                skipped: RepositoryUnavailable | None = None
            except RepositoryUnavailable as exc:
                self._record(conn, run, self._failed_outcome(target, "skipped", exc, hook))
                resume_at, skipped = None, exc
            except Exception as exc:
                self._record(conn, run, self._failed_outcome(target, "failed", exc, hook))
                fix = explain_permanent(exc, github_conn_id=self.github_conn_id)
                if fix is not None:
                    # Bad credentials, a lost permission, a bad Variable: every retry fails alike.
                    from airflow.sdk.exceptions import AirflowFailException

                    raise AirflowFailException(fix) from exc
                raise
            else:
                resume_at, skipped = None, None
                _add_request_counters(outcome, hook)
                self._record(conn, run, outcome)
        finally:
            conn.close()
            close_github_hook(hook)
        if resume_at is not None:
            self.defer(trigger=_reset_trigger(resume_at), method_name="execute_complete")
        if skipped is not None:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(f"{target.full_name} skipped: {skipped.reason}") from skipped
        return outcome.to_xcom()

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the rate-limit reset: sync the repository again from its start."""
        return self.execute(context)

    def _failed_outcome(
        self, target: RepositoryTarget, state: str, exc: BaseException, hook: Any
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

    def _record(self, conn: Any, run: RunInfo, outcome: RepositoryOutcome, *, finished: bool = True) -> None:
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


def _add_request_counters(outcome: RepositoryOutcome, hook: Any) -> None:
    stats = hook.stats
    outcome.requests = int(getattr(stats, "requests_sent", 0))
    outcome.budget_spent = int(getattr(stats, "budget_spent", 0))
    outcome.not_modified = int(getattr(stats, "not_modified", 0))
    outcome.retries = int(getattr(stats, "retries", 0))
    core = hook.rate_limit("core")
    outcome.rate_limit_remaining = core.remaining if core is not None else None


def _reset_trigger(exc: RateLimitExhausted) -> Any:
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    return DateTimeTrigger(moment=exc.reset_at)
