"""The runs in progress behind the status API and its event stream: one snapshot per run.

Running runs are read from ``sync_runs`` and ``sync_repository_runs``, which the tasks
update while they work; :func:`run_snapshots` turns each run's rows into a
:class:`~github_sync.status.responses.RunSnapshot` (counts, current repositories,
progress and ETA from :mod:`github_sync.status.progress`).

Must not: write (the connection is read-only), or drop a run the caller follows: the
stream learns that a run finished by seeing it again, whatever its state and owners.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from psycopg.rows import dict_row

from github_sync.status.progress import estimate_progress
from github_sync.status.responses import ProgressResponse, RunSnapshot, ShardPosition, grid_path
from github_sync.status.run_owners import RUN_OWNERS, add_owner_param, recorded_owners
from github_sync.store.run_records import STALE_OPEN_RUN_HOURS

if TYPE_CHECKING:
    import psycopg

# Shown in a snapshot: enough to see what is being worked on, bounded for big orgs.
MAX_CURRENT_REPOSITORIES = 10
FINAL_REPOSITORY_STATES = ("success", "failed", "skipped")
RUN_RUNNING = "running"

RunKey = tuple[str, str]
"""``(dag_id, run_id)``."""


def run_snapshots(
    conn: psycopg.Connection[Any],
    *,
    tracked: Iterable[RunKey] = (),
    finished_since: datetime | None = None,
    owner: str | None = None,
) -> tuple[datetime, dict[RunKey, RunSnapshot]]:
    """Snapshots of the running runs, plus the ``tracked`` runs and recently finished ones.

    The stream diffs successive calls: a tracked run that is no longer running is how it
    learns a run completed, whatever the timing of the poll.

    Args:
        conn: the connection.
        tracked: runs the caller is following (returned whatever their state).
        finished_since: also return runs finished at or after this time (``None``: now).
        owner: only the running and finished runs that included this owner; ``tracked`` runs
            are returned whatever their owners (a followed run never vanishes from a stream).

    Returns:
        The database's current time and the snapshots by run, oldest run first.
    """
    keys = list(tracked)
    params: dict[str, Any] = {
        "final": list(FINAL_REPOSITORY_STATES),
        "stale_hours": STALE_OPEN_RUN_HOURS,
        "since": finished_since,
        "dag_ids": [k[0] for k in keys],
        "run_ids": [k[1] for k in keys],
    }
    owner_filter = f"AND %(owner)s = ANY({RUN_OWNERS})" if add_owner_param(owner, params) else ""
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
                array_agg(rr.repository ORDER BY rr.started_at DESC, rr.repository)
                    FILTER (WHERE rr.state = 'running') AS current_repositories,
                array_agg(rr.shard ORDER BY rr.started_at DESC, rr.repository)
                    FILTER (WHERE rr.state = 'running') AS current_shard_labels,
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
            clock = cur.fetchone()
            assert clock is not None  # SELECT now() always returns its one row
            return clock["now"], {}
    now: datetime = rows[0]["now"]
    return now, {(row["dag_id"], row["run_id"]): _snapshot(row, now) for row in rows}


def _snapshot(row: Mapping[str, Any], now: datetime) -> RunSnapshot:
    running = int(row["running"]) + int(row["deferred"])
    end = row["finished_at"] if row["state"] != RUN_RUNNING and row["finished_at"] else now
    estimate = estimate_progress(
        total=int(row["repositories_total"] or 0),
        done=int(row["done"]),
        running=running,
        started_at=row["started_at"],
        now=end,
        completions=row["completions"] or (),
    )
    current: Sequence[str] = row["current_repositories"] or []
    labels: Sequence[str | None] = row["current_shard_labels"] or [None] * len(current)
    return RunSnapshot(
        dag_id=row["dag_id"],
        run_id=row["run_id"],
        mode=row["mode"],
        owner=row["owner"],
        owners=recorded_owners(row["owners"], row["owner"]),
        state=row["state"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        succeeded=int(row["succeeded"]),
        failed=int(row["failed"]),
        skipped=int(row["skipped"]),
        deferred=int(row["deferred"]),
        records=int(row["records"]),
        requests=int(row["requests"]),
        budget_spent=int(row["budget_spent"]),
        not_modified=int(row["not_modified"]),
        current_repositories=list(current[:MAX_CURRENT_REPOSITORIES]),
        # Which repository each shard is on (a one-repository shard is its repository: left out).
        current_shards=[
            ShardPosition(shard=label, repository=repository)
            for repository, label in zip(current, labels, strict=True)
            if label is not None and label != repository
        ][:MAX_CURRENT_REPOSITORIES],
        failed_repositories=list(row["failed_repositories"] or []),
        **estimate.to_dict(),
        grid_path=grid_path(row["dag_id"], row["run_id"]),
    )


def progress(conn: psycopg.Connection[Any], *, owner: str | None = None) -> ProgressResponse:
    """The runs in progress (with ``owner``: those that include it), oldest first."""
    now, snapshots = run_snapshots(conn, finished_since=None, owner=owner)
    running = [snapshot for snapshot in snapshots.values() if snapshot.state == RUN_RUNNING]
    return ProgressResponse(generated_at=now, owner=owner, runs=running)
