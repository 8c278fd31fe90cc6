"""Reads of what earlier syncs stored in ``bugs``, ``pull_requests`` and ``project_metrics``.

Owns the read-back queries the sync compares GitHub against or carries forward: the live keys
of a repository's issues and pull requests, its open bugs and open pull requests, and its latest
metrics row. Only live rows (``removed_at IS NULL``) count as stored. It must not write (the
loader does) or decide what a difference means (change detection does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

__all__ = [
    "LiveKeys",
    "last_metrics",
    "live_keys_of",
    "open_bug_count",
    "open_counts_of",
    "open_numbers",
    "open_pull_numbers",
    "synced_project_ids",
]


@dataclass(frozen=True)
class LiveKeys:
    """How a repository's live rows are keyed: issue ids (``bugs.github_id``) and PR numbers."""

    issue_ids: frozenset[int] = frozenset()
    pr_numbers: frozenset[int] = frozenset()


def live_keys_of(cursor: psycopg.Cursor[Any], project_ids: Sequence[int]) -> dict[int, LiveKeys]:
    """The live keys of every given project, in two queries (empty keys where it has none)."""
    ids = list(project_ids)
    cursor.execute(
        "SELECT project_id, array_agg(github_id) FROM bugs WHERE project_id = ANY(%s) AND removed_at IS NULL "
        "GROUP BY project_id",
        (ids,),
    )
    issue_ids = dict(cursor.fetchall())
    cursor.execute(
        "SELECT project_id, array_agg(number) FROM pull_requests WHERE project_id = ANY(%s) "
        "AND removed_at IS NULL GROUP BY project_id",
        (ids,),
    )
    pr_numbers = dict(cursor.fetchall())
    return {
        project_id: LiveKeys(
            issue_ids=frozenset(issue_ids.get(project_id) or ()),
            pr_numbers=frozenset(pr_numbers.get(project_id) or ()),
        )
        for project_id in ids
    }


def open_bug_count(cursor: psycopg.Cursor[Any], project_id: int) -> int:
    """Live issues of a project that are not closed (what the dashboard counts as open)."""
    cursor.execute(
        "SELECT count(*) FROM bugs WHERE project_id = %s AND status <> 'closed' AND removed_at IS NULL",
        (project_id,),
    )
    row = cursor.fetchone()
    return int(row[0]) if row is not None else 0


def open_counts_of(cursor: psycopg.Cursor[Any], project_ids: Sequence[int]) -> dict[int, int]:
    """Live open issues plus open pull requests per project: what GitHub's ``open_issues_count`` counts."""
    cursor.execute(
        "SELECT project_id, count(*) FROM ("
        " SELECT project_id FROM bugs WHERE project_id = ANY(%(ids)s) AND status <> 'closed' AND removed_at IS NULL"
        " UNION ALL"
        " SELECT project_id FROM pull_requests WHERE project_id = ANY(%(ids)s) AND state = 'open'"
        " AND removed_at IS NULL) open_rows GROUP BY project_id",
        {"ids": list(project_ids)},
    )
    counts = {int(project_id): int(count) for project_id, count in cursor.fetchall()}
    return {int(project_id): counts.get(int(project_id), 0) for project_id in project_ids}


def open_numbers(cursor: psycopg.Cursor[Any], project_id: int) -> dict[int, str]:
    """``{number: table}`` of a project's live rows stored as open (issues not closed, PRs open)."""
    cursor.execute(
        "SELECT number, 'bugs' FROM bugs WHERE project_id = %(id)s AND status <> 'closed' AND removed_at IS NULL "
        "UNION ALL SELECT number, 'pull_requests' FROM pull_requests WHERE project_id = %(id)s "
        "AND state = 'open' AND removed_at IS NULL",
        {"id": project_id},
    )
    return {int(number): str(table) for number, table in cursor.fetchall()}


def open_pull_numbers(cursor: psycopg.Cursor[Any], project_id: int) -> set[int]:
    """Numbers of a project's live pull requests stored as open."""
    cursor.execute(
        "SELECT number FROM pull_requests WHERE project_id = %s AND state = 'open' AND removed_at IS NULL",
        (project_id,),
    )
    return {int(number) for (number,) in cursor.fetchall()}


def synced_project_ids(cursor: psycopg.Cursor[Any], project_ids: Sequence[int]) -> set[int]:
    """Those of the given projects that have a metrics row: a sync of theirs has committed."""
    cursor.execute(
        "SELECT DISTINCT project_id FROM project_metrics WHERE project_id = ANY(%s)", (list(project_ids),)
    )
    return {int(project_id) for (project_id,) in cursor.fetchall()}


def last_metrics(
    cursor: psycopg.Cursor[Any], project_id: int, columns: Sequence[str]
) -> dict[str, Any] | None:
    """``columns`` of a project's latest metrics row, or None when it has none."""
    cursor.execute(
        sql.SQL("SELECT {} FROM project_metrics WHERE project_id = %s ORDER BY date DESC LIMIT 1").format(
            sql.SQL(", ").join(map(sql.Identifier, columns))
        ),
        (project_id,),
    )
    row = cursor.fetchone()
    return None if row is None else dict(zip(columns, row, strict=True))
