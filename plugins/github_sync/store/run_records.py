"""The audit trail of sync runs: ``sync_runs`` and ``sync_repository_runs``, and the failure rule.

Who writes what:

* the run's first task opens a ``sync_runs`` row (:func:`open_run`) and adds what it
  learnt (:func:`add_run_details`);
* each repository task records its outcome in ``sync_repository_runs``
  (:func:`record_repository_outcome`), in a transaction of its own after the data
  transaction, so a rolled-back repository is still recorded as failed;
* a run-level task records how it ended (:func:`record_stage`);
* the summary task decides the run's state (:func:`failure_verdict`) and closes it
  (:func:`close_run`);
* the DAG-level callbacks write the one ``import_logs`` row per run from these rows
  (:mod:`github_sync.store.import_log`). A callback that cannot reach the database leaves
  ``sync_runs.logged = false``; the next run's ``import_logs`` row lists such runs under
  ``metadata.missing_logs``.

Must not: import Airflow or the orchestration layer (tasks call in with a cursor), or
commit: the caller owns the transaction.

One piece (over 300 lines) because the writers and the failure rule share one contract:
the states, stages and counters one task writes are what :func:`summarize_run` and
:func:`failure_verdict` read back, and they change together.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

log = logging.getLogger(__name__)

MODES = ("full", "incremental", "repository", "webhook")
# A run that never closed is reported missing only after this long: before that it may
# simply still be running.
STALE_OPEN_RUN_HOURS = 24


@dataclass
class RepositoryOutcome:
    """What one repository task did; also its XCom (small, no payloads)."""

    repository: str
    state: str  # success | failed | skipped | deferred | running
    project_id: int | None = None
    records: int = 0
    records_failed: int = 0
    requests: int = 0
    budget_spent: int = 0
    not_modified: int = 0
    retries: int = 0
    rate_limit_remaining: int | None = None
    error: str | None = None
    operation: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    # The mapped task (shard) that synced it, by its label in the UI.
    shard: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)


def open_run(
    cursor: psycopg.Cursor[TupleRow],
    *,
    dag_id: str,
    run_id: str,
    mode: str,
    owner: str | None,
    repositories_total: int,
) -> None:
    """Open (or re-open) the ``sync_runs`` row of a DAG run; forget its repositories' outcomes.

    The first task re-runs on its own retry (no repository ran yet) or when the whole run is
    cleared: then every repository is synced again, not passed over as settled by the
    earlier attempt (:func:`settled_repositories`).
    """
    if mode not in MODES:
        raise ValueError(f"unknown sync mode {mode!r}; expected one of {MODES}")
    cursor.execute(
        "INSERT INTO sync_runs (dag_id, run_id, mode, owner, repositories_total) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (dag_id, run_id) DO UPDATE SET repositories_total = EXCLUDED.repositories_total, "
        "owner = EXCLUDED.owner, state = 'running'",
        (dag_id, run_id, mode, owner, repositories_total),
    )
    cursor.execute("DELETE FROM sync_repository_runs WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))


def record_repository_outcome(
    cursor: psycopg.Cursor[TupleRow],
    *,
    dag_id: str,
    run_id: str,
    outcome: RepositoryOutcome,
    try_number: int,
    finished: bool = True,
) -> None:
    """Upsert one repository's outcome for a run (the latest try wins)."""
    error = outcome.error
    if error and outcome.operation:
        error = f"{outcome.operation}: {error}"
    cursor.execute(
        """
        INSERT INTO sync_repository_runs (dag_id, run_id, repository, project_id, state, try_number, records,
            requests, budget_spent, not_modified, retries, deferrals, rate_limit_remaining, error, shard,
            finished_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)
        ON CONFLICT (dag_id, run_id, repository) DO UPDATE SET
            project_id = COALESCE(EXCLUDED.project_id, sync_repository_runs.project_id),
            shard = COALESCE(EXCLUDED.shard, sync_repository_runs.shard),
            state = EXCLUDED.state, try_number = EXCLUDED.try_number, records = EXCLUDED.records,
            requests = sync_repository_runs.requests + EXCLUDED.requests,
            budget_spent = sync_repository_runs.budget_spent + EXCLUDED.budget_spent,
            not_modified = sync_repository_runs.not_modified + EXCLUDED.not_modified,
            retries = sync_repository_runs.retries + EXCLUDED.retries,
            deferrals = sync_repository_runs.deferrals + EXCLUDED.deferrals,
            rate_limit_remaining = EXCLUDED.rate_limit_remaining, error = EXCLUDED.error,
            started_at = CASE WHEN EXCLUDED.state = 'running' THEN now() ELSE sync_repository_runs.started_at END,
            finished_at = EXCLUDED.finished_at
        """,
        (
            dag_id, run_id, outcome.repository, outcome.project_id, outcome.state, try_number,
            outcome.records + outcome.records_failed if outcome.state == "failed" else outcome.records,
            outcome.requests, outcome.budget_spent, outcome.not_modified, outcome.retries,
            int(outcome.state == "deferred"), outcome.rate_limit_remaining, error, outcome.shard, finished,
        ),
    )  # fmt: skip


