"""A repository's ``project_metrics`` row for the run's date: measured after a push, carried otherwise.

Owns which figures a push can change (commits, contributors, lines of code, stack, CI, tests:
:data:`METRICS_CARRIED`) and so are measured again only after one, and the carry-forward of an
unchanged repository's row without a request (what change detection does for every repository
it finds unchanged). The figures themselves are :mod:`github_sync.transform.metrics` and
:mod:`github_sync.transform.scoring`.

It must not commit (the caller's unit of work does) or read the issue and commit listings (the
repository sync does, and passes the commit count in).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg

from github_sync.github.errors import RepositoryUnavailable
from github_sync.github.listings import CONTRIBUTORS_LISTING, TREE_RESOURCE, GitHubClient, count_listing
from github_sync.store import loader, projects, synced_rows
from github_sync.store.projects import StoredProject
from github_sync.transform.metrics import project_metrics
from github_sync.transform.scoring import health_score

__all__ = [
    "METRICS_CARRIED",
    "carried_metrics",
    "carry_metrics_forward",
    "empty_repository_metrics",
    "last_metrics",
    "measured_metrics",
]

# Figures only a push changes: an unpushed repository carries them forward from its last row.
METRICS_CARRIED = ("commits_count", "contributors", "lines_of_code", "tech_stack", "has_ci", "has_tests")


def last_metrics(cursor: psycopg.Cursor[Any], project_id: int) -> dict[str, Any] | None:
    """The carried figures of the repository's latest metrics row; None when it has none (never synced)."""
    return synced_rows.last_metrics(cursor, project_id, METRICS_CARRIED)


def measured_metrics(
    client: GitHubClient,
    cursor: psycopg.Cursor[Any],
    *,
    project_id: int,
    project: StoredProject,
    full_name: str,
    branch: str,
    commits_count: int,
    as_of: datetime,
) -> dict[str, Any]:
    """Measure the row afresh: contributors and tree from GitHub, open issues from the stored bugs.

    Args:
        full_name: the repository, as the run's target names it (the URLs it reads).
        branch: the branch whose tree is measured (the default one).
        commits_count: the default branch's commits (the caller read that listing).
    """
    contributors = count_listing(client, CONTRIBUTORS_LISTING, full_name)
    tree = _tree(client, full_name, branch)
    return _metrics_row(cursor, project_id, project, tree, commits_count, contributors, as_of)


def empty_repository_metrics(
    cursor: psycopg.Cursor[Any], project_id: int, project: StoredProject, as_of: datetime
) -> dict[str, Any]:
    """The row of a repository without commits (GitHub answers 409): nothing to ask GitHub."""
    return _metrics_row(cursor, project_id, project, None, 0, 0, as_of)


def _metrics_row(
    cursor: psycopg.Cursor[Any],
    project_id: int,
    project: StoredProject,
    tree: Mapping[str, Any] | None,
    commits_count: int,
    contributors: int,
    as_of: datetime,
) -> dict[str, Any]:
    return project_metrics(
        repo_row_or_repo=project.as_row(),
        tree=tree,
        languages=None,
        commits_count=commits_count,
        contributors=contributors,
        open_issues=synced_rows.open_bug_count(cursor, project_id),
        as_of=as_of,
    )


def _tree(client: GitHubClient, full_name: str, branch: str) -> Mapping[str, Any] | None:
    try:
        tree: Mapping[str, Any] | None = client.get(
            TREE_RESOURCE.path_for(full_name, branch=branch), TREE_RESOURCE.query
        ).json
    except RepositoryUnavailable:
        return None
    return tree


def carried_metrics(
    cursor: psycopg.Cursor[Any],
    project_id: int,
    project: StoredProject,
    previous: Mapping[str, Any],
    as_of: datetime,
) -> dict[str, Any]:
    """The row of a repository not pushed to since ``previous``: its figures, rescored as of ``as_of``.

    What depends on the run's time, the issues and the stars (open issues, health) is computed
    again; the rest is carried.
    """
    open_issues = synced_rows.open_bug_count(cursor, project_id)
    return {
        **previous,
        "open_issues": open_issues,
        "health_score": health_score(
            last_commit=project.last_commit,
            as_of=as_of,
            open_issues=open_issues,
            stars=project.stars,
            contributors=previous["contributors"],
            has_ci=previous["has_ci"],
            has_tests=previous["has_tests"],
        ),
    }


def carry_metrics_forward(cursor: psycopg.Cursor[Any], project_id: int, as_of: datetime) -> bool:
    """Write the run date's metrics row of an unchanged repository from its last one (no request).

    Returns:
        False when the repository has no metrics yet (it needs a real sync).
    """
    previous = last_metrics(cursor, project_id)
    if previous is None:
        return False
    project = projects.read_project(cursor, project_id)
    metrics = carried_metrics(cursor, project_id, project, previous, as_of)
    loader.upsert_metrics(cursor, project_id, as_of.date(), metrics)
    return True
