"""Scenario 6: the database load alone, ``loader.upsert_rows`` into PostgreSQL without GitHub.

N issues (``bugs``) and N commits spread over 100 projects, each project's rows in one
transaction as the sync writes them; then the same rows again, unchanged (the
``IS DISTINCT FROM`` guard must make that a no-op write). Rows are generated before the
clock starts, so the figure is the loader and PostgreSQL only.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

PROJECTS = 100


def _project_ids(conn: Any) -> list[int]:
    rows = conn.execute(
        "INSERT INTO projects (github_id, owner, name, full_name, github_url) "
        "SELECT 900000000 + g, 'bench', 'repo-' || g, 'bench/repo-' || g, 'https://github.com/bench/repo-' || g "
        "FROM generate_series(1, %s) AS g RETURNING id",
        (PROJECTS,),
    ).fetchall()
    conn.commit()
    return [int(r[0]) for r in rows]


def _bugs(project_index: int, count: int) -> list[dict[str, Any]]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for n in range(1, count + 1):
        created = base + timedelta(minutes=project_index * 10_000 + n)
        out.append(
            {
                "github_id": 5_000_000_000 + project_index * 1_000_000 + n,
                "bug_number": f"GH-{n}",
                "number": n,
                "title": f"Issue {n} of repo {project_index}: something is broken in the parser",
                "description": "Steps to reproduce: run it. Expected: works. Actual: does not. " * 3,
                "severity": ("critical", "high", "medium", "low")[n % 4],
                "status": ("pending", "in_progress", "closed")[n % 3],
                "sla_hours": (4, 24, 72, 168)[n % 4],
                "priority_score": n % 101,
                "priority_base": n % 101,
                "is_blocker": n % 17 == 0,
                "labels": ["bug", "area/parser"] if n % 2 else ["enhancement"],
                "assignees": ["alice"] if n % 3 == 0 else [],
                "author": f"user{n % 50}",
                "github_url": f"https://github.com/bench/repo-{project_index}/issues/{n}",
                "created_at": created,
                "updated_at": created + timedelta(hours=3),
                "resolved_at": created + timedelta(days=2) if n % 3 == 2 else None,
            }
        )
    return out


def _commits(project_index: int, count: int) -> list[dict[str, Any]]:
    base = datetime(2026, 6, 1, tzinfo=UTC)
    return [
        {
            "sha": f"{project_index:08x}{n:032x}",
            "author_login": f"user{n % 50}",
            "author_name": f"User {n % 50}",
            "message": f"Fix the thing number {n}\n\nLonger explanation of why the thing needed fixing.",
            "committed_at": base + timedelta(minutes=project_index * 10_000 + n),
            "github_url": f"https://github.com/bench/repo-{project_index}/commit/{n:040x}",
        }
        for n in range(1, count + 1)
    ]


def load_rows(*, dsn: str, rows: int) -> dict[str, Any]:
    """Upsert ``rows`` issues and ``rows`` commits, then again unchanged; return the timings and rates."""
    import psycopg

    from github_sync.store import loader

    per_project = max(1, rows // PROJECTS)
    with psycopg.connect(dsn) as conn:
        project_ids = _project_ids(conn)
        data = [(pid, _bugs(i, per_project), _commits(i, per_project)) for i, pid in enumerate(project_ids)]
        total = sum(len(b) + len(c) for _, b, c in data)
        figures: dict[str, Any] = {"rows_per_pass": total}
        for label in ("new", "unchanged"):
            written = 0
            started = time.perf_counter()
            for project_id, bugs, commits in data:
                with conn.cursor() as cursor:
                    written += loader.upsert_rows(cursor, loader.BUGS, bugs, project_id=project_id)
                    written += loader.upsert_rows(cursor, loader.COMMITS, commits, project_id=project_id)
                conn.commit()
            elapsed = time.perf_counter() - started
            figures[f"{label}_s"] = round(elapsed, 3)
            figures[f"{label}_rows_per_s"] = round(total / elapsed, 1)
            figures[f"{label}_written"] = written
        figures["rows"] = figures["new_written"]
    return figures
