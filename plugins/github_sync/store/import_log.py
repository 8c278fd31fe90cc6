"""The ``import_logs`` row of a sync run: its typed ``metadata`` record, its writer and its readers' keys.

Owns:

* :class:`ImportLogMetadata`, the one definition of ``import_logs.metadata``: what the
  writer stores and what every reader may expect. The figures the writer computes are
  fields; the run's own details (``sync_runs.details``: stages, run errors, the listing,
  the webhook summary...) ride along as extra keys, as they always did;
* :func:`write_import_log`, the writer (called by the DAG-level callbacks), which builds
  that record from ``sync_runs`` / ``sync_repository_runs``;
* :meth:`ImportLogMetadata.from_stored`, how a stored row is read back: rows of any
  earlier version are accepted (missing keys are ``None`` or empty, unknown keys kept, a
  value of the wrong type dropped with a warning), so an old database never breaks a reader;
* :func:`metadata_sql`, how SQL readers name a key: only keys the record defines.

Must not: import Airflow or anything of the orchestration layer (the callbacks call in,
never the other way), or change the stored JSON (jsonb values equal to what the writer
produced before the record existed: same keys, same values).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, ValidationError, WithJsonSchema

from github_sync.store.run_records import RUN_COUNTERS, STALE_OPEN_RUN_HOURS, stage_errors, summarize_run

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

log = logging.getLogger(__name__)

# import_logs.source of every row this package writes.
SOURCE = "github"
METADATA_COLUMN = "metadata"
# What a run without a sync_runs row reads as (its first task never ran).
NO_RUN_ROW: tuple[Any, ...] = (None, None, None, None, {}, 0)


def _isoformat(value: datetime) -> str:
    return value.isoformat()


# A timestamp stored (and served) as Python's ``isoformat()`` text, ``+00:00`` and all:
# pydantic's own JSON form would write ``Z`` and change every stored and served value.
IsoDateTime = Annotated[
    datetime,
    PlainSerializer(_isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class RepositoryCounts(BaseModel):
    """How many repositories a run meant to sync and how they ended."""

    total: int = 0
    """Repositories the run meant to sync (never fewer than those with an outcome)."""
    ok: int = 0
    failed: int = 0
    """Failed, or never finished (still running or deferred when the run ended)."""
    skipped: int = 0
    mapped: int = 0
    """Repositories with a recorded outcome (their tasks ran)."""


class ImportLogMetadata(BaseModel):
    """``import_logs.metadata`` of one sync run.

    Every field is optional for reading: a row without it (older, or written by hand)
    reads as ``None`` / empty. The writer always sets all of them except ``owners``, which
    is the run's own detail and present only when the run recorded it.
    """

    # Extra keys are the run's details, copied as recorded; they are not the record's to type.
    model_config = ConfigDict(extra="allow")

    dag_id: str | None = None
    run_id: str | None = None
    mode: str | None = None
    owner: str | None = None
    """The run's owners as ``sync_runs.owner`` has them: one login, or several joined with ``", "``."""
    state: str | None = None
    """``success`` or ``failed``."""
    repositories: RepositoryCounts | None = None
    failed_repositories: list[str] = []
    skipped_repositories: dict[str, str] = {}
    """Skipped repository -> why (gone, empty, blocked...)."""
    requests: int | None = None
    budget_spent: int | None = None
    not_modified: int | None = None
    retries: int | None = None
    rate_limit_remaining: int | None = None
    """GitHub's last known remaining budget (0 is a figure, not unknown)."""
    started_at: IsoDateTime | None = None
    finished_at: IsoDateTime | None = None
    duration_s: float | None = None
    missing_logs: list[str] = []
    """``dag_id/run_id`` of earlier runs whose own row could not be written."""
    owners: list[str] | None = None
    """The logins the run synced (``sync_runs.details.owners``); absent on rows of before that list."""

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> ImportLogMetadata:
        """Read a stored ``metadata`` value, whatever version of the writer produced it.

        A key whose value does not fit its field is dropped (and logged) rather than
        failing the reader: one odd row must not take the status page down.
        """
        data = dict(stored or {})
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            unfit = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
            log.warning(
                "import_logs metadata of %s/%s: ignoring unreadable keys %s",
                data.get("dag_id"),
                data.get("run_id"),
                unfit,
            )
            return cls.model_validate({key: value for key, value in data.items() if key not in unfit})

    @property
    def run_details(self) -> dict[str, Any]:
        """The run's own details stored alongside (everything that is not a field)."""
        return dict(self.model_extra or {})

    def to_stored(self) -> dict[str, Any]:
        """The JSON-ready value to store: the keys that were set, and the run's details."""
        return self.model_dump(exclude_unset=True)


def metadata_sql(key: str, *, as_text: bool = True) -> str:
    """SQL reading one key of ``import_logs.metadata``: ``->>`` (text) or ``->`` (jsonb).

    Raises:
        KeyError: ``key`` is not a field of :class:`ImportLogMetadata`. A misspelt key
            would otherwise read as NULL, silently; this way it fails where it is written.
    """
    if key not in ImportLogMetadata.model_fields:
        raise KeyError(f"import_logs.metadata has no field {key!r}")
    operator = "->>" if as_text else "->"
    return f"({METADATA_COLUMN} {operator} '{key}')"


