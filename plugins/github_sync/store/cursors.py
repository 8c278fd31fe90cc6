"""The ``sync_cursors`` table: per repository and stream, how far the committed rows reach.

Owns the two streams' names, the typed cursor records, their JSON ``details`` keys, and every
statement on the table: the repository sync writes cursors in the transaction of the rows they
cover, and change detection reads them back for all of a run's repositories at once. A cursor
that is not stored reads as an empty record (never synced), so callers need no ``None`` checks.

It must not decide when a cursor moves (that is the sync's rule, :mod:`github_sync.sync.repository`)
and must not commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

__all__ = [
    "COMMITS_STREAM",
    "ISSUES_STREAM",
    "CommitsCursor",
    "RepositoryCursors",
    "advance_issue_checks",
    "read_cursors",
    "read_cursors_of",
    "write_commits_cursor",
    "write_issues_cursor",
]

# Issues and pull requests, by updated_at (they share GitHub's issues listing).
ISSUES_STREAM = "issues"
# The default branch's commits, by commit time, and its head.
COMMITS_STREAM = "commits"

# Keys of the commits stream's ``details`` document.
HEAD_KEY = "head"
# Present only when the repository had no commits at the last sync: its pushed_at then.
EMPTY_AT_PUSH_KEY = "empty_at_push"
# The repository's pushed_at (projects.last_commit) when the sync read its commits.
PUSHED_AT_KEY = "pushed_at"
# Keys of the issues stream's ``details`` document: GitHub's clock when the sync read the
# first page of the issue listing (every change stamped earlier was seen), and the
# repository's owner/name then (a rename changes every row's URL).
LISTED_AT_KEY = "listed_at"
FULL_NAME_KEY = "full_name"
# GitHub's clock when change detection last found the repository's issues unchanged (an
# owner-wide listing or a probe read after it): no change stamped earlier went unseen.
CHECKED_AT_KEY = "checked_at"


@dataclass(frozen=True)
class CommitsCursor:
    """The commits stream: the newest commit time committed, and what tells a push.

    Attributes:
        newest: the newest commit time among the committed rows.
        head: the default branch's newest sha at the last sync.
        empty: the repository had no commits at the last sync (GitHub answered 409).
        empty_at_push: then, the repository's last push (``projects.last_commit``), so that
            change detection need not ask again until GitHub reports a push.
        pushed_at: the repository's last push (``projects.last_commit``) when the commits were
            read: while the owner's listing reports the same, nothing was pushed since.
    """

    newest: datetime | None = None
    head: str | None = None
    empty: bool = False
    empty_at_push: datetime | None = None
    pushed_at: datetime | None = None

    def still_empty(self, last_push: datetime | None) -> bool:
        """The repository was empty at its last sync and ``last_push`` is the push it was empty at."""
        return self.empty and self.empty_at_push == last_push

    def details(self) -> dict[str, Any]:
        """The JSON ``details`` document stored with the cursor."""
        document: dict[str, Any] = {HEAD_KEY: self.head}
        if self.pushed_at is not None:
            document[PUSHED_AT_KEY] = self.pushed_at.isoformat()
        if self.empty:
            document[EMPTY_AT_PUSH_KEY] = self.empty_at_push.isoformat() if self.empty_at_push else None
        return document

    @classmethod
    def from_stored(cls, newest: datetime | None, details: Mapping[str, Any]) -> CommitsCursor:
        empty_at_push = details.get(EMPTY_AT_PUSH_KEY)
        return cls(
            newest=newest,
            head=details.get(HEAD_KEY),
            empty=EMPTY_AT_PUSH_KEY in details,
            empty_at_push=datetime.fromisoformat(empty_at_push) if empty_at_push else None,
            pushed_at=_timestamp(details.get(PUSHED_AT_KEY)),
        )


def _timestamp(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass(frozen=True)
class RepositoryCursors:
    """Both streams' cursors of one repository (empty records where none is stored).

    Attributes:
        issues: the newest ``updated_at`` among the committed issues and pull requests.
        commits: the commits stream.
        issues_listed_at: GitHub's clock when the last committed sync read the issue listing
            (``None`` when it sent no ``Date`` or the cursor predates it).
        synced_full_name: the repository's ``owner/name`` at that sync.
        issues_checked_at: GitHub's clock when change detection last found its issues
            unchanged, if later than that sync.
    """

    issues: datetime | None = None
    commits: CommitsCursor = field(default_factory=CommitsCursor)
    issues_listed_at: datetime | None = None
    synced_full_name: str | None = None
    issues_checked_at: datetime | None = None


_SELECT = "SELECT project_id, stream, cursor_value, details FROM sync_cursors "


def read_cursors(cursor: psycopg.Cursor[Any], project_id: int) -> RepositoryCursors:
    """The cursors of one repository."""
    cursor.execute(_SELECT + "WHERE project_id = %s", (project_id,))
    return _by_project(cursor.fetchall()).get(project_id, RepositoryCursors())


def read_cursors_of(cursor: psycopg.Cursor[Any], project_ids: Sequence[int]) -> dict[int, RepositoryCursors]:
    """The cursors of every given repository, in one query (an empty record where none is stored)."""
    cursor.execute(_SELECT + "WHERE project_id = ANY(%s)", (list(project_ids),))
    stored = _by_project(cursor.fetchall())
    return {project_id: stored.get(project_id, RepositoryCursors()) for project_id in project_ids}


def _by_project(rows: Sequence[Sequence[Any]]) -> dict[int, RepositoryCursors]:
    issues: dict[int, tuple[datetime | None, Mapping[str, Any]]] = {}
    commits: dict[int, CommitsCursor] = {}
    for project_id, stream, value, details in rows:
        if stream == ISSUES_STREAM:
            issues[project_id] = (value, details or {})
        elif stream == COMMITS_STREAM:
            commits[project_id] = CommitsCursor.from_stored(value, details or {})
    result: dict[int, RepositoryCursors] = {}
    for project_id in issues.keys() | commits.keys():
        newest, details = issues.get(project_id, (None, {}))
        name = details.get(FULL_NAME_KEY)
        result[project_id] = RepositoryCursors(
            issues=newest,
            commits=commits.get(project_id, CommitsCursor()),
            issues_listed_at=_timestamp(details.get(LISTED_AT_KEY)),
            synced_full_name=str(name) if name else None,
            issues_checked_at=_timestamp(details.get(CHECKED_AT_KEY)),
        )
    return result


def write_issues_cursor(
    cursor: psycopg.Cursor[Any],
    project_id: int,
    newest: datetime | None,
    *,
    listed_at: datetime | None = None,
    full_name: str | None = None,
) -> None:
    """Store the issues stream's cursor; call it in the transaction of the rows it covers."""
    details: dict[str, Any] = {}
    if listed_at is not None:
        details[LISTED_AT_KEY] = listed_at.isoformat()
    if full_name is not None:
        details[FULL_NAME_KEY] = full_name
    _write(cursor, project_id, ISSUES_STREAM, newest, details)


