"""The logged runs behind the status API: statistics, the history and one run's detail.

Finished runs are read from ``import_logs`` (one row per run, written by the DAG callback,
its ``metadata`` an :class:`~github_sync.store.import_log.ImportLogMetadata`): the
aggregates in SQL, through :func:`~github_sync.store.import_log.metadata_sql`; single rows
through :meth:`ImportLogMetadata.from_stored`, which reads rows of any writer's version. A
run's detail adds its ``sync_runs`` / ``sync_repository_runs`` rows, so a run still going
(or whose callback could not log) has one too.

With ``owner``, the run-level views keep the runs that included that owner, with the whole
run's figures (:mod:`github_sync.status.run_owners`).

Must not: write (the connection is read-only), or build SQL from a value: filters are
query parameters, and only the record's keys are interpolated.

One piece (just over 300 lines): the three views read the same rows the same way (the
record's SQL keys, the owner filter, the history item a run's detail embeds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from psycopg.rows import dict_row

from github_sync.status.responses import (
    HistoryItem,
    HistoryResponse,
    ModeStatistics,
    RepositoryRun,
    RunDetail,
    RunReference,
    RunStatistics,
    StatisticsResponse,
    grid_path,
    optional_grid_path,
    rounded,
)
from github_sync.status.run_owners import LOG_OWNERS, add_owner_param, recorded_owners
from github_sync.store.import_log import SOURCE, ImportLogMetadata, metadata_sql
from github_sync.store.run_records import MODES

if TYPE_CHECKING:
    import psycopg

# Ratios (success rate, share of 304s) are served to 4 digits.
RATIO_DIGITS = 4
P95 = 0.95

DAG_ID = metadata_sql("dag_id")
RUN_ID = metadata_sql("run_id")
MODE = metadata_sql("mode")
STATE = metadata_sql("state")
DURATION_S = f"{metadata_sql('duration_s')}::float8"
SUCCEEDED = f"coalesce({STATE} = 'success', false)"


def _ratio(part: float | None, whole: float | None) -> float | None:
    if not whole:
        return None
    return round(float(part or 0) / float(whole), RATIO_DIGITS)


def _aggregate_sql(*, per_mode: bool, owner_filter: str) -> str:
    group, group_by = (MODE, "GROUP BY 1") if per_mode else ("NULL::text", "")
    return f"""
        SELECT {group} AS mode,
            count(*) AS runs,
            count(*) FILTER (WHERE {STATE} = 'success') AS succeeded,
            count(*) FILTER (WHERE {STATE} = 'failed') AS failed,
            avg({DURATION_S}) AS avg_duration_s,
            percentile_cont({P95}) WITHIN GROUP (ORDER BY {DURATION_S}) AS p95_duration_s,
            coalesce(sum(records_imported), 0) AS records_imported,
            coalesce(sum(records_failed), 0) AS records_failed,
            coalesce(sum({metadata_sql("requests")}::bigint), 0) AS requests,
            coalesce(sum({metadata_sql("budget_spent")}::bigint), 0) AS budget_spent,
            coalesce(sum({metadata_sql("not_modified")}::bigint), 0) AS not_modified
        FROM import_logs
        WHERE source = %(source)s AND "timestamp" >= now() - make_interval(days => %(days)s) {owner_filter}
        {group_by}
    """


def _figures(row: Mapping[str, Any] | None) -> dict[str, Any]:
    """The :class:`RunStatistics` fields of an aggregate row (``None``: no runs)."""
    row = row or {}
    runs = int(row.get("runs") or 0)
    return {
        "runs": runs,
        "succeeded": int(row.get("succeeded") or 0),
        "failed": int(row.get("failed") or 0),
        "success_rate": _ratio(row.get("succeeded"), runs),
        "avg_duration_s": rounded(row.get("avg_duration_s")),
        "p95_duration_s": rounded(row.get("p95_duration_s")),
        "records_imported": int(row.get("records_imported") or 0),
        "records_failed": int(row.get("records_failed") or 0),
        "requests": int(row.get("requests") or 0),
        "budget_spent": int(row.get("budget_spent") or 0),
        "not_modified": int(row.get("not_modified") or 0),
        "not_modified_share": _ratio(row.get("not_modified"), row.get("requests")),
    }


def _run_reference(row: Mapping[str, Any] | None) -> RunReference | None:
    if row is None:
        return None
    return RunReference(
        dag_id=row["dag_id"],
        run_id=row["run_id"],
        state=row["state"],
        timestamp=row["timestamp"],
        records_imported=row["records_imported"],
        duration_s=rounded(row["duration_s"]),
        grid_path=optional_grid_path(row["dag_id"], row["run_id"]),
    )


def statistics(conn: psycopg.Connection[Any], *, days: int, owner: str | None = None) -> StatisticsResponse:
    """Per-mode and overall statistics of the runs logged in the last ``days`` days.

    With ``owner``, only the runs that included that owner count (with their whole figures).
    A mode's last sync and last success are not limited to the window: "the last full sync
    succeeded 40 days ago" is exactly what the page must show.
    """
    params: dict[str, Any] = {"source": SOURCE, "days": days}
    owner_filter = f"AND %(owner)s = ANY({LOG_OWNERS})" if add_owner_param(owner, params) else ""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_aggregate_sql(per_mode=True, owner_filter=owner_filter), params)
        per_mode = {row["mode"]: row for row in cur.fetchall()}
        cur.execute(_aggregate_sql(per_mode=False, owner_filter=owner_filter), params)
        overall = cur.fetchone()
        cur.execute(
            f"""
            SELECT DISTINCT ON ({MODE}, {SUCCEEDED})
                {MODE} AS mode, {SUCCEEDED} AS ok, {DAG_ID} AS dag_id, {RUN_ID} AS run_id, {STATE} AS state,
                "timestamp", records_imported, {DURATION_S} AS duration_s
            FROM import_logs WHERE source = %(source)s {owner_filter}
            ORDER BY {MODE}, {SUCCEEDED}, "timestamp" DESC, id DESC
            """,
            params,
        )
        latest = {(row["mode"], row["ok"]): row for row in cur.fetchall()}
        cur.execute("SELECT now() AS now")
        clock = cur.fetchone()
    assert clock is not None  # SELECT now() always returns its one row
    modes: dict[str, ModeStatistics] = {}
    for mode in (*MODES, *sorted(m for m in per_mode if m not in MODES and m is not None)):
        success = latest.get((mode, True))
        failure = latest.get((mode, False))
        last = max((r for r in (success, failure) if r), key=lambda r: r["timestamp"], default=None)
        modes[mode] = ModeStatistics(
            **_figures(per_mode.get(mode)),
            last_sync=_run_reference(last),
            last_success=_run_reference(success),
        )
    return StatisticsResponse(
        window_days=days,
        owner=owner,
        generated_at=clock["now"],
        overall=RunStatistics(**_figures(overall)),
        modes=modes,
    )


def _history_item(row: Mapping[str, Any]) -> HistoryItem:
    meta = ImportLogMetadata.from_stored(row["metadata"])
    return HistoryItem(
        id=row["id"],
        timestamp=row["timestamp"],
        dag_id=meta.dag_id,
        run_id=meta.run_id,
        mode=meta.mode,
        state=meta.state,
        owner=meta.owner,
        owners=recorded_owners(meta.owners, meta.owner),
        records_imported=row["records_imported"],
        records_failed=row["records_failed"],
        error_count=row["error_count"],
        started_at=meta.started_at,
        finished_at=meta.finished_at,
        duration_s=meta.duration_s,
        requests=meta.requests,
        budget_spent=meta.budget_spent,
        not_modified=meta.not_modified,
        retries=meta.retries,
        rate_limit_remaining=meta.rate_limit_remaining,
        repositories=meta.repositories,
        grid_path=optional_grid_path(meta.dag_id, meta.run_id),
    )


def history(
    conn: psycopg.Connection[Any],
    *,
    limit: int,
    offset: int = 0,
    mode: str | None = None,
    state: str | None = None,
    owner: str | None = None,
) -> HistoryResponse:
    """A page of ``import_logs``, newest first (with ``owner``: the runs that included it)."""
    filters = ["source = %(source)s"]
    params: dict[str, Any] = {"source": SOURCE, "limit": limit, "offset": offset}
    if mode:
        filters.append(f"{MODE} = %(mode)s")
        params["mode"] = mode
    if state:
        filters.append(f"{STATE} = %(state)s")
        params["state"] = state
    if add_owner_param(owner, params):
        filters.append(f"%(owner)s = ANY({LOG_OWNERS})")
    where = " AND ".join(filters)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT count(*) AS n FROM import_logs WHERE {where}", params)
        counted = cur.fetchone()
        cur.execute(
            f"""
            SELECT id, "timestamp", records_imported, records_failed, cardinality(errors) AS error_count,
                metadata
            FROM import_logs WHERE {where}
            ORDER BY "timestamp" DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
            """,
            params,
        )
        items = [_history_item(row) for row in cur.fetchall()]
    assert counted is not None  # count(*) always returns its one row
    return HistoryResponse(total=counted["n"], limit=limit, offset=offset, items=items)


def run_detail(conn: psycopg.Connection[Any], dag_id: str, run_id: str) -> RunDetail | None:
    """One run: its ``sync_runs`` row, its ``import_logs`` row and every repository's outcome.

    Returns:
        ``None`` when neither table knows the run. The run's own row wins over its log
        for the run-level fields; a run only logged (its ``sync_runs`` row gone) is
        described from the log.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT mode, owner, state, repositories_total, details, started_at, finished_at "
            "FROM sync_runs WHERE dag_id = %s AND run_id = %s",
            (dag_id, run_id),
        )
        run = cur.fetchone()
        cur.execute(
            'SELECT id, "timestamp", records_imported, records_failed, cardinality(errors) AS error_count, '
            f"errors, metadata FROM import_logs WHERE {DAG_ID} = %s AND {RUN_ID} = %s",
            (dag_id, run_id),
        )
        log_row = cur.fetchone()
        cur.execute(
            """
            SELECT repository, project_id, state, try_number, records, requests, budget_spent, not_modified,
                retries, rate_limit_remaining, error, started_at, finished_at,
                extract(epoch FROM finished_at - started_at)::float8 AS duration_s
            FROM sync_repository_runs WHERE dag_id = %s AND run_id = %s
            ORDER BY (state = 'failed') DESC, repository
            """,
            (dag_id, run_id),
        )
        repository_rows = cur.fetchall()
    if run is None and log_row is None:
        return None
    repositories = [
        RepositoryRun.model_validate({**row, "duration_s": rounded(row["duration_s"])})
        for row in repository_rows
    ]
    counts: dict[str, int] = {}
    for repository in repositories:
        counts[repository.state] = counts.get(repository.state, 0) + 1
    errors = list(log_row["errors"]) if log_row else []
    if not errors:
        # A run still going (or whose callback could not log) has no import_logs errors yet.
        errors = [f"{r.repository} | {r.error}" for r in repositories if r.state == "failed" and r.error]
    meta = ImportLogMetadata.from_stored(log_row["metadata"] if log_row else None)
    if run is not None:
        started_at, finished_at = run["started_at"], run["finished_at"]
        mode, owner, state, details = run["mode"], run["owner"], run["state"], run["details"]
        owners = recorded_owners((details or {}).get("owners"), owner)
        duration_s = (
            rounded((finished_at - started_at).total_seconds())
            if started_at and finished_at
            else meta.duration_s
        )
        repositories_total = run["repositories_total"]
    else:
        started_at, finished_at = meta.started_at, meta.finished_at
        mode, owner, state, details = meta.mode, meta.owner, meta.state, {}
        owners = recorded_owners(meta.owners, meta.owner)
        duration_s = meta.duration_s
        repositories_total = meta.repositories.total if meta.repositories else None
    return RunDetail(
        dag_id=dag_id,
        run_id=run_id,
        mode=mode,
        owner=owner,
        owners=owners,
        state=state,
        started_at=started_at,
        finished_at=finished_at,
        duration_s=duration_s,
        repositories_total=repositories_total,
        details=details,
        log=_history_item(log_row) if log_row else None,
        errors=errors,
        counts=counts,
        repositories=repositories,
        grid_path=grid_path(dag_id, run_id),
    )
