"""Read-only SQL behind the status API: statistics, history, run detail, budget and progress.

Every function takes an open psycopg connection (autocommit, read-only) and returns
JSON-ready dicts. Finished runs are read from ``import_logs`` (one row per run, written
by the DAG callback); running runs from ``sync_runs`` and ``sync_repository_runs``, which
the tasks update while they work.

Owners: a run may sync several GitHub owners. Its owners are the JSON array
``sync_runs.details -> 'owners'`` (copied to ``import_logs.metadata -> 'owners'``); rows
written before that list existed only have the text ``owner`` (one login, or several
joined with ``", "``). The ``owner`` filters compare logins case-insensitively: run-level
views (statistics, history, progress) keep the runs that included the owner, with the
whole run's figures; repository-level views keep that owner's repositories.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from psycopg.rows import dict_row

from github_sync.github.owners import is_github_login
from github_sync.status.progress import estimate_progress
from github_sync.store.run_records import MODES, SOURCE, STALE_OPEN_RUN_HOURS

log = logging.getLogger(__name__)

DEFAULT_STATS_DAYS = 30
DEFAULT_HISTORY_LIMIT = 25
MAX_HISTORY_LIMIT = 500
DEFAULT_REPOSITORY_LIMIT = 10
# Shown in a progress payload: enough to see what is being worked on, bounded for big orgs.
MAX_CURRENT_REPOSITORIES = 10
# GitHub's primary rate limit is a rolling hour: "budget spent in the last hour" is what
# the remaining budget is measured against.
BUDGET_WINDOW_HOURS = 1
FINAL_REPOSITORY_STATES = ("success", "failed", "skipped")

RunKey = tuple[str, str]


def _owners_sql(array: str, text: str, *, lower: bool = True) -> str:
    """SQL for a run's owners as ``text[]``: the JSON ``array`` when set, else ``text`` split on commas."""
    item = "lower({})" if lower else "{}"
    return (
        f"(CASE WHEN jsonb_typeof({array}) = 'array' AND {array} <> '[]'::jsonb "
        f"THEN ARRAY(SELECT {item.format('btrim(login)')} FROM jsonb_array_elements_text({array}) AS login) "
        f"ELSE ARRAY(SELECT {item.format('btrim(login)')} FROM unnest(string_to_array({text}, ',')) AS login) "
        "END)"
    )


# The lower-case owners of an import_logs row and of a sync_runs row (alias r).
LOG_OWNERS = _owners_sql("metadata -> 'owners'", "metadata ->> 'owner'")
RUN_OWNERS = _owners_sql("r.details -> 'owners'", "r.owner")
# A sync_repository_runs row's repository is ``owner/name``.
REPOSITORY_OWNER = "lower(split_part(repository, '/', 1))"


def _owner_param(owner: str | None, params: dict[str, Any]) -> bool:
    """Put the (validated) owner filter into ``params``; tell whether there is one."""
    if owner is None:
        return False
    params["owner"] = owner.lower()
    return True


def _meta_owners(meta: Mapping[str, Any], owner: str | None) -> list[str]:
    """The owners of a run as recorded (the list, else the joined text split)."""
    owners = meta.get("owners")
    if isinstance(owners, list) and owners:
        return [str(o) for o in owners]
    return [part.strip() for part in (owner or "").split(",") if part.strip()]


def grid_path(dag_id: str, run_id: str) -> str:
    """The Airflow UI path of a DAG run (relative to Airflow's base URL)."""
    return f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _ratio(part: float | None, whole: float | None) -> float | None:
    if not whole:
        return None
    return round(float(part or 0) / float(whole), 4)


def _round(value: float | None, digits: int = 3) -> float | None:
    return round(float(value), digits) if value is not None else None


