"""Incremental sync equals a fresh full sync, across a seeded sequence of GitHub changes, and after crashes.

These run the sync in-process (github_sync.sync.runner: the same functions the DAG tasks
call) so that 50+ incremental runs fit in a test; the DAG wiring itself is tested in
tests/dags/test_incremental_sync.py.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from github_sim import Simulator
from github_sync.store import loader
from github_sync.sync.runner import run_sync
from tests.sync.conftest import make_hook
from tests.sync.fingerprint import differences, live_content

OWNER = "acme"
pytestmark = pytest.mark.simulator(repos=14, seed=11)
LABEL_CHOICES = ["bug", "critical", "severity: high", "P2", "blocker", "security", "documentation", "wip"]


def mutate(sim: Simulator, rng: random.Random, step: int, *, remove_closed: bool = True) -> str:
    """Apply one random GitHub change of the kinds a real organisation sees; return what it was.

    ``remove_closed=False`` deletes and transfers open issues only: a closed one leaves no
    trace in any signal an incremental run reads (GitHub's open count does not change) and
    waits for the rolling reconciliation (tests/sync/test_change_signals.py runs it at its
    default), or for the webhook that reports it at once.
    """
    state = sim.state
    repos = [r for r in state.repos() if not r.archived]
    repo = rng.choice(repos)
    issues = [i for i in repo.issues.values() if not i.is_pr]
    removable = issues if remove_closed else [i for i in issues if i.state == "open"]
    open_prs = [i for i in repo.issues.values() if i.is_pr and i.state == "open"]
    kind = rng.choice(
        ["create", "create", "edit", "close", "reopen", "label", "delete", "transfer", "open_pr", "merge", "push",
         "push", "rename", "archive", "create_repo", "delete_repo"]
    )  # fmt: skip
    if (
        kind == "create"
        or (kind in ("edit", "close", "reopen", "label") and not issues)
        or (kind in ("delete", "transfer") and not removable)
    ):
        state.create_issue(
            repo.name, f"step {step}", body="found\x00 a bug", labels=rng.sample(LABEL_CHOICES, 2)
        )
        return f"create issue in {repo.name}"
    if kind == "edit":
        issue = rng.choice(issues)
        state.edit_issue(repo.name, issue.number, title=f"{issue.title} (edited {step})")
        return f"edit {repo.name}#{issue.number}"
    if kind == "close":
        issue = rng.choice(issues)
        state.close_issue(repo.name, issue.number)
        return f"close {repo.name}#{issue.number}"
    if kind == "reopen":
        issue = rng.choice(issues)
        state.reopen_issue(repo.name, issue.number)
        return f"reopen {repo.name}#{issue.number}"
    if kind == "label":
        issue = rng.choice(issues)
        state.label_issue(repo.name, issue.number, rng.sample(LABEL_CHOICES, rng.randint(0, 3)))
        return f"label {repo.name}#{issue.number}"
    if kind == "delete":
        issue = rng.choice(removable)
        state.delete_issue(repo.name, issue.number)
        return f"delete {repo.name}#{issue.number}"
    if kind == "transfer":
        issue = rng.choice(removable)
        target = rng.choice([r for r in repos if r is not repo] or [repo])
        if target is repo:
            return "no-op"
        state.transfer_issue(repo.name, issue.number, target.name)
        return f"transfer {repo.name}#{issue.number} to {target.name}"
    if kind == "open_pr":
        state.open_pull_request(repo.name, f"feature {step}", draft=rng.random() < 0.3)
        return f"open PR in {repo.name}"
    if kind == "merge" and open_prs:
        pr = rng.choice(open_prs)
        state.merge_pull_request(repo.name, pr.number)
        return f"merge {repo.name}#{pr.number}"
    if kind == "rename":
        state.rename_repository(repo.name, f"{repo.name}-r{step}")
        return f"rename {repo.name}"
    if kind == "archive" and len(repos) > 4:
        state.archive_repository(repo.name)
        return f"archive {repo.name}"
    if kind == "create_repo":
        state.create_repository(f"new-{step}", auto_init=True)
        return f"create repository new-{step}"
    if kind == "delete_repo" and len(repos) > 4:
        state.delete_repository(repo.name)
        return f"delete repository {repo.name}"
    state.push_commits(repo.name, n=rng.randint(1, 3), message=f"step {step}")
    return f"push to {repo.name}"


def full_sync_content(sim: Simulator, make_database: Callable[[], str], as_of: datetime) -> dict[str, Any]:
    """What a fresh full sync of the simulator's current state writes into an empty database."""
    url = make_database()
    with psycopg.connect(url) as conn:
        run_sync(make_hook(sim, url), conn, owner=OWNER, as_of=as_of, incremental=False)
        return live_content(conn, as_of.date())


def test_incremental_runs_converge_to_a_full_sync(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str, make_database: Callable[[], str]
) -> None:
    hook = make_hook(sim, pg_database)
    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=False)
    rng = random.Random(2026)
    steps = 60
    history: list[str] = []
    for step in range(steps):
        for _ in range(rng.randint(1, 3)):
            history.append(mutate(sim, rng, step, remove_closed=False))
        # Every setting at its default: the organisation-wide signals, the open counts and the
        # rolling reconciliation's slice of the hour, as the hourly DAG runs them.
        as_of = datetime.now(UTC)
        run_sync(hook, pg_conn, owner=OWNER, as_of=as_of, incremental=True)
        if step % 20 == 19:  # compare along the way, not only at the end
            diff = differences(
                live_content(pg_conn, as_of.date()), full_sync_content(sim, make_database, as_of)
            )
            assert diff == {}, f"after step {step}: {diff}\nchanges: {history}"
    assert len(history) >= steps


