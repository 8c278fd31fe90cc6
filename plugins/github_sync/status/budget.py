"""GitHub's budget as the status API shows it: the latest known remaining figure, the last hour's spending.

The remaining budget is observed by the syncs: each repository's outcome records it
(``sync_repository_runs.rate_limit_remaining``), and so does each run's log
(``import_logs.metadata.rate_limit_remaining``, also set by run-level tasks). The newest
observation wins.

Must not: ask GitHub (the status page spends no budget), or write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg.rows import dict_row

from github_sync.status.responses import RateLimitResponse
from github_sync.store.import_log import SOURCE, metadata_sql

if TYPE_CHECKING:
    import psycopg

# GitHub's primary rate limit is a rolling hour: "budget spent in the last hour" is what
# the remaining budget is measured against.
BUDGET_WINDOW_HOURS = 1
RATE_LIMIT_REMAINING = metadata_sql("rate_limit_remaining")


def rate_limit(conn: psycopg.Connection[Any]) -> RateLimitResponse:
    """The latest known remaining GitHub budget and what was spent in the last hour."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""
            (SELECT 'repository_run' AS source, rate_limit_remaining AS remaining, finished_at AS observed_at,
                dag_id, run_id, repository
             FROM sync_repository_runs
             WHERE rate_limit_remaining IS NOT NULL AND finished_at IS NOT NULL
             ORDER BY finished_at DESC LIMIT 1)
            UNION ALL
            (SELECT 'import_log', {RATE_LIMIT_REMAINING}::int, "timestamp",
                {metadata_sql("dag_id")}, {metadata_sql("run_id")}, NULL
             FROM import_logs
             WHERE source = %(source)s AND {RATE_LIMIT_REMAINING} IS NOT NULL
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
    assert window is not None  # an aggregate without GROUP BY always returns its one row
    return RateLimitResponse(
        remaining=latest.get("remaining"),
        observed_at=latest.get("observed_at"),
        source=latest.get("source"),
        dag_id=latest.get("dag_id"),
        run_id=latest.get("run_id"),
        repository=latest.get("repository"),
        spent_last_hour=int(window["spent"]),
        requests_last_hour=int(window["requests"]),
        window_hours=BUDGET_WINDOW_HOURS,
    )