def statistics(conn: Any, *, days: int = DEFAULT_STATS_DAYS, owner: str | None = None) -> dict[str, Any]:
    """Per-mode and overall statistics of the runs logged in the last ``days`` days.

    With ``owner``, only the runs that included that owner count (with their whole figures).

    Returns:
        ``{"window_days", "generated_at", "overall": {...}, "modes": {mode: {...}}}``; each
        block has runs, succeeded, failed, success_rate, avg_duration_s, p95_duration_s,
        records_imported, records_failed, requests, budget_spent, not_modified,
        not_modified_share, last_sync and last_success (``{dag_id, run_id, timestamp,
        state, records_imported, duration_s, grid_path}`` or ``None``).
    """
    aggregate = """
        SELECT {group} AS mode,
            count(*) AS runs,
            count(*) FILTER (WHERE metadata ->> 'state' = 'success') AS succeeded,
            count(*) FILTER (WHERE metadata ->> 'state' = 'failed') AS failed,
            avg((metadata ->> 'duration_s')::float8) AS avg_duration_s,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY (metadata ->> 'duration_s')::float8)
                AS p95_duration_s,
            coalesce(sum(records_imported), 0) AS records_imported,
            coalesce(sum(records_failed), 0) AS records_failed,
            coalesce(sum((metadata ->> 'requests')::bigint), 0) AS requests,
            coalesce(sum((metadata ->> 'budget_spent')::bigint), 0) AS budget_spent,
            coalesce(sum((metadata ->> 'not_modified')::bigint), 0) AS not_modified
        FROM import_logs
        WHERE source = %(source)s AND "timestamp" >= now() - make_interval(days => %(days)s) {owner_filter}
        {group_by}
    """
    params: dict[str, Any] = {"source": SOURCE, "days": days}
    owner_filter = f"AND %(owner)s = ANY({LOG_OWNERS})" if _owner_param(owner, params) else ""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            aggregate.format(group="metadata ->> 'mode'", group_by="GROUP BY 1", owner_filter=owner_filter),
            params,
        )
        per_mode = {row["mode"]: row for row in cur.fetchall()}
        cur.execute(aggregate.format(group="NULL::text", group_by="", owner_filter=owner_filter), params)
        overall = cur.fetchone()
        # Last sync and last success per mode are not limited to the window: "the last
        # full sync succeeded 40 days ago" is exactly what the page must show.
        cur.execute(
            f"""
            SELECT DISTINCT ON (metadata ->> 'mode', coalesce(metadata ->> 'state' = 'success', false))
                metadata ->> 'mode' AS mode, coalesce(metadata ->> 'state' = 'success', false) AS ok,
                metadata ->> 'dag_id' AS dag_id, metadata ->> 'run_id' AS run_id,
                metadata ->> 'state' AS state,
                "timestamp", records_imported, (metadata ->> 'duration_s')::float8 AS duration_s
            FROM import_logs WHERE source = %(source)s {owner_filter}
            ORDER BY metadata ->> 'mode', coalesce(metadata ->> 'state' = 'success', false),
                "timestamp" DESC, id DESC
            """,
            params,
        )
        latest: dict[tuple[str, bool], dict[str, Any]] = {(r["mode"], r["ok"]): r for r in cur.fetchall()}
        cur.execute("SELECT now() AS now")
        now = cur.fetchone()["now"]

    def run_ref(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        return {
            "dag_id": row["dag_id"],
            "run_id": row["run_id"],
            "state": row["state"],
            "timestamp": _iso(row["timestamp"]),
            "records_imported": row["records_imported"],
            "duration_s": _round(row["duration_s"]),
            "grid_path": grid_path(row["dag_id"], row["run_id"]) if row["dag_id"] and row["run_id"] else None,
        }

    def block(row: Mapping[str, Any] | None) -> dict[str, Any]:
        row = row or {}
        runs = int(row.get("runs") or 0)
        return {
            "runs": runs,
            "succeeded": int(row.get("succeeded") or 0),
            "failed": int(row.get("failed") or 0),
            "success_rate": _ratio(row.get("succeeded"), runs),
            "avg_duration_s": _round(row.get("avg_duration_s")),
            "p95_duration_s": _round(row.get("p95_duration_s")),
            "records_imported": int(row.get("records_imported") or 0),
            "records_failed": int(row.get("records_failed") or 0),
            "requests": int(row.get("requests") or 0),
            "budget_spent": int(row.get("budget_spent") or 0),
            "not_modified": int(row.get("not_modified") or 0),
            "not_modified_share": _ratio(row.get("not_modified"), row.get("requests")),
        }

    modes: dict[str, Any] = {}
    for mode in (*MODES, *sorted(m for m in per_mode if m not in MODES and m is not None)):
        success = latest.get((mode, True))
        failure = latest.get((mode, False))
        last = max((r for r in (success, failure) if r), key=lambda r: r["timestamp"], default=None)
        modes[mode] = {
            **block(per_mode.get(mode)),
            "last_sync": run_ref(last),
            "last_success": run_ref(success),
        }
    return {
        "window_days": days,
        "owner": owner,
        "generated_at": _iso(now),
        "overall": block(overall),
        "modes": modes,
    }


def _history_item(row: Mapping[str, Any]) -> dict[str, Any]:
    meta: Mapping[str, Any] = row["metadata"] or {}
    dag_id, run_id = meta.get("dag_id"), meta.get("run_id")
    return {
        "id": row["id"],
        "timestamp": _iso(row["timestamp"]),
        "dag_id": dag_id,
        "run_id": run_id,
        "mode": meta.get("mode"),
        "state": meta.get("state"),
        "owner": meta.get("owner"),
        "owners": _meta_owners(meta, meta.get("owner")),
        "records_imported": row["records_imported"],
        "records_failed": row["records_failed"],
        "error_count": row["error_count"],
        "started_at": meta.get("started_at"),
        "finished_at": meta.get("finished_at"),
        "duration_s": meta.get("duration_s"),
        "requests": meta.get("requests"),
        "budget_spent": meta.get("budget_spent"),
        "not_modified": meta.get("not_modified"),
        "retries": meta.get("retries"),
        "rate_limit_remaining": meta.get("rate_limit_remaining"),
        "repositories": meta.get("repositories") or {},
        "grid_path": grid_path(dag_id, run_id) if dag_id and run_id else None,
    }


def history(
    conn: Any,
    *,
    limit: int = DEFAULT_HISTORY_LIMIT,
    offset: int = 0,
    mode: str | None = None,
    state: str | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    """A page of ``import_logs``, newest first (with ``owner``: the runs that included it).

    Returns:
        ``{"total", "limit", "offset", "items": [...]}``; an item has id, timestamp, dag_id,
        run_id, mode, state, owner (as recorded), owners (list), records_imported, records_failed, error_count,
        started_at, finished_at, duration_s, requests, budget_spent, not_modified, retries,
        rate_limit_remaining, repositories ``{total, ok, failed, skipped, mapped}`` and grid_path.
    """
    filters = ["source = %(source)s"]
    params: dict[str, Any] = {"source": SOURCE, "limit": limit, "offset": offset}
    if mode:
        filters.append("metadata ->> 'mode' = %(mode)s")
        params["mode"] = mode
    if state:
        filters.append("metadata ->> 'state' = %(state)s")
        params["state"] = state
    if _owner_param(owner, params):
        filters.append(f"%(owner)s = ANY({LOG_OWNERS})")
    where = " AND ".join(filters)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT count(*) AS n FROM import_logs WHERE {where}", params)
        total = cur.fetchone()["n"]
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
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def run_detail(conn: Any, dag_id: str, run_id: str) -> dict[str, Any] | None:
    """One run: its ``sync_runs`` row, its ``import_logs`` row and every repository's outcome.

    Returns:
        ``None`` when neither table knows the run, else ``{"dag_id", "run_id", "mode",
        "owner", "state", "started_at", "finished_at", "duration_s", "repositories_total",
        "details", "log": <history item or None>, "errors": [str], "counts": {state: n},
        "repositories": [{repository, project_id, state, try_number, records, requests,
        budget_spent, not_modified, retries, rate_limit_remaining, error, started_at,
        finished_at, duration_s}], "grid_path"}``.
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
            "errors, metadata FROM import_logs "
            "WHERE metadata ->> 'dag_id' = %s AND metadata ->> 'run_id' = %s",
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
        repositories = cur.fetchall()
    if run is None and log_row is None:
        return None
    log_item = _history_item(log_row) if log_row else None
    meta: Mapping[str, Any] = (log_row or {}).get("metadata") or {}
    counts: dict[str, int] = {}
    for repo in repositories:
        counts[repo["state"]] = counts.get(repo["state"], 0) + 1
        repo["started_at"] = _iso(repo["started_at"])
        repo["finished_at"] = _iso(repo["finished_at"])
        repo["duration_s"] = _round(repo["duration_s"])
    errors = list(log_row["errors"]) if log_row else []
    if not errors:
        # A run still going (or whose callback could not log) has no import_logs errors yet.
        errors = [
            f"{r['repository']} | {r['error']}" for r in repositories if r["state"] == "failed" and r["error"]
        ]
    started_at = run["started_at"] if run else None
    finished_at = run["finished_at"] if run else None
    run_owners = (
        _meta_owners(run["details"] or {}, run["owner"]) if run else _meta_owners(meta, meta.get("owner"))
    )
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "mode": run["mode"] if run else meta.get("mode"),
        "owner": run["owner"] if run else meta.get("owner"),
        "owners": run_owners,
        "state": run["state"] if run else meta.get("state"),
        "started_at": _iso(started_at) if run else meta.get("started_at"),
        "finished_at": _iso(finished_at) if run else meta.get("finished_at"),
        "duration_s": _round((finished_at - started_at).total_seconds())
        if started_at and finished_at
        else meta.get("duration_s"),
        "repositories_total": run["repositories_total"]
        if run
        else (meta.get("repositories") or {}).get("total"),
        "details": run["details"] if run else {},
        "log": log_item,
        "errors": errors,
        "counts": counts,
        "repositories": repositories,
        "grid_path": grid_path(dag_id, run_id),
    }


def rate_limit(conn: Any) -> dict[str, Any]:
    """The latest known remaining GitHub budget and what was spent in the last hour.

    Returns:
        ``{"remaining", "observed_at", "source" ("repository_run" | "import_log" | None),
        "dag_id", "run_id", "repository", "spent_last_hour", "requests_last_hour",
        "window_hours"}``.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            (SELECT 'repository_run' AS source, rate_limit_remaining AS remaining, finished_at AS observed_at,
                dag_id, run_id, repository
             FROM sync_repository_runs
             WHERE rate_limit_remaining IS NOT NULL AND finished_at IS NOT NULL
             ORDER BY finished_at DESC LIMIT 1)
            UNION ALL
            (SELECT 'import_log', (metadata ->> 'rate_limit_remaining')::int, "timestamp",
                metadata ->> 'dag_id', metadata ->> 'run_id', NULL
             FROM import_logs
             WHERE source = %(source)s AND metadata ->> 'rate_limit_remaining' IS NOT NULL
             ORDER BY "timestamp" DESC LIMIT 1)
            ORDER BY observed_at DESC LIMIT 1
            """,
            {"source": SOURCE},
        )
        latest = cur.fetchone() or {}
        cur.execute(
            "SELECT coalesce(sum(budget_spent), 0) AS spent, coalesce(sum(requests), 0) AS requests "
            "FROM sync_repository_runs "
            "WHERE coalesce(finished_at, started_at) >= now() - make_interval(hours => %s)",
            (BUDGET_WINDOW_HOURS,),
        )
        window = cur.fetchone()
    return {
        "remaining": latest.get("remaining"),
        "observed_at": _iso(latest.get("observed_at")),
        "source": latest.get("source"),
        "dag_id": latest.get("dag_id"),
        "run_id": latest.get("run_id"),
        "repository": latest.get("repository"),
        "spent_last_hour": int(window["spent"]),
        "requests_last_hour": int(window["requests"]),
        "window_hours": BUDGET_WINDOW_HOURS,
    }


def repositories(
    conn: Any,
    *,
    days: int = DEFAULT_STATS_DAYS,
    limit: int = DEFAULT_REPOSITORY_LIMIT,
    owner: str | None = None,
) -> dict[str, Any]:
    """The slowest and the most often failing repositories over the last ``days`` days.

    With ``owner``, only that owner's repositories (``owner/name``), whichever runs synced them.

    Returns:
        ``{"window_days", "slowest": [{repository, runs, avg_duration_s, max_duration_s,
        avg_requests}], "failing": [{repository, failures, runs, last_error, last_failed_at,
        dag_id, run_id, grid_path}]}``.
    """
    params: dict[str, Any] = {"days": days, "limit": limit}
    owner_filter = f"AND {REPOSITORY_OWNER} = %(owner)s" if _owner_param(owner, params) else ""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""
            SELECT repository, count(*) AS runs,
                avg(extract(epoch FROM finished_at - started_at))::float8 AS avg_duration_s,
                max(extract(epoch FROM finished_at - started_at))::float8 AS max_duration_s,
                avg(requests)::float8 AS avg_requests
            FROM sync_repository_runs
            WHERE finished_at IS NOT NULL AND state IN ('success', 'failed')
                AND started_at >= now() - make_interval(days => %(days)s) {owner_filter}
            GROUP BY repository ORDER BY avg_duration_s DESC NULLS LAST, repository LIMIT %(limit)s
            """,
            params,
        )
        slowest = cur.fetchall()
        cur.execute(
            f"""
            SELECT repository,
                count(*) FILTER (WHERE state = 'failed') AS failures, count(*) AS runs,
                (array_agg(error ORDER BY started_at DESC) FILTER (WHERE state = 'failed'))[1] AS last_error,
                max(coalesce(finished_at, started_at)) FILTER (WHERE state = 'failed') AS last_failed_at,
                (array_agg(dag_id ORDER BY started_at DESC) FILTER (WHERE state = 'failed'))[1] AS dag_id,
                (array_agg(run_id ORDER BY started_at DESC) FILTER (WHERE state = 'failed'))[1] AS run_id
            FROM sync_repository_runs
            WHERE state <> 'running' AND started_at >= now() - make_interval(days => %(days)s) {owner_filter}
            GROUP BY repository HAVING count(*) FILTER (WHERE state = 'failed') > 0
            ORDER BY failures DESC, last_failed_at DESC, repository LIMIT %(limit)s
            """,
            params,
        )
        failing = cur.fetchall()
    for row in slowest:
        for key in ("avg_duration_s", "max_duration_s", "avg_requests"):
            row[key] = _round(row[key], 2)
    for row in failing:
        row["last_failed_at"] = _iso(row["last_failed_at"])
        row["grid_path"] = grid_path(row["dag_id"], row["run_id"])
    return {"window_days": days, "owner": owner, "slowest": slowest, "failing": failing}


def run_snapshots(
    conn: Any,
    *,
    tracked: Iterable[RunKey] = (),
    finished_since: datetime | None = None,
    owner: str | None = None,
) -> tuple[datetime, dict[RunKey, dict[str, Any]]]:
    """Progress snapshots of the running runs, plus the ``tracked`` runs and recently finished ones.

    The stream diffs successive calls: a tracked run that is no longer running is how it
    learns a run completed, whatever the timing of the poll.

    Args:
        conn: the connection.
        tracked: runs the caller is following (returned whatever their state).
        finished_since: also return runs finished at or after this time (``None``: now).
        owner: only the running and finished runs that included this owner; ``tracked`` runs
            are returned whatever their owners (a followed run never vanishes from a stream).

    Returns:
        The database's current time and ``{(dag_id, run_id): snapshot}``; a snapshot has
        dag_id, run_id, mode, owner, owners, state, started_at, finished_at, total, done,
        running, succeeded, failed, skipped, deferred, records, requests, budget_spent,
        not_modified, current_repositories, failed_repositories, percent, elapsed_s,
        rate_per_min, eta_s and grid_path.
    """
    keys = list(tracked)
    params: dict[str, Any] = {
        "final": list(FINAL_REPOSITORY_STATES),
        "stale_hours": STALE_OPEN_RUN_HOURS,
        "since": finished_since,
        "dag_ids": [k[0] for k in keys],
        "run_ids": [k[1] for k in keys],
    }
    owner_filter = f"AND %(owner)s = ANY({RUN_OWNERS})" if _owner_param(owner, params) else ""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""
            SELECT r.dag_id, r.run_id, r.mode, r.owner, r.details -> 'owners' AS owners, r.state,
                r.repositories_total, r.started_at, r.finished_at, now() AS now,
                count(rr.repository) FILTER (WHERE rr.state = ANY(%(final)s)) AS done,
                count(rr.repository) FILTER (WHERE rr.state = 'running') AS running,
                count(rr.repository) FILTER (WHERE rr.state = 'deferred') AS deferred,
                count(rr.repository) FILTER (WHERE rr.state = 'success') AS succeeded,
                count(rr.repository) FILTER (WHERE rr.state = 'failed') AS failed,
                count(rr.repository) FILTER (WHERE rr.state = 'skipped') AS skipped,
                coalesce(sum(rr.records) FILTER (WHERE rr.state = 'success'), 0) AS records,
                coalesce(sum(rr.requests), 0) AS requests,
                coalesce(sum(rr.budget_spent), 0) AS budget_spent,
                coalesce(sum(rr.not_modified), 0) AS not_modified,
                array_agg(rr.repository ORDER BY rr.started_at DESC) FILTER (WHERE rr.state = 'running')
                    AS current_repositories,
                array_agg(rr.repository ORDER BY rr.repository) FILTER (WHERE rr.state = 'failed')
                    AS failed_repositories,
                array_agg(rr.finished_at)
                    FILTER (WHERE rr.state = ANY(%(final)s) AND rr.finished_at IS NOT NULL) AS completions
            FROM sync_runs r
            LEFT JOIN sync_repository_runs rr ON rr.dag_id = r.dag_id AND rr.run_id = r.run_id
            WHERE (
                    ((r.state = 'running' AND r.started_at >= now() - make_interval(hours => %(stale_hours)s))
                        OR r.finished_at >= coalesce(%(since)s, now()))
                    {owner_filter}
                )
                OR (r.dag_id, r.run_id) IN (SELECT * FROM unnest(%(dag_ids)s::text[], %(run_ids)s::text[]))
            GROUP BY r.dag_id, r.run_id
            ORDER BY r.started_at
            """,
            params,
        )
        rows = cur.fetchall()
        if not rows:
            cur.execute("SELECT now() AS now")
            return cur.fetchone()["now"], {}
    snapshots: dict[RunKey, dict[str, Any]] = {}
    now = rows[0]["now"]
    for row in rows:
        snapshots[(row["dag_id"], row["run_id"])] = _snapshot(row, now)
    return now, snapshots


def _snapshot(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    running = int(row["running"]) + int(row["deferred"])
    end = row["finished_at"] if row["state"] != "running" and row["finished_at"] else now
    estimate = estimate_progress(
        total=int(row["repositories_total"] or 0),
        done=int(row["done"]),
        running=running,
        started_at=row["started_at"],
        now=end,
        completions=row["completions"] or (),
    )
    current: Sequence[str] = row["current_repositories"] or []
    return {
        "dag_id": row["dag_id"],
        "run_id": row["run_id"],
        "mode": row["mode"],
        "owner": row["owner"],
        "owners": _meta_owners({"owners": row["owners"]}, row["owner"]),
        "state": row["state"],
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "succeeded": int(row["succeeded"]),
        "failed": int(row["failed"]),
        "skipped": int(row["skipped"]),
        "deferred": int(row["deferred"]),
        "records": int(row["records"]),
        "requests": int(row["requests"]),
        "budget_spent": int(row["budget_spent"]),
        "not_modified": int(row["not_modified"]),
        "current_repositories": list(current[:MAX_CURRENT_REPOSITORIES]),
        "failed_repositories": list(row["failed_repositories"] or []),
        **estimate.to_dict(),
        "grid_path": grid_path(row["dag_id"], row["run_id"]),
    }


def progress(conn: Any, *, owner: str | None = None) -> dict[str, Any]:
    """The runs in progress (with ``owner``: those that include it).

    Returns:
        ``{"generated_at", "owner", "runs": [snapshot, ...]}`` (see :func:`run_snapshots`),
        oldest first.
    """
    now, snapshots = run_snapshots(conn, finished_since=None, owner=owner)
    running = [s for s in snapshots.values() if s["state"] == "running"]
    return {"generated_at": _iso(now), "owner": owner, "runs": running}


def owners(conn: Any) -> dict[str, Any]:
    """The GitHub owners the status knows: of live projects and of recorded runs.

    An owner is listed once whatever the case of its login (the projects' spelling wins,
    else the newest run's); ``repositories`` counts its live (not removed) projects, 0 for
    an owner only seen in runs. Values that are not logins (never written by the sync) are
    left out, so every listed owner is a valid ``owner`` filter.

    Returns:
        ``{"owners": [{"owner", "repositories"}, ...]}``, ordered by login.
    """
    run_owners = _owners_sql("r.details -> 'owners'", "r.owner", lower=False)
    log_owners = _owners_sql("metadata -> 'owners'", "metadata ->> 'owner'", lower=False)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""
            WITH seen AS (
                SELECT login, r.started_at AS at FROM sync_runs r CROSS JOIN LATERAL unnest({run_owners}) AS login
                UNION ALL
                SELECT login, "timestamp" FROM import_logs CROSS JOIN LATERAL unnest({log_owners}) AS login
                WHERE source = %(source)s
            ),
            ran AS (
                SELECT DISTINCT ON (lower(login)) lower(login) AS key, login
                FROM seen WHERE login <> '' ORDER BY lower(login), at DESC
            ),
            live AS (
                SELECT lower(owner) AS key, mode() WITHIN GROUP (ORDER BY owner) AS login, count(*) AS repositories
                FROM projects WHERE removed_at IS NULL GROUP BY lower(owner)
            )
            SELECT coalesce(live.login, ran.login) AS owner, coalesce(live.repositories, 0) AS repositories
            FROM live FULL JOIN ran USING (key)
            ORDER BY key
            """,
            {"source": SOURCE},
        )
        rows = cur.fetchall()
    return {
        "owners": [
            {"owner": row["owner"], "repositories": int(row["repositories"])}
            for row in rows
            if is_github_login(row["owner"])
        ]
    }