# A repository in one of these states needs nothing more in its run: a retried or resumed
# shard passes over it (a failed or deferred one is synced again).
SETTLED_REPOSITORY_STATES = ("success", "skipped")


def settled_repositories(
    cursor: psycopg.Cursor[TupleRow], *, dag_id: str, run_id: str, repositories: list[str]
) -> set[str]:
    """Those of ``repositories`` that an earlier try of the run already synced (or skipped)."""
    cursor.execute(
        "SELECT repository FROM sync_repository_runs WHERE dag_id = %s AND run_id = %s "
        "AND repository = ANY(%s) AND state = ANY(%s)",
        (dag_id, run_id, repositories, list(SETTLED_REPOSITORY_STATES)),
    )
    return {str(repository) for (repository,) in cursor.fetchall()}


# Request counters a run-level task (listing, change detection) adds to its run's details.
RUN_COUNTERS = ("requests", "budget_spent", "not_modified", "retries")


class RequestCounters(Protocol):
    """What a task's GitHub hook counted (``HookStats``); only read here."""

    @property
    def requests_sent(self) -> int: ...
    @property
    def budget_spent(self) -> int: ...
    @property
    def not_modified(self) -> int: ...
    @property
    def retries(self) -> int: ...


def add_run_details(
    cursor: psycopg.Cursor[TupleRow],
    *,
    dag_id: str,
    run_id: str,
    stats: RequestCounters,
    details: Mapping[str, Any] | None = None,
    repositories_total: int | None = None,
) -> None:
    """Merge ``details`` into a run's and add a task's hook counters.

    Counters accumulate, so a retried task or a second run-level task adds to them.
    """
    counters = {
        "requests": stats.requests_sent,
        "budget_spent": stats.budget_spent,
        "not_modified": stats.not_modified,
        "retries": stats.retries,
    }
    sums = ", ".join(
        f"'{name}', coalesce((details->>'{name}')::int, 0) + %({name})s" for name in RUN_COUNTERS
    )
    cursor.execute(
        "UPDATE sync_runs SET repositories_total = coalesce(%(total)s, repositories_total), "
        f"details = details || %(details)s::jsonb || jsonb_build_object({sums}) "
        "WHERE dag_id = %(dag_id)s AND run_id = %(run_id)s",
        {
            **counters,
            "total": repositories_total,
            "details": json.dumps(dict(details or {}), default=str),
            "dag_id": dag_id,
            "run_id": run_id,
        },
    )


STAGE_DONE = "done"
STAGE_FAILED = "failed"


def record_stage(
    cursor: psycopg.Cursor[TupleRow], *, dag_id: str, run_id: str, mode: str, stage: str, error: str | None
) -> None:
    """Record how a run-level task ended in ``sync_runs.details.stages`` (the latest try wins).

    Creates the run's row when the task failed before opening it (bad Params, say), so the
    cause still reaches ``import_logs``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown sync mode {mode!r}; expected one of {MODES}")
    entry = {"state": STAGE_DONE} if error is None else {"state": STAGE_FAILED, "error": error}
    cursor.execute(
        "INSERT INTO sync_runs (dag_id, run_id, mode, details) "
        "VALUES (%(dag_id)s, %(run_id)s, %(mode)s, jsonb_build_object('stages', jsonb_build_object(%(stage)s::text, %(entry)s::jsonb))) "
        "ON CONFLICT (dag_id, run_id) DO UPDATE SET details = sync_runs.details || jsonb_build_object('stages', "
        "coalesce(sync_runs.details -> 'stages', '{}'::jsonb) || jsonb_build_object(%(stage)s::text, %(entry)s::jsonb))",
        {"dag_id": dag_id, "run_id": run_id, "mode": mode, "stage": stage, "entry": json.dumps(entry)},
    )


def stage_errors(details: Mapping[str, Any] | None) -> dict[str, str]:
    """The run-level tasks whose last try failed, with their causes."""
    stages = (details or {}).get("stages") or {}
    return {
        stage: str(entry.get("error") or "failed")
        for stage, entry in stages.items()
        if isinstance(entry, Mapping) and entry.get("state") == STAGE_FAILED
    }


def stage_done(details: Mapping[str, Any] | None, stage: str) -> bool:
    entry = ((details or {}).get("stages") or {}).get(stage)
    return isinstance(entry, Mapping) and entry.get("state") == STAGE_DONE


def read_run_details(
    cursor: psycopg.Cursor[TupleRow], *, dag_id: str, run_id: str
) -> tuple[dict[str, Any], int] | None:
    """A run's ``(details, repositories_total)``, or None when no task recorded it yet."""
    cursor.execute(
        "SELECT details, repositories_total FROM sync_runs WHERE dag_id = %s AND run_id = %s",
        (dag_id, run_id),
    )
    row = cursor.fetchone()
    return (dict(row[0] or {}), int(row[1] or 0)) if row else None


