"""An incremental run stores pushed commits even when their dates are older than its cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from github_sim import Simulator
from github_sync.sync.runner import run_sync
from tests.sync.conftest import make_hook


def test_a_merged_branch_of_older_commits_is_stored(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    now = datetime.now(UTC)
    repo = next(
        r for r in sorted(sim.state.repos(), key=lambda r: r.name)
        if not r.archived and len(r.commits) > 150 and r.commits[0].date > now - timedelta(days=60)
    )  # fmt: skip
    hook = make_hook(sim, pg_database)
    run_sync(hook, pg_conn, owner="acme", as_of=now, incremental=False, repos=[repo.name])
    cursor_before = repo.commits[0].date

    # A branch of more than a page of commits made days before the last sync's newest
    # commit, merged now: every page of the new commits is "older than the cursor".
    shas = sim.state.push_commits(repo.name, n=150, message="old work")
    with sim.state.editing_repository(repo.name):
        for offset, commit in enumerate(c for c in repo.commits if c.sha in shas):
            commit.date = cursor_before - timedelta(days=2, minutes=offset)

    run_sync(hook, pg_conn, owner="acme", as_of=datetime.now(UTC), incremental=True, repos=[repo.name])

    stored = {sha for (sha,) in pg_conn.execute("SELECT sha FROM commits WHERE sha = ANY(%s)", (shas,))}
    assert stored == set(shas)
    count = pg_conn.execute(
        "SELECT m.commits_count FROM project_metrics m JOIN projects p ON p.id = m.project_id "
        "WHERE p.github_id = %s ORDER BY m.date DESC LIMIT 1",
        (repo.id,),
    ).fetchone()
    assert count == (len(repo.commits),)
