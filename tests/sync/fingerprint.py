"""Compare two target databases by content: live rows, keyed by GitHub identities, no sync timestamps."""

from __future__ import annotations

from typing import Any

import psycopg

# Project ids differ between databases; every row is keyed by its repository's GitHub id instead.
# Children of archived projects are left out: their data is frozen when they are archived
# (syncs skip archived repositories unless include_archived), while a fresh full sync never
# read them; their project rows are compared.
LIVE_CONTENT = {
    "projects": "SELECT github_id, full_name, description, github_url, language, tags, stars, forks, open_issues, "
    "default_branch, is_fork, last_commit, status, created_at, updated_at FROM projects WHERE removed_at IS NULL",
    "bugs": "SELECT p.github_id, b.github_id, b.bug_number, b.title, b.description, b.severity, b.status, b.sla_hours, "
    "b.priority_score, b.is_blocker, b.labels, b.assignees, b.author, b.created_at, b.updated_at, b.resolved_at "
    "FROM bugs b JOIN projects p ON p.id = b.project_id WHERE b.removed_at IS NULL AND p.removed_at IS NULL AND p.status = 'active'",
    "pull_requests": "SELECT p.github_id, r.number, r.title, r.description, r.state, r.draft, r.author, r.labels, "
    "r.created_at, r.updated_at, r.closed_at, r.merged_at FROM pull_requests r JOIN projects p ON p.id = r.project_id "
    "WHERE r.removed_at IS NULL AND p.removed_at IS NULL AND p.status = 'active'",
    "commits": "SELECT p.github_id, c.sha, c.author_login, c.author_name, c.message, c.committed_at FROM commits c "
    "JOIN projects p ON p.id = c.project_id WHERE p.removed_at IS NULL AND p.status = 'active'",
    "project_metrics": "SELECT p.github_id, m.date, m.commits_count, m.contributors, m.lines_of_code, m.tech_stack, "
    "m.health_score, m.open_issues, m.has_ci, m.has_tests FROM project_metrics m JOIN projects p ON p.id = m.project_id "
    "WHERE p.removed_at IS NULL AND p.status = 'active' AND m.date = %(day)s",
}


def live_content(conn: psycopg.Connection, day: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every live synced row of the database, sorted, for an equality comparison."""
    return {
        table: sorted(
            (
                tuple(tuple(v) if isinstance(v, list) else v for v in row)
                for row in conn.execute(sql, {"day": day})
            ),
            key=repr,
        )
        for table, sql in LIVE_CONTENT.items()
    }


def differences(
    left: dict[str, list[tuple[Any, ...]]], right: dict[str, list[tuple[Any, ...]]]
) -> dict[str, Any]:
    """A readable diff: per table, rows only on the left and only on the right (first few)."""
    diff: dict[str, Any] = {}
    for table in left:
        only_left = sorted(set(left[table]) - set(right[table]), key=repr)[:5]
        only_right = sorted(set(right[table]) - set(left[table]), key=repr)[:5]
        if only_left or only_right:
            diff[table] = {"only_incremental": only_left, "only_full": only_right}
    return diff