def advance_issue_checks(
    cursor: psycopg.Cursor[Any], project_ids: Sequence[int], checked_at: datetime
) -> None:
    """Record that these repositories' issues were found unchanged up to ``checked_at`` (one statement).

    Only repositories that have an issues cursor are touched; a sync's own cursor write
    replaces the mark (its ``listed_at`` is newer).
    """
    cursor.execute(
        "UPDATE sync_cursors SET details = details || jsonb_build_object(%s::text, %s::text), updated_at = now() "
        "WHERE stream = %s AND project_id = ANY(%s)",
        (CHECKED_AT_KEY, checked_at.isoformat(), ISSUES_STREAM, list(project_ids)),
    )


def write_commits_cursor(cursor: psycopg.Cursor[Any], project_id: int, commits: CommitsCursor) -> None:
    """Store the commits stream's cursor; call it in the transaction of the rows it covers."""
    _write(cursor, project_id, COMMITS_STREAM, commits.newest, commits.details())


def _write(
    cursor: psycopg.Cursor[Any],
    project_id: int,
    stream: str,
    value: datetime | None,
    details: Mapping[str, Any],
) -> None:
    cursor.execute(
        "INSERT INTO sync_cursors (project_id, stream, cursor_value, details) "
        "VALUES (%s, %s, %s, %s::jsonb) "
        "ON CONFLICT (project_id, stream) DO UPDATE SET cursor_value = EXCLUDED.cursor_value, "
        "details = EXCLUDED.details, updated_at = now()",
        (project_id, stream, value, json.dumps(details)),
    )
