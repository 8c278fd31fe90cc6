"""github_incremental_sync through dag.test(): near-zero budget when nothing changed, k repositories when k changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from github_sim import Simulator
from github_sync.github.hook import GitHubHook
from github_sync.github.http_cache import PostgresHttpCache
from github_sync.sync.runner import run_sync
from tests.dags.conftest import TEST_TOKEN


def mapped_repositories(conn: psycopg.Connection, run_id: str) -> set[str]:
    rows = conn.execute("SELECT repository FROM sync_repository_runs WHERE run_id = %s", (run_id,)).fetchall()
    return {name for (name,) in rows}


def test_incremental_spends_nothing_when_nothing_changed_and_maps_only_what_changed(
    dagbag: Any, wired: tuple[Simulator, psycopg.Connection], pg_database: str
) -> None:
    sim, conn = wired
    # The full sync before (in-process, same token and ETag cache as the DAG's hook).
    hook = GitHubHook(base_url=sim.url, token=TEST_TOKEN, http_cache=PostgresHttpCache(pg_database))
    run_sync(hook, conn, owner="acme", as_of=datetime.now(UTC), incremental=False)
    dag = dagbag.get_dag("github_incremental_sync")

    # 1. Nothing changed.
    sim.reset_stats()
    run = dag.test(run_conf={"owner": "acme"})
    assert run.state == "success"
    idle_budget = sim.stats()["budget_spent"]
    print(f"\nincremental, nothing changed: {idle_budget} budget-counted requests, "
          f"{sim.stats()['requests_total']} HTTP requests ({sim.stats()['not_modified']} answered 304)")  # fmt: skip
    # One request: the organisation's issue listing, which answers for all 180 repositories (its
    # `since` moves with the watermarks, so it is never a 304); every other answer is a 304, and
    # empty repositories are not even asked again. The acceptance allows 2.
    assert idle_budget == 1
    assert mapped_repositories(conn, run.run_id) == set()
    records, metadata = conn.execute(
        "SELECT records_imported, metadata FROM import_logs WHERE metadata->>'run_id' = %s", (run.run_id,)
    ).fetchone()
    assert records == 0
    assert metadata["mode"] == "incremental" and metadata["state"] == "success"
    assert metadata["repositories"]["mapped"] == 0
    assert metadata["repositories_probed"] == len(sim.state.repos())  # archived ones included by default
    assert metadata["budget_spent"] == idle_budget

    # 2. k repositories change, in every way a repository changes.
    small = sorted(
        (r for r in sim.state.repos() if not r.archived and r.commits and 3 < len(r.issues) < 60),
        key=lambda r: r.name,
    )
    state = sim.state
    a, b, c, d, e, g = small[:5] + small[6:7]
    state.create_issue(a.name, "New crash on start", labels=["bug", "P1"])
    issue_b = next(i for i in b.issues.values() if not i.is_pr)
    state.label_issue(b.name, issue_b.number, ["security", "critical"])
    issue_c = next(i for i in c.issues.values() if not i.is_pr and i.state == "open")
    state.close_issue(c.name, issue_c.number)
    pr_d = next((i for i in d.issues.values() if i.is_pr and i.state == "open"), None)
    if pr_d is None:
        state.open_pull_request(d.name, "Feature")
        pr_d = max((i for i in d.issues.values() if i.is_pr), key=lambda i: i.number)
    state.merge_pull_request(d.name, pr_d.number)
    state.push_commits(e.name, n=3)
    # An open one: a deleted closed issue changes no signal the run reads (GitHub's open count
    # stays); the rolling reconciliation finds it within a day (tests/sync/test_change_signals.py).
    f = next(
        r for r in small[5:6] + small[7:] if any(not i.is_pr and i.state == "open" for i in r.issues.values())
    )
    issue_f = next(i for i in f.issues.values() if not i.is_pr and i.state == "open")
    state.delete_issue(f.name, issue_f.number)
    state.rename_repository(g.name, f"{g.name}-renamed")
    changed = {f"acme/{r.name}" for r in (a, b, c, d, e, f, g)}
    k = len(changed)

    sim.reset_stats()
    run = dag.test(run_conf={"owner": "acme"})
    assert run.state == "success"
    budget = sim.stats()["budget_spent"]
    print(f"incremental, {k} repositories changed: {budget} budget-counted requests (limit 2 + 5k = {2 + 5 * k}), "
          f"by endpoint {sim.stats()['by_endpoint']}")  # fmt: skip
    assert mapped_repositories(conn, run.run_id) == changed
    assert budget <= 2 + 5 * k

    def one(sql: str, *params: object) -> Any:
        return conn.execute(sql, params).fetchone()

    assert one("SELECT count(*) FROM bugs b JOIN projects p ON p.id = b.project_id "
               "WHERE p.name = %s AND b.title = 'New crash on start'", a.name) == (1,)  # fmt: skip
    assert one("SELECT labels, severity FROM bugs WHERE github_id = %s", issue_b.id) == (
        ["security", "critical"],
        "critical",
    )
    assert one("SELECT status FROM bugs WHERE github_id = %s", issue_c.id) == ("closed",)
    assert one("SELECT r.state FROM pull_requests r JOIN projects p ON p.id = r.project_id "
               "WHERE p.name = %s AND r.number = %s", d.name, pr_d.number) == ("merged",)  # fmt: skip
    assert one("SELECT m.commits_count FROM project_metrics m JOIN projects p ON p.id = m.project_id "
               "WHERE p.name = %s", e.name) == (len(e.commits),)  # fmt: skip
    assert one("SELECT removed_reason IS NOT NULL FROM bugs WHERE github_id = %s", issue_f.id) == (True,)
    assert one("SELECT full_name FROM projects WHERE github_id = %s", g.id) == (f"acme/{g.name}",)
