"""Repositories as the status API ranks them: the slowest to sync and the most often failing.

Read from ``sync_repository_runs`` (one row per repository and run, whatever the mode), so
a repository's figures cover every run that synced it. With ``owner``: that owner's
repositories (``owner/name``), whichever runs synced them.

Must not: write, or build SQL from a value (filters are query parameters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg.rows import dict_row

from github_sync.status.responses import (
    AVERAGE_DIGITS,
    FailingRepository,
    RepositoriesResponse,
    SlowRepository,
    grid_path,
    rounded,
)
from github_sync.status.run_owners import REPOSITORY_OWNER, add_owner_param

if TYPE_CHECKING:
    import psycopg


def repositories(
    conn: psycopg.Connection[Any], *, days: int, limit: int, owner: str | None = None
) -> RepositoriesResponse:
    """The ``limit`` slowest and most often failing repositories over the last ``days`` days."""
    params: dict[str, Any] = {"days": days, "limit": limit}
    owner_filter = f"AND {REPOSITORY_OWNER} = %(owner)s" if add_owner_param(owner, params) else ""
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
    return RepositoriesResponse(
        window_days=days,
        owner=owner,
        slowest=[
            SlowRepository(
                repository=row["repository"],
                runs=row["runs"],
                avg_duration_s=rounded(row["avg_duration_s"], AVERAGE_DIGITS),
                max_duration_s=rounded(row["max_duration_s"], AVERAGE_DIGITS),
                avg_requests=rounded(row["avg_requests"], AVERAGE_DIGITS),
            )
            for row in slowest
        ],
        failing=[
            FailingRepository.model_validate({**row, "grid_path": grid_path(row["dag_id"], row["run_id"])})
            for row in failing
        ],
    )
