"""github_full_sync and github_repo_sync through dag.test() against the simulator and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from github_sim import Simulator, SimulatorConfig
from tests.dags.conftest import TEST_TOKEN, connect_airflow_to

log = logging.getLogger(__name__)

TABLES = ("projects", "bugs", "pull_requests", "commits", "project_metrics", "import_logs")


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


def content_fingerprint(conn: psycopg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every synced table's rows, without the sync's own bookkeeping columns."""
    queries = {
        "projects": "SELECT github_id, full_name, description, github_url, language, tags, stars, forks, "
        "open_issues, status, last_commit, created_at, updated_at, removed_at FROM projects",
        "bugs": "SELECT github_id, project_id, bug_number, title, description, severity, status, sla_hours, "
        "priority_score, is_blocker, labels, assignees, created_at, updated_at, resolved_at, removed_at FROM bugs",
        "pull_requests": "SELECT project_id, number, title, state, draft, author, labels, created_at, updated_at, "
        "closed_at, merged_at, removed_at FROM pull_requests",
        "commits": "SELECT project_id, sha, author_login, author_name, message, committed_at FROM commits",
        "project_metrics": "SELECT project_id, date, commits_count, contributors, lines_of_code, tech_stack, "
        "health_score, open_issues, has_ci, has_tests FROM project_metrics",
    }
    return {table: sorted(conn.execute(sql).fetchall(), key=repr) for table, sql in queries.items()}


def expected_from_simulator(sim: Simulator, as_of: Any, commits_days: int = 90) -> dict[str, int]:
    """Row counts the simulator's data implies (every repository synced, archived included)."""
    repos = sim.state.repos()
    window_start = as_of - timedelta(days=commits_days)
    return {
        "projects": len(repos),
        "bugs": sum(1 for r in repos for i in r.issues.values() if not i.is_pr),
        "pull_requests": sum(1 for r in repos for i in r.issues.values() if i.is_pr),
        "commits": sum(1 for r in repos for c in r.commits if c.date >= window_start),
        "project_metrics": len(repos),
        "import_logs": 1,
    }