def test_with_every_repository_reconciled_each_run_closed_removals_converge_too(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str, make_database: Callable[[], str]
) -> None:
    # Deletions and transfers of closed issues as well: what the rolling reconciliation catches
    # (reconcile_every=1 here reconciles every repository in every run, as a day of hourly runs does).
    hook = make_hook(sim, pg_database)
    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=False)
    rng = random.Random(2027)
    history = [mutate(sim, rng, step) for step in range(20) for _ in range(2)]
    as_of = datetime.now(UTC)
    run_sync(hook, pg_conn, owner=OWNER, as_of=as_of, incremental=True, reconcile_every=1)
    diff = differences(live_content(pg_conn, as_of.date()), full_sync_content(sim, make_database, as_of))
    assert diff == {}, f"{diff}\nchanges: {history}"


class Crash(RuntimeError):
    """Stands in for a worker killed mid-run."""


def test_a_run_killed_between_or_inside_repositories_loses_nothing(
    sim: Simulator,
    pg_conn: psycopg.Connection,
    pg_database: str,
    make_database: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = make_hook(sim, pg_database)
    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=False)
    rng = random.Random(7)
    for step in range(12):
        mutate(sim, rng, step)

    # 1. Killed between repositories: the third changed repository never starts.
    started: list[str] = []

    def crash_before_third(target: Any) -> None:
        started.append(target.full_name)
        if len(started) == 3:
            raise Crash("worker killed between repositories")

    with pytest.raises(Crash):
        run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=True,
                 before_repository=crash_before_third)  # fmt: skip

    # 2. Killed inside a repository: after its rows were upserted, before its metrics and cursors.
    # Every metrics write (a synced repository's and a carried-forward one's) goes through it.
    real_upsert_metrics = loader.upsert_metrics
    calls = {"n": 0}

    def crash_in_metrics(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Crash("worker killed inside a repository")
        return real_upsert_metrics(*args, **kwargs)

    monkeypatch.setattr(loader, "upsert_metrics", crash_in_metrics)
    with pytest.raises(Crash):
        run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=True)
    monkeypatch.setattr(loader, "upsert_metrics", real_upsert_metrics)
    pg_conn.rollback()

    # The next, uninterrupted run redoes what was not committed and ends where a full sync would.
    as_of = datetime.now(UTC)
    run_sync(hook, pg_conn, owner=OWNER, as_of=as_of, incremental=True, reconcile_every=1)
    assert (
        differences(live_content(pg_conn, as_of.date()), full_sync_content(sim, make_database, as_of)) == {}
    )
