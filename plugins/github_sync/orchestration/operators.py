"""The mapped ``sync_repository`` operator: one shard of repositories per task instance, deferrable.

A shard (:mod:`github_sync.sync.shards`) is one repository while a run has few, else a
balanced group: the task syncs its repositories a few at a time (threads sharing one GitHub
hook, each repository on a pooled database connection of its own and in one transaction),
and records each repository's outcome as it ends, so progress, the ETA, the failure rule and
``sync_repository_runs`` stay per repository.

A custom operator (rather than a ``@task``) because it defers: when the GitHub budget is
spent and the reset is further away than the hook may sleep, the shard stops starting
repositories, gives its worker slot back until the reset (``DateTimeTrigger`` in the
triggerer) and then goes on. Nothing of an unfinished repository was committed (one
transaction per repository), and the pages already fetched are in the ETag cache, so the
restart costs no budget for them. A resumed or retried shard passes over the repositories
this run already synced (their rows in ``sync_repository_runs``) and redoes only the others.

The operator owns how a shard's task ends (success, deferral, skip, failure) and the outcome
rows; the sync itself is :func:`github_sync.sync.repository.sync_repository`, and this module
must not reach into it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from psycopg_pool import ConnectionPool

from github_sync.config import DATABASE_CONN_ID, GITHUB_CONN_ID, shard_concurrency
from github_sync.github.errors import RateLimitExhausted, RepositoryUnavailable
from github_sync.orchestration.run_guard import explain_permanent
from github_sync.orchestration.runtime import RunInfo, label_rules_from_variable, task_resources
from github_sync.store.run_records import RepositoryOutcome, record_repository_outcome, settled_repositories
from github_sync.sync.repository import (
    DEFAULT_COMMITS_SINCE_DAYS,
    RepositoryTarget,
    SyncOptions,
    sync_repository,
)
from github_sync.sync.shards import Shard

if TYPE_CHECKING:
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    from github_sync.github.hook import GitHubHook
    from github_sync.github.stats import HookStats

log = logging.getLogger(__name__)

# A failed shard's message names at most this many repositories (all are in import_logs).
MAX_NAMED_FAILURES = 10
# How long a shard waits for its pooled database connections before its task fails (and retries).
POOL_OPEN_TIMEOUT_S = 30


class ShardFailed(RuntimeError):
    """Repositories of a shard failed; a retry syncs them (and only them) again."""


@dataclass(frozen=True)
class RepositoryResult:
    """How one repository of the shard ended: its outcome row, and the exception if it did not succeed."""

    outcome: RepositoryOutcome
    error: BaseException | None = None
    # What to fix, when no retry can fix the error (see explain_permanent).
    fix: str | None = None


class SyncRepositoryOperator(BaseOperator):
    """Sync the repositories of one shard (projects, bugs, pull requests, commits, metrics, cursors).

    Args:
        shard: the mapped input, :meth:`Shard.to_mapping` (``label`` and ``repositories``).
        mode: ``full``, ``incremental`` or ``repository``.
        commits_since_days: how many days of commits to keep.
        concurrency: repositories synced at once (default: ``GITHUB_SYNC_SHARD_CONCURRENCY``, 4).
        github_conn_id: the GitHub connection.
        postgres_conn_id: the target database connection.
    """

    template_fields = ("shard", "mode", "commits_since_days")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        shard: Mapping[str, Any],
        mode: str = "full",
        commits_since_days: int | str = DEFAULT_COMMITS_SINCE_DAYS,
        concurrency: int | None = None,
        github_conn_id: str = GITHUB_CONN_ID,
        postgres_conn_id: str = DATABASE_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.shard = shard
        self.mode = mode
        self.commits_since_days = commits_since_days
        self.concurrency = concurrency
        self.github_conn_id = github_conn_id
        self.postgres_conn_id = postgres_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        shard = Shard.from_mapping(self.shard)
        run = RunInfo.from_context(context)
        options = SyncOptions(
            as_of=run.as_of,
            commits_since=run.as_of - timedelta(days=self._commit_window_days()),
            rules=label_rules_from_variable(),
            incremental=self.mode == "incremental",
        )
        with task_resources(
            run, github_conn_id=self.github_conn_id, postgres_conn_id=self.postgres_conn_id
        ) as task:
            pending = self._pending(task.conn, run, shard)
            workers = min(self.concurrency or shard_concurrency(), len(pending)) or 1
            with _connections(task.conn, workers) as borrow:
                results = _ShardRun(self, task.hook, borrow, run, shard, options).sync(pending, workers)
        # Deferring, skipping and failing raise: only once the hook and the connections are closed.
        return self._finish(shard, results)

    def execute_complete(self, context: Context, event: object = None) -> dict[str, Any]:
        """Resume after the rate-limit reset: sync the repositories the shard has not settled."""
        return self.execute(context)

    def _pending(self, conn: psycopg.Connection[Any], run: RunInfo, shard: Shard) -> list[RepositoryTarget]:
        names = [target.full_name for target in shard.repositories]
        with conn.cursor() as cursor:
            settled = settled_repositories(cursor, dag_id=run.dag_id, run_id=run.run_id, repositories=names)
        conn.commit()
        if settled:
            log.info(
                "%s: %d of %d repositories already synced in this run", shard.label, len(settled), len(names)
            )
        return [target for target in shard.repositories if target.full_name not in settled]

    def _finish(self, shard: Shard, results: Sequence[RepositoryResult]) -> dict[str, Any]:
        deferred = [r for r in results if r.outcome.state == "deferred"]
        failed = [r for r in results if r.outcome.state == "failed"]
        skipped = [r for r in results if r.outcome.state == "skipped"]
        resets = [r.error.reset_at for r in deferred if isinstance(r.error, RateLimitExhausted)]
        if resets:
            # Failed repositories are synced again after the reset too (they are not settled).
            log.warning("Budget spent; %d repositories of %s resume after %s", len(deferred), shard.label,
                        min(resets).isoformat())  # fmt: skip
            self.defer(trigger=_reset_trigger(min(resets)), method_name="execute_complete")
        single = len(shard.repositories) == 1
        if failed:
            if single and failed[0].fix is None and failed[0].error is not None:
                raise failed[0].error
            names = ", ".join(
                f"{r.outcome.repository} ({r.outcome.error})" for r in failed[:MAX_NAMED_FAILURES]
            )
            message = f"{len(failed)} of {len(results)} repositories of {shard.label} failed: {names}"
            if all(r.fix is not None for r in failed):
                # Bad credentials, a lost permission, a bad Variable: every retry fails alike.
                raise AirflowFailException("; ".join(sorted({str(r.fix) for r in failed})))
            raise ShardFailed(message)
        if single and skipped:
            reason = (
                skipped[0].error.reason
                if isinstance(skipped[0].error, RepositoryUnavailable)
                else "unavailable"
            )
            raise AirflowSkipException(f"{shard.label} skipped: {reason}") from skipped[0].error
        if single and results:
            return results[0].outcome.to_xcom()
        return {
            "shard": shard.label,
            "repositories": len(shard.repositories),
            "synced_now": len(results),
            "skipped": [r.outcome.repository for r in skipped],
            "records": sum(r.outcome.records for r in results),
        }

    def _commit_window_days(self) -> int:
        # A templated field: the rendered Param arrives as a string.
        try:
            return int(self.commits_since_days)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"commits_since_days must be a whole number of days, got {self.commits_since_days!r}"
            ) from exc


class _ShardRun:
    """One try of a shard: its repositories, ``workers`` at a time, until done or the budget is spent."""

    def __init__(
        self,
        operator: SyncRepositoryOperator,
        hook: GitHubHook,
        borrow: Callable[[], Any],
        run: RunInfo,
        shard: Shard,
        options: SyncOptions,
    ) -> None:
        self.operator = operator
        self.hook = hook
        self.borrow = borrow
        self.run = run
        self.shard = shard
        self.options = options
        # Set by the first repository that finds the budget spent: the others are not started.
        self.budget_spent: RateLimitExhausted | None = None
        self._lock = threading.Lock()

    def sync(self, targets: Sequence[RepositoryTarget], workers: int) -> list[RepositoryResult]:
        if workers <= 1:
            return [self._one(target) for target in targets]
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shard")
        try:
            futures = [pool.submit(self._one, target) for target in targets]
            return [future.result() for future in futures]
        finally:
            # A timeout or SIGTERM lands here in the main thread: repositories not started are
            # dropped, the ones in flight finish their transaction (or roll it back).
            pool.shutdown(wait=True, cancel_futures=True)

    def _one(self, target: RepositoryTarget) -> RepositoryResult:
        try:
            return self._sync_one(target)
        except Exception as exc:
            # Borrowing a connection or recording the outcome failed (the database went away):
            # the repository failed, the others of the shard still end as they end.
            log.exception("Could not sync %s", target.full_name)
            return RepositoryResult(self._outcome(target, "failed", exc, None), exc)

    def _sync_one(self, target: RepositoryTarget) -> RepositoryResult:
        with self.borrow() as conn:
            if self.budget_spent is not None:
                # Not started: it waits for the reset with the repository that found the budget spent.
                outcome = self._outcome(target, "deferred", self.budget_spent, None)
                self._record(conn, outcome)
                return RepositoryResult(outcome, self.budget_spent)
            with self.hook.counting() as counted:
                self._record(conn, RepositoryOutcome(repository=target.full_name, state="running",
                                                     project_id=target.project_id, shard=self.shard.label),
                             finished=False)  # fmt: skip
                try:
                    outcome = sync_repository(self.hook, conn, target, self.options)
                except RateLimitExhausted as exc:
                    with self._lock:
                        self.budget_spent = self.budget_spent or exc
                    result = RepositoryResult(self._outcome(target, "deferred", exc, counted.snapshot()), exc)
                except RepositoryUnavailable as exc:
                    result = RepositoryResult(self._outcome(target, "skipped", exc, counted.snapshot()), exc)
                except Exception as exc:
                    fix = explain_permanent(exc, github_conn_id=self.operator.github_conn_id)
                    log.exception("Failed %s", target.full_name)
                    result = RepositoryResult(
                        self._outcome(target, "failed", exc, counted.snapshot()), exc, fix
                    )
                else:
                    outcome.shard = self.shard.label
                    self._count(outcome, counted.snapshot())
                    result = RepositoryResult(outcome)
            self._record(conn, result.outcome)
            return result

    def _outcome(
        self, target: RepositoryTarget, state: str, exc: BaseException, stats: HookStats | None
    ) -> RepositoryOutcome:
        outcome = RepositoryOutcome(
            repository=target.full_name,
            state=state,
            project_id=target.project_id,
            error=f"{type(exc).__name__}: {exc}",
            operation="sync_repository",
            shard=self.shard.label,
        )
        if stats is not None:
            self._count(outcome, stats)
        return outcome

    def _count(self, outcome: RepositoryOutcome, stats: HookStats) -> None:
        outcome.requests = int(stats.requests_sent)
        outcome.budget_spent = int(stats.budget_spent)
        outcome.not_modified = int(stats.not_modified)
        outcome.retries = int(stats.retries)
        core = self.hook.rate_limit()
        outcome.rate_limit_remaining = core.remaining if core is not None else None

    def _record(
        self, conn: psycopg.Connection[Any], outcome: RepositoryOutcome, *, finished: bool = True
    ) -> None:
        try:
            with conn.cursor() as cursor:
                record_repository_outcome(
                    cursor,
                    dag_id=self.run.dag_id,
                    run_id=self.run.run_id,
                    outcome=outcome,
                    try_number=self.run.try_number,
                    finished=finished,
                )
            conn.commit()
        except Exception:
            conn.rollback()
            # The outcome row is bookkeeping; losing it must not fail a synced repository.
            log.exception("Could not record the outcome of %s", outcome.repository)


@contextmanager
def _connections(conn: psycopg.Connection[Any], workers: int) -> Iterator[Callable[[], Any]]:
    """What each repository borrows its database connection from: the task's own, or a pool.

    A pool of ``workers`` connections to the same database as ``conn`` (opened through the
    task's ``PostgresHook``), so that each repository syncing at the same time has its own
    transaction; one worker simply uses ``conn``.
    """
    if workers <= 1:

        @contextmanager
        def lend_task_connection() -> Iterator[psycopg.Connection[Any]]:
            yield conn

        yield lend_task_connection
        return
    # The task's connection carries what PostgresHook resolved (host, database, user, SSL
    # options, password); the pool opens more of the same. Passed as keyword arguments, so
    # the password is never part of a connection string.
    parameters: dict[str, Any] = {**conn.info.get_parameters()}
    if conn.info.password:
        parameters["password"] = conn.info.password
    pool = ConnectionPool(
        "", kwargs=parameters, min_size=workers, max_size=workers, open=False, name="github-sync-shard",
        check=ConnectionPool.check_connection,
    )  # fmt: skip
    try:
        pool.open(wait=True, timeout=POOL_OPEN_TIMEOUT_S)  # fails the task at once when the database refuses
        yield pool.connection
    finally:
        pool.close()


def _reset_trigger(reset_at: Any) -> DateTimeTrigger:
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    return DateTimeTrigger(moment=reset_at)