def write_import_log(
    cursor: psycopg.Cursor[TupleRow],
    *,
    dag_id: str,
    run_id: str,
    state: str,
    now: datetime,
    extra_errors: Sequence[str] = (),
    reason: str | None = None,
) -> int | None:
    """Write the ``import_logs`` row of a finished run; return its id (None if it already exists).

    Idempotent: a callback that fires twice for the same run writes one row. Also marks
    the run logged, and reports (and marks) the earlier runs whose row was never written.

    Args:
        reason: Airflow's reason for a failed run, recorded when no repository explains it.
    """
    cursor.execute(
        "SELECT mode, owner, started_at, finished_at, details, repositories_total FROM sync_runs "
        "WHERE dag_id = %s AND run_id = %s",
        (dag_id, run_id),
    )
    run = cursor.fetchone()
    mode, owner, started_at, finished_at, stored_details, repositories_total = run or NO_RUN_ROW
    details: dict[str, Any] = dict(stored_details or {})
    summary = summarize_run(cursor, dag_id=dag_id, run_id=run_id)
    cursor.execute(
        "SELECT dag_id, run_id FROM sync_runs WHERE NOT logged AND NOT (dag_id = %s AND run_id = %s) "
        "AND (finished_at IS NOT NULL OR started_at < %s - make_interval(hours => %s)) ORDER BY started_at",
        (dag_id, run_id, now, STALE_OPEN_RUN_HOURS),
    )
    missing = cursor.fetchall()
    missing_logs = [f"{r[0]}/{r[1]}" for r in missing]
    errors = [f"{stage} | {error} | {now.isoformat()}" for stage, error in stage_errors(details).items()]
    errors.extend(f"run | {error} | {now.isoformat()}" for error in details.get("run_errors") or [])
    errors.extend(f"{repo} | {error} | {now.isoformat()}" for repo, error in summary.failures)
    errors.extend(extra_errors)
    if state == "failed" and not errors:
        # The run failed before or outside any repository (bad Params, listing failed...).
        errors.append(f"run | {reason or 'failed'} | {now.isoformat()}")
    # The run-level tasks' counters join the repositories' sums; the rest of the details
    # is stored as recorded, after (and so over) the computed keys, as it always was.
    run_counters = {name: int(details.pop(name, 0)) for name in RUN_COUNTERS}
    run_rate_limit_remaining = details.pop("rate_limit_remaining", None)
    end = finished_at or now
    computed: dict[str, Any] = {
        "dag_id": dag_id,
        "run_id": run_id,
        "mode": mode,
        "owner": owner,
        "state": state,
        "repositories": RepositoryCounts(
            total=max(repositories_total or 0, summary.total),
            ok=summary.succeeded,
            failed=summary.failed,
            skipped=summary.skipped,
            mapped=summary.total,
        ),
        "failed_repositories": [repo for repo, _ in summary.failures],
        "skipped_repositories": dict(summary.skips),
        "requests": summary.requests + run_counters["requests"],
        "budget_spent": summary.budget_spent + run_counters["budget_spent"],
        "not_modified": summary.not_modified + run_counters["not_modified"],
        "retries": summary.retries + run_counters["retries"],
        "rate_limit_remaining": _first_known(run_rate_limit_remaining, summary.rate_limit_remaining),
        "started_at": started_at,
        "finished_at": end,
        "duration_s": round((end - started_at).total_seconds(), 3) if started_at else None,
        "missing_logs": missing_logs,
    }
    metadata = ImportLogMetadata.model_validate({**computed, **details})
    records_imported = summary.records_imported + int(details.get("records_imported_outside_repositories", 0))
    cursor.execute(
        'INSERT INTO import_logs (source, records_imported, records_failed, errors, metadata, "timestamp") '
        "VALUES (%s, %s, %s, %s, %s::jsonb, %s) "
        f"ON CONFLICT ({metadata_sql('dag_id')}, {metadata_sql('run_id')}) WHERE metadata ? 'run_id' DO NOTHING "
        "RETURNING id",
        (
            SOURCE,
            records_imported,
            summary.records_failed,
            errors,
            json.dumps(metadata.to_stored(), default=str),
            now,
        ),
    )
    inserted = cursor.fetchone()
    cursor.execute(
        "UPDATE sync_runs SET logged = true, state = CASE WHEN state = 'running' THEN %s ELSE state END, "
        "finished_at = COALESCE(finished_at, %s) WHERE dag_id = %s AND run_id = %s",
        (state, now, dag_id, run_id),
    )
    if missing_logs:
        cursor.executemany(
            "UPDATE sync_runs SET logged = true WHERE dag_id = %s AND run_id = %s",
            [tuple(r) for r in missing],
        )
        log.warning("Runs without an import_logs row (reported in this run's row): %s", missing_logs)
    return int(inserted[0]) if inserted else None


def _first_known(*values: int | None) -> int | None:
    # Not `or`: a remaining budget of 0 is exactly the figure that must not be lost.
    return next((value for value in values if value is not None), None)