def test_full_sync_on_an_unmigrated_database_with_default_params_holds_what_github_holds_and_a_rerun_is_free(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, simulator: Simulator, empty_database: str
) -> None:
    # Every Param at its default (owner "acme" from the parse-time default, archived repositories
    # included), on a database where `github-sync migrate` never ran: the first task migrates it.
    sim = simulator
    connect_airflow_to(monkeypatch, sim, empty_database)
    dag = dagbag.get_dag("github_full_sync")

    run = dag.test()
    assert run.state == "success"
    conn = psycopg.connect(empty_database)
    first_budget = sim.stats()["budget_spent"]
    as_of = run.run_after
    counts = table_counts(conn)
    assert counts == expected_from_simulator(sim, as_of)

    # Field by field, a sample of issues, PRs, commits and repositories against the simulator's own objects.
    for repo in sim.state.repos()[::17]:
        project = conn.execute(
            "SELECT id, full_name, github_url, stars, status, tags FROM projects WHERE github_id = %s",
            (repo.id,),
        ).fetchone()
        assert project[1:] == (
            f"acme/{repo.name}",
            f"https://github.com/acme/{repo.name}",
            repo.stargazers,
            "shipped" if repo.archived else "active",
            repo.topics,
        )
        for issue in list(repo.issues.values())[:5]:
            if issue.is_pr:
                row = conn.execute(
                    "SELECT title, state, draft, author, merged_at, created_at, updated_at FROM pull_requests "
                    "WHERE project_id = %s AND number = %s",
                    (project[0], issue.number),
                ).fetchone()
                state = "merged" if issue.merged_at else issue.state
                assert row == (
                    issue.title, state, issue.draft, issue.user.login, issue.merged_at, issue.created_at,
                    issue.updated_at,
                )  # fmt: skip
            else:
                row = conn.execute(
                    "SELECT bug_number, title, status = 'closed', labels, created_at, updated_at, resolved_at "
                    "FROM bugs WHERE github_id = %s",
                    (issue.id,),
                ).fetchone()
                assert row == (
                    f"GH-{issue.number}", issue.title, issue.state == "closed", [label.name for label in issue.labels],
                    issue.created_at, issue.updated_at, issue.closed_at if issue.state == "closed" else None,
                )  # fmt: skip
        for commit in repo.commits[:3]:
            if commit.date < as_of - timedelta(days=90):
                continue
            row = conn.execute(
                "SELECT author_login, author_name, committed_at FROM commits WHERE project_id = %s AND sha = %s",
                (project[0], commit.sha),
            ).fetchone()
            assert row == (commit.author.login if commit.author else None, commit.author_name, commit.date)
        metrics = conn.execute(
            "SELECT commits_count, date FROM project_metrics WHERE project_id = %s", (project[0],)
        ).fetchone()
        assert metrics == (len(repo.commits), as_of.date())

    log_row = conn.execute(
        "SELECT records_imported, records_failed, errors, metadata FROM import_logs"
    ).fetchone()
    records, failed, errors, metadata = log_row
    assert failed == 0 and errors == []
    assert records == sum(v for k, v in counts.items() if k not in ("projects", "import_logs"))
    assert metadata["mode"] == "full" and metadata["state"] == "success"
    assert metadata["repositories"]["ok"] == len(sim.state.repos())
    assert metadata["budget_spent"] == first_budget

    # Second run: same rows, and conditional requests make it (almost) free.
    conn.execute("UPDATE projects SET complexity = 3, client_appeal = 8")
    conn.commit()
    before = content_fingerprint(conn)
    sim.reset_stats()
    rerun = dag.test()
    assert rerun.state == "success"
    second_budget = sim.stats()["budget_spent"]
    print(f"\nfull sync budget: first run {first_budget}, second run {second_budget} "
          f"({sim.stats()['not_modified']} answered 304)")  # fmt: skip
    assert content_fingerprint(conn) == before
    assert second_budget <= 2
    assert conn.execute("SELECT DISTINCT complexity, client_appeal FROM projects").fetchall() == [(3, 8)]
    second_log = conn.execute(
        "SELECT records_imported, metadata FROM import_logs ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert second_log[0] == 0
    assert second_log[1]["budget_spent"] == second_budget
    conn.close()


@pytest.fixture
def failing_simulator() -> Any:
    with Simulator(SimulatorConfig(owner="acme", repos=12, seed=3)) as sim:
        yield sim


def test_a_repository_failing_forever_fails_alone(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, failing_simulator: Simulator, pg_conn: psycopg.Connection,
    pg_database: str,
) -> None:  # fmt: skip
    sim = failing_simulator
    connect_airflow_to(monkeypatch, sim, pg_database)
    victim = sorted(r.name for r in sim.state.repos() if not r.archived)[1]
    sim.faults.fail_paths = {rf"^/repos/acme/{victim}/issues": 502}
    dag = dagbag.get_dag("github_full_sync")
    dag.task_dict["sync_repository"].retries = 0  # the hook's own retries still apply

    run = dag.test(run_conf={"owner": "acme"})

    # The documented rule: a run with more failed repositories than failure_tolerance (0) fails.
    assert run.state == "failed"
    synced = {
        r
        for (r,) in pg_conn.execute(
            "SELECT p.full_name FROM projects p JOIN project_metrics m ON m.project_id = p.id"
        )
    }
    expected = {f"acme/{r.name}" for r in sim.state.repos()} - {f"acme/{victim}"}  # archived ones too
    assert synced == expected
    victim_rows = pg_conn.execute(
        "SELECT count(*) FROM bugs b JOIN projects p ON p.id = b.project_id WHERE p.name = %s", (victim,)
    ).fetchone()[0]
    assert victim_rows == 0  # its transaction was rolled back whole
    records_failed, errors, metadata = pg_conn.execute(
        "SELECT records_failed, errors, metadata FROM import_logs"
    ).fetchone()
    assert metadata["state"] == "failed"
    assert metadata["failed_repositories"] == [f"acme/{victim}"]
    assert records_failed == 0  # the issues listing failed before any of its rows was read
    assert len(errors) == 1 and f"acme/{victim}" in errors[0] and "502" in errors[0]
    assert TEST_TOKEN not in repr(errors) + repr(metadata)

    # With a tolerance of one failed repository the same situation is a success with warnings.
    run = dag.test(run_conf={"owner": "acme", "failure_tolerance": 1})
    assert run.state == "success"
    metadata = pg_conn.execute("SELECT metadata FROM import_logs ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert metadata["state"] == "success" and metadata["failed_repositories"] == [f"acme/{victim}"]


def test_single_repository_sync_spends_at_most_six_requests(
    dagbag: Any, wired: tuple[Simulator, psycopg.Connection]
) -> None:
    sim, conn = wired
    repo = next(
        r for r in sorted(sim.state.repos(), key=lambda r: r.name)
        if 20 < len(r.issues) < 100 and r.commits and not r.archived
    )  # fmt: skip
    conn.execute("INSERT INTO projects (github_id, owner, name, full_name, github_url, complexity, client_appeal) "
                 "VALUES (%s, 'acme', %s, %s, %s, 5, 6)",
                 (repo.id, repo.name, f"acme/{repo.name}", f"https://github.com/acme/{repo.name}"))  # fmt: skip
    conn.commit()
    sim.reset_stats()
    run = dagbag.get_dag("github_repo_sync").test(run_conf={"repository": f"acme/{repo.name}"})
    assert run.state == "success"
    stats = sim.stats()
    print(f"\ngithub_repo_sync of acme/{repo.name} ({len(repo.issues)} issues+PRs, {len(repo.commits)} commits): "
          f"{stats['requests_total']} requests, by endpoint {stats['by_endpoint']}")  # fmt: skip
    assert stats["requests_total"] <= 6
    assert conn.execute("SELECT count(*) FROM bugs").fetchone()[0] + conn.execute(
        "SELECT count(*) FROM pull_requests"
    ).fetchone()[0] == len(repo.issues)
    assert conn.execute("SELECT complexity, client_appeal, stars FROM projects").fetchone() == (
        5,
        6,
        repo.stargazers,
    )
    assert conn.execute("SELECT metadata->>'mode' FROM import_logs").fetchone() == ("repository",)


def test_budget_exhaustion_defers_instead_of_sleeping(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    with Simulator(SimulatorConfig(owner="acme", repos=10, seed=5, reset_interval_s=8)) as sim:
        # A wait longer than 1 s must not be slept through: it becomes a deferral.
        connect_airflow_to(monkeypatch, sim, pg_database, hook_extra={"max_wait_s": 1})
        limit = 5000
        reserve = limit // 10
        sim.set_rate_limit_remaining(TEST_TOKEN, reserve + 12)  # runs out a few repositories in
        dag = dagbag.get_dag("github_full_sync")
        run = dag.test(run_conf={"owner": "acme"})
        assert run.state == "success"
        deferrals = pg_conn.execute("SELECT sum(deferrals) FROM sync_repository_runs").fetchone()[0]
        print(f"\ndeferred repository tasks: {deferrals}")
        assert deferrals >= 1
        synced = pg_conn.execute("SELECT count(*) FROM project_metrics").fetchone()[0]
        assert synced == sum(1 for r in sim.state.repos())  # archived ones included by default
        bugs = pg_conn.execute("SELECT count(*) FROM bugs").fetchone()[0]
        assert bugs == sum(1 for r in sim.state.repos() for i in r.issues.values() if not i.is_pr)
