"""Every hand-written SQL statement on ``projects``: the repositories the sync knows.

Owns the URL hand-over between a removed repository and the one that took its name, the id
lookup by GitHub id, the tombstoning of repositories an owner no longer lists, and the reads the
sync and change detection make of a repository's stored facts. The column-ownership upsert itself
is :data:`github_sync.store.loader.PROJECTS` (the loader's rules, like every other table);
:func:`github_sync.store.loader.upsert_project` composes it with the statements here.

It must not commit (the caller owns the transaction), call GitHub, or write dashboard-owned
columns (``complexity``, ``client_appeal``). The status plugin's read-only queries live there.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

__all__ = [
    "ListedFacts",
    "LockedProject",
    "StoredProject",
    "listed_facts",
    "lock_project",
    "project_id_for",
    "read_project",
    "release_url_of_removed",
    "remove_unlisted",
    "set_last_commit",
]


@dataclass(frozen=True)
class StoredProject:
    """What a repository's sync reads of its ``projects`` row."""

    full_name: str
    default_branch: str | None
    last_commit: datetime | None  # GitHub's pushed_at: the last push to any branch
    stars: int
    language: str | None
    # GitHub's open_issues_count (open issues and pull requests) as last listed.
    open_issues: int = 0

    def as_row(self) -> dict[str, Any]:
        """The row as :func:`github_sync.transform.metrics.project_metrics` reads a ``projects`` row."""
        return {
            "full_name": self.full_name,
            "default_branch": self.default_branch,
            "last_commit": self.last_commit,
            "stars": self.stars,
            "language": self.language,
        }


@dataclass(frozen=True)
class LockedProject:
    """A ``projects`` row locked for a webhook's update (``SELECT ... FOR UPDATE``)."""

    project_id: int
    updated_at: datetime | None
    last_commit: datetime | None
    removed_at: datetime | None
    tags: list[str]


def read_project(cursor: psycopg.Cursor[Any], project_id: int) -> StoredProject:
    """The stored facts of one project.

    Raises:
        LookupError: no such project.
    """
    cursor.execute(
        "SELECT full_name, default_branch, last_commit, stars, language, open_issues FROM projects WHERE id = %s",
        (project_id,),
    )
    row = cursor.fetchone()
    if row is None:
        raise LookupError(f"project {project_id} is not in the projects table")
    full_name, default_branch, last_commit, stars, language, open_issues = row
    return StoredProject(
        full_name=full_name, default_branch=default_branch, last_commit=last_commit, stars=stars or 0,
        open_issues=open_issues or 0,
        language=language,
    )  # fmt: skip


@dataclass(frozen=True)
class ListedFacts:
    """What the owner's repository listing said of a project (discovery stores it in ``projects``)."""

    last_push: datetime | None  # pushed_at
    open_issues: int  # open_issues_count: open issues and pull requests


def listed_facts(cursor: psycopg.Cursor[Any], project_ids: Sequence[int]) -> dict[int, ListedFacts]:
    """``{project_id: ListedFacts}`` of the given projects that exist (removed ones included)."""
    cursor.execute(
        "SELECT id, last_commit, open_issues FROM projects WHERE id = ANY(%s)", (list(project_ids),)
    )
    return {
        int(project_id): ListedFacts(last_push=last_commit, open_issues=int(open_issues or 0))
        for project_id, last_commit, open_issues in cursor.fetchall()
    }


def release_url_of_removed(cursor: psycopg.Cursor[Any], *, github_url: str, github_id: int) -> None:
    """Free ``github_url`` from a removed repository that had it, for the live one ``github_id``.

    A repository deleted and re-created under the same name has a new GitHub id but the same
    URL, which is unique among live rows; the removed row keeps a marked copy of its URL.
    """
    cursor.execute(
        "UPDATE projects SET github_url = github_url || '#removed-' || github_id "
        "WHERE github_url = %s AND github_id <> %s AND removed_at IS NOT NULL",
        (github_url, github_id),
    )


def project_id_for(cursor: psycopg.Cursor[Any], github_id: int) -> int:
    """The project id of the repository with ``github_id``.

    Raises:
        LookupError: no such repository.
    """
    cursor.execute("SELECT id FROM projects WHERE github_id = %s", (github_id,))
    row = cursor.fetchone()
    if row is None:
        raise LookupError(f"no project has github_id {github_id}")
    return int(row[0])


def remove_unlisted(
    cursor: psycopg.Cursor[Any],
    *,
    owner: str,
    listed_github_ids: Collection[int],
    removed_at: datetime,
    reason: str,
) -> tuple[str, ...]:
    """Tombstone ``owner``'s live projects whose GitHub id is not listed; return their names, sorted.

    One statement, so what it marks is exactly what it reports. The owner is compared without
    case, as GitHub compares logins.
    """
    cursor.execute(
        "UPDATE projects SET removed_at = %s, removed_reason = %s, synced_at = now() "
        "WHERE lower(owner) = lower(%s) AND removed_at IS NULL AND NOT (github_id = ANY(%s)) "
        "RETURNING full_name",
        (removed_at, reason, owner, list(listed_github_ids)),
    )
    return tuple(sorted(str(full_name) for (full_name,) in cursor.fetchall()))


def lock_project(cursor: psycopg.Cursor[Any], github_id: int) -> LockedProject | None:
    """Lock the row of the repository with ``github_id`` until the transaction ends; None if unknown."""
    cursor.execute(
        "SELECT id, updated_at, last_commit, removed_at, tags FROM projects WHERE github_id = %s FOR UPDATE",
        (github_id,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    project_id, updated_at, last_commit, removed_at, tags = row
    return LockedProject(
        project_id=int(project_id), updated_at=updated_at, last_commit=last_commit, removed_at=removed_at,
        tags=list(tags),
    )  # fmt: skip


def set_last_commit(cursor: psycopg.Cursor[Any], project_id: int, last_commit: datetime | None) -> int:
    """Write a project's ``last_commit`` alone, when it differs; return the rows written (0 or 1)."""
    cursor.execute(
        "UPDATE projects SET last_commit = %s, synced_at = now() "
        "WHERE id = %s AND last_commit IS DISTINCT FROM %s",
        (last_commit, project_id, last_commit),
    )
    return max(cursor.rowcount, 0)