def close_run(
    cursor: psycopg.Cursor[TupleRow], *, dag_id: str, run_id: str, state: str, details: Mapping[str, Any]
) -> None:
    """Close a run's ``sync_runs`` row with its final state and run-level details."""
    cursor.execute(
        "UPDATE sync_runs SET state = %s, finished_at = now(), details = details || %s::jsonb "
        "WHERE dag_id = %s AND run_id = %s",
        (state, json.dumps(details, default=str), dag_id, run_id),
    )


@dataclass(frozen=True)
class RunSummary:
    """Aggregated outcome of one run, read back from ``sync_repository_runs``."""

    total: int
    succeeded: int
    failed: int
    skipped: int
    records_imported: int
    records_failed: int
    requests: int
    budget_spent: int
    not_modified: int
    retries: int
    rate_limit_remaining: int | None
    failures: tuple[tuple[str, str], ...]  # (repository, error)
    skips: tuple[tuple[str, str], ...]  # (repository, reason)


def summarize_run(cursor: psycopg.Cursor[TupleRow], *, dag_id: str, run_id: str) -> RunSummary:
    """Aggregate the repository outcomes of a run."""
    cursor.execute(
        "SELECT repository, state, records, requests, budget_spent, not_modified, retries, "
        "rate_limit_remaining, coalesce(error, ''), finished_at "
        "FROM sync_repository_runs WHERE dag_id = %s AND run_id = %s ORDER BY repository",
        (dag_id, run_id),
    )
    rows = cursor.fetchall()
    failures = tuple((r[0], r[8]) for r in rows if r[1] in ("failed", "running", "deferred"))
    skips = tuple((r[0], r[8]) for r in rows if r[1] == "skipped")
    finished = [r for r in rows if r[9] is not None and r[7] is not None]
    last_remaining = max(finished, key=lambda r: r[9])[7] if finished else None
    return RunSummary(
        total=len(rows),
        succeeded=sum(1 for r in rows if r[1] == "success"),
        failed=len(failures),
        skipped=len(skips),
        records_imported=sum(r[2] for r in rows if r[1] == "success"),
        records_failed=sum(r[2] for r in rows if r[1] != "success"),
        requests=sum(r[3] for r in rows),
        budget_spent=sum(r[4] for r in rows),
        not_modified=sum(r[5] for r in rows),
        retries=sum(r[6] for r in rows),
        rate_limit_remaining=last_remaining,
        failures=failures,
        skips=skips,
    )


@dataclass(frozen=True)
class Verdict:
    """Why a run failed (``problems``; empty: it succeeded), and which causes no other record explains."""

    problems: tuple[str, ...]
    unexplained: tuple[str, ...]


def failure_verdict(
    details: Mapping[str, Any], summary: RunSummary, *, expected: int, tolerance: int, targets_stage: str
) -> Verdict:
    """The failure rule of a sync run.

    A run fails when:

    * its targets stage (listing, change detection, resolving the repository) did not
      finish: nothing is fresh, whatever happened after;
    * repositories it meant to sync never recorded an outcome (their tasks never ran);
    * more repositories failed than ``tolerance``;
    * repositories were expected and none could be synced (failures, none succeeded),
      whatever the tolerance.

    Repositories skipped on purpose (gone, empty, blocked) never fail it.
    """
    problems: list[str] = []
    unexplained: list[str] = []
    stages = details.get("stages") or {}
    if targets_stage not in stages or not stage_done(details, targets_stage):
        problems.append("the repositories to sync could not be determined, so nothing was synced")
        if targets_stage not in stages:
            unexplained.append(f"{targets_stage} left no record (its task never ran or was killed)")
        return Verdict(tuple(problems), tuple(unexplained))
    never_ran = max(0, expected - summary.total)
    if never_ran:
        text = f"{never_ran} of {expected} repositories never ran"
        problems.append(text)
        unexplained.append(text)
    failed = summary.failed + never_ran
    if failed > tolerance:
        problems.append(f"{failed} repositories failed (tolerance {tolerance})")
    elif failed and not summary.succeeded:
        problems.append(f"none of the {expected or summary.total} repositories could be synced")
    return Verdict(tuple(problems), tuple(unexplained))
