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
    "advance_push_checks",
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
# GitHub's open_issues_count when the stored open rows did not add up to it after the sync.
UNEXPLAINED_OPEN_KEY = "unexplained_open"
# The default branch whose commits were read.
BRANCH_KEY = "branch"
# GitHub's clock when the commits (or a probe of their first page) were last read.
READ_AT_KEY = "read_at"
# GitHub's clock when change detection last found the repository's issues unchanged (an
# owner-wide listing or a probe read after it), and the time of the check before. The earlier
# one is the watermark: each window is then read by two listings, so an item a listing skipped
# (a removal on an already-read page shifts the next ones up) is read by the next one.
CHECKED_AT_KEY = "checked_at"
CHECKED_BEFORE_KEY = "checked_before"


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
        branch: the default branch read (a switch of the default branch moves the head
            without a push).
        read_at: GitHub's clock when the commits, or a probe of their first page, were read
            with ``pushed_at`` as the repository's last push.
    """

    newest: datetime | None = None
    head: str | None = None
    empty: bool = False
    empty_at_push: datetime | None = None
    pushed_at: datetime | None = None
    branch: str | None = None
    read_at: datetime | None = None

    def still_empty(self, last_push: datetime | None) -> bool:
        """The repository was empty at its last sync and ``last_push`` is the push it was empty at."""
        return self.empty and self.empty_at_push == last_push

    def details(self) -> dict[str, Any]:
        """The JSON ``details`` document stored with the cursor."""
        document: dict[str, Any] = {HEAD_KEY: self.head}
        if self.pushed_at is not None:
            document[PUSHED_AT_KEY] = self.pushed_at.isoformat()
        if self.branch is not None:
            document[BRANCH_KEY] = self.branch
        if self.read_at is not None:
            document[READ_AT_KEY] = self.read_at.isoformat()
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
            branch=details.get(BRANCH_KEY),
            read_at=_timestamp(details.get(READ_AT_KEY)),
        )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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
        issues_checked_at: GitHub's clock when change detection found its issues unchanged,
            the check before the last one (see :data:`CHECKED_BEFORE_KEY`).
        unexplained_open: GitHub's open count that the stored rows did not add up to after
            that sync (``None``: they did).
    """

    issues: datetime | None = None
    commits: CommitsCursor = field(default_factory=CommitsCursor)
    issues_listed_at: datetime | None = None
    synced_full_name: str | None = None
    issues_checked_at: datetime | None = None
    unexplained_open: int | None = None


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
            issues_checked_at=_timestamp(details.get(CHECKED_BEFORE_KEY)),
            unexplained_open=_count(details.get(UNEXPLAINED_OPEN_KEY)),
        )
    return result


def write_issues_cursor(
    cursor: psycopg.Cursor[Any],
    project_id: int,
    newest: datetime | None,
    *,
    listed_at: datetime | None = None,
    full_name: str | None = None,
    unexplained_open: int | None = None,
) -> None:
    """Store the issues stream's cursor; call it in the transaction of the rows it covers."""
    details: dict[str, Any] = {}
    if listed_at is not None:
        details[LISTED_AT_KEY] = listed_at.isoformat()
    if full_name is not None:
        details[FULL_NAME_KEY] = full_name
    if unexplained_open is not None:
        details[UNEXPLAINED_OPEN_KEY] = unexplained_open
    _write(cursor, project_id, ISSUES_STREAM, newest, details)


def advance_issue_checks(
    cursor: psycopg.Cursor[Any], project_ids: Sequence[int], checked_at: datetime
) -> None:
    """Record that these repositories' issues were found unchanged up to ``checked_at`` (one statement).

    The previous check (or the sync's own read) becomes ``checked_before``, the watermark;
    a sync's own cursor write replaces both (its ``listed_at`` is newer).
    """
    cursor.execute(
        "INSERT INTO sync_cursors (project_id, stream, cursor_value, details) "
        "SELECT id, %(stream)s, NULL, jsonb_build_object(%(key)s::text, %(at)s::text) FROM unnest(%(ids)s::bigint[]) id "
        "ON CONFLICT (project_id, stream) DO UPDATE SET updated_at = now(), details = sync_cursors.details "
        "|| jsonb_build_object(%(key)s::text, %(at)s::text) || jsonb_strip_nulls(jsonb_build_object(%(before)s::text, "
        "coalesce(sync_cursors.details ->> %(key)s, sync_cursors.details ->> %(listed)s)))",
        {
            "stream": ISSUES_STREAM, "key": CHECKED_AT_KEY, "before": CHECKED_BEFORE_KEY, "listed": LISTED_AT_KEY,
            "at": checked_at.isoformat(), "ids": list(project_ids),
        },
    )  # fmt: skip


def advance_push_checks(cursor: psycopg.Cursor[Any], checks: Mapping[int, tuple[datetime, datetime]]) -> None:
    """Record, per project, the last push seen and when a probe found the head unchanged with it.

    ``checks`` is ``{project_id: (pushed_at, read_at)}``; one statement for all of them, on
    repositories that have a commits cursor.
    """
    if not checks:
        return
    ids = list(checks)
    cursor.execute(
        "UPDATE sync_cursors c SET updated_at = now(), details = c.details "
        "|| jsonb_build_object(%(pushed_key)s::text, v.pushed_at::text, %(read_key)s::text, v.read_at::text) "
        "FROM unnest(%(ids)s::bigint[], %(pushed)s::text[], %(read)s::text[]) AS v(id, pushed_at, read_at) "
        "WHERE c.project_id = v.id AND c.stream = %(stream)s",
        {
            "pushed_key": PUSHED_AT_KEY, "read_key": READ_AT_KEY, "stream": COMMITS_STREAM, "ids": ids,
            "pushed": [checks[i][0].isoformat() for i in ids], "read": [checks[i][1].isoformat() for i in ids],
        },
    )  # fmt: skip


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
