"""A PR merged without a new updated_at is still seen by the next incremental run."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from github_sim import Simulator
from github_sync.sync.runner import run_sync
from tests.sync.conftest import make_hook


def test_a_quietly_merged_pull_request_is_re_read(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    # A repository whose issue listing spans pages, so the incremental run reads only its newest items.
    repo = next(r for r in sim.state.repos() if len(r.issues) > 250 and not r.archived)
    quiet = min(
        (i for i in repo.issues.values() if i.is_pr and i.state == "open"), key=lambda i: i.updated_at
    )
    hook = make_hook(sim, pg_database)
    run_sync(hook, pg_conn, owner="acme", as_of=datetime.now(UTC), incremental=False, repos=[repo.name])

    # GitHub-side: merged, but updated_at unchanged (the path the issue text warns about) ...
    with sim.state.editing_repository(repo.name):
        quiet.state, quiet.merged_at, quiet.closed_at = "closed", datetime.now(UTC), datetime.now(UTC)
    # ... while something else in the repository changes, so the repository is probed as changed.
    sim.state.create_issue(repo.name, "unrelated change")

    run_sync(hook, pg_conn, owner="acme", as_of=datetime.now(UTC), incremental=True, repos=[repo.name])

    state = pg_conn.execute(
        "SELECT r.state FROM pull_requests r JOIN projects p ON p.id = r.project_id WHERE p.github_id = %s "
        "AND r.number = %s",
        (repo.id, quiet.number),
    ).fetchone()
    assert state == ("merged",)
