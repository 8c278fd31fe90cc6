"""Change detection whose cost follows the changed repositories: owner-wide signals, then probes.

In-process runs (github_sync.sync.runner) against the simulator, which follows GitHub's
documentation for every signal used: the organisation's repository listing (``pushed_at``,
``open_issues_count``), the organisation's issue listing (``since``) and the ``Date`` header.
Each kind of change must be found, only the changed repositories synced, and the result
equal a fresh full sync.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from github_sim import Simulator
from github_sim.records import Repo
from github_sync.sync.change_detection import DEFAULT_RECONCILE_EVERY, detect_changes, reconciliation_slot
from github_sync.sync.discovery import discover_owners
from github_sync.sync.runner import run_sync
from tests.sync.conftest import make_hook
from tests.sync.fingerprint import differences, live_content

OWNER = "acme"
pytestmark = pytest.mark.simulator(repos=20, seed=4)
REPO_ISSUES = "GET /repos/{owner}/{repo}/issues"
REPO_COMMITS = "GET /repos/{owner}/{repo}/commits"
ORG_ISSUES = "GET /orgs/{org}/issues"


def detect(sim: Simulator, hook: Any, conn: psycopg.Connection, **kwargs: Any) -> Any:
    """List and detect as the incremental DAG's first task does; return the detection."""
    as_of = kwargs.pop("as_of", datetime.now(UTC))
    discoveries = discover_owners(hook, conn, owners=[OWNER], as_of=as_of)
    targets = [t for d in discoveries for t in d.targets]
    organisations = [d.owner for d in discoveries if d.owner_type == "Organization"]
    return detect_changes(hook, conn, targets, as_of=as_of, organisations=organisations, **kwargs)


def full_sync_content(sim: Simulator, make_database: Callable[[], str], as_of: datetime) -> dict[str, Any]:
    url = make_database()
    with psycopg.connect(url) as conn:
        run_sync(make_hook(sim, url), conn, owner=OWNER, as_of=as_of, incremental=False)
        return live_content(conn, as_of.date())


def multi_page_repo(sim: Simulator) -> Any:
    return max((r for r in sim.state.repos() if not r.archived), key=lambda r: len(r.issues))


def test_an_unchanged_organisation_costs_one_request_and_probes_no_repository(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    hook = make_hook(sim, pg_database)
    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=False)
    sim.reset_stats()
    as_of = datetime.now(UTC)

    detection = detect(sim, hook, pg_conn, as_of=as_of)

    assert detection.changed == []
    assert detection.organisation_signals[OWNER] is not None
    stats = sim.stats()
    by_endpoint = stats["by_endpoint"]
    assert by_endpoint.get(ORG_ISSUES) == 1
    assert by_endpoint.get(REPO_COMMITS, 0) == 0  # pushed_at answered "nothing pushed" for all
    # The only per-repository issue requests are the rolling reconciliation's walks of its slice.
    slot = reconciliation_slot(as_of, DEFAULT_RECONCILE_EVERY)
    ids = dict(pg_conn.execute("SELECT full_name, id FROM projects").fetchall())
    walked = [r for r in sim.state.repos() if ids[f"acme/{r.name}"] % DEFAULT_RECONCILE_EVERY == slot]
    assert by_endpoint.get(REPO_ISSUES, 0) == sum(max(1, math.ceil(len(r.issues) / 100)) for r in walked)
    assert stats["budget_spent"] == 1  # the organisation's issue listing; every other answer was a 304


CHANGES: dict[str, Callable[[Simulator], set[str]]] = {}


def change(kind: str) -> Callable[[Callable[[Simulator], set[str]]], Callable[[Simulator], set[str]]]:
    def register(apply: Callable[[Simulator], set[str]]) -> Callable[[Simulator], set[str]]:
        CHANGES[kind] = apply
        return apply

    return register


def quiet_repo(sim: Simulator, index: int = 0) -> Any:
    """A live repository with closed and open issues, not the multi-page one."""
    big = multi_page_repo(sim)
    candidates = [
        r for r in sorted(sim.state.repos(), key=lambda r: r.name)
        if not r.archived and r is not big and any(not i.is_pr for i in r.issues.values())
    ]  # fmt: skip
    return candidates[index]


def some_issue(repo: Any, state: str | None = None) -> Any:
    return next(
        i for i in sorted(repo.issues.values(), key=lambda i: i.number)
        if not i.is_pr and (state is None or i.state == state)
    )  # fmt: skip


@change("edit")
def _edit(sim: Simulator) -> set[str]:
    repo = quiet_repo(sim)
    issue = some_issue(repo)
    sim.state.edit_issue(repo.name, issue.number, title=f"{issue.title} (edited)")
    return {repo.name}


@change("label")
def _label(sim: Simulator) -> set[str]:
    repo = quiet_repo(sim)
    sim.state.label_issue(repo.name, some_issue(repo).number, ["bug", "critical"])
    return {repo.name}


@change("close")
def _close(sim: Simulator) -> set[str]:
    repo = multi_page_repo(sim)
    sim.state.close_issue(repo.name, some_issue(repo, "open").number)
    return {repo.name}


@change("delete an open issue of a multi-page repository")
def _delete_open(sim: Simulator) -> set[str]:
    repo = multi_page_repo(sim)
    sim.state.delete_issue(repo.name, some_issue(repo, "open").number)
    return {repo.name}


@change("transfer an open issue")
def _transfer(sim: Simulator) -> set[str]:
    source, target = multi_page_repo(sim), quiet_repo(sim, 1)
    sim.state.transfer_issue(source.name, some_issue(source, "open").number, target.name)
    return {source.name, target.name}


@change("open and merge a pull request")
def _merge(sim: Simulator) -> set[str]:
    repo = quiet_repo(sim, 2)
    pr = sim.state.open_pull_request(repo.name, "feature")
    sim.state.merge_pull_request(repo.name, int(pr["number"]))
    return {repo.name}


@change("push")
def _push(sim: Simulator) -> set[str]:
    repo = quiet_repo(sim, 3)
    sim.state.push_commits(repo.name, n=2, message="work")
    return {repo.name}


@change("rename")
def _rename(sim: Simulator) -> set[str]:
    repo = quiet_repo(sim, 4)
    sim.state.rename_repository(repo.name, f"{repo.name}-renamed")
    return {f"{repo.name}"}


@pytest.mark.parametrize("kind", list(CHANGES))
def test_each_kind_of_change_is_found_and_only_its_repositories_are_synced(
    kind: str, sim: Simulator, pg_conn: psycopg.Connection, pg_database: str, make_database: Callable[[], str]
) -> None:
    hook = make_hook(sim, pg_database)
    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=False)
    expected = {f"acme/{name}" for name in CHANGES[kind](sim)}

    detection = detect(sim, hook, pg_conn, reconcile_every=10_000)  # no reconciliation slice: signals only
    assert {t.full_name for t in detection.changed} == expected, detection.reasons
    assert detection.organisation_signals[OWNER] is not None

    as_of = datetime.now(UTC)
    run_sync(hook, pg_conn, owner=OWNER, as_of=as_of, incremental=True, reconcile_every=10_000)
    assert (
        differences(live_content(pg_conn, as_of.date()), full_sync_content(sim, make_database, as_of)) == {}
    )


def test_a_deleted_closed_issue_is_reconciled_within_a_day_of_hourly_runs_at_the_default_setting(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    hook = make_hook(sim, pg_database)
    start = datetime.now(UTC)
    run_sync(hook, pg_conn, owner=OWNER, as_of=start, incremental=False)
    repo = multi_page_repo(sim)
    assert len(repo.issues) > 100  # its issue listing spans pages: no first page shows the deletion
    closed = some_issue(repo, "closed")
    sim.state.delete_issue(repo.name, closed.number)

    def live() -> bool:  # stored, and not tombstoned
        row = pg_conn.execute("SELECT removed_at FROM bugs WHERE github_id = %s", (closed.id,)).fetchone()
        assert row is not None
        return row[0] is None

    (project_id,) = pg_conn.execute(
        "SELECT id FROM projects WHERE full_name = %s", (f"acme/{repo.name}",)
    ).fetchone()
    tombstoned_at = None
    for hour in range(1, DEFAULT_RECONCILE_EVERY + 1):
        as_of = start + timedelta(hours=hour)
        run_sync(hook, pg_conn, owner=OWNER, as_of=as_of, incremental=True)  # reconcile_every at its default
        if not live():
            tombstoned_at = as_of
            break
    assert tombstoned_at is not None, "still live after a day of hourly runs"
    assert reconciliation_slot(tombstoned_at, DEFAULT_RECONCILE_EVERY) == project_id % DEFAULT_RECONCILE_EVERY


def test_where_github_refuses_the_organisation_listing_every_repository_is_probed(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    hook = make_hook(sim, pg_database)
    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=False)
    expected = {f"acme/{name}" for name in _edit(sim)}
    sim.faults.fail_paths = {r"^/orgs/acme/issues": 403}
    sim.reset_stats()

    detection = detect(sim, hook, pg_conn, reconcile_every=10_000)

    assert {t.full_name for t in detection.changed} == expected
    assert detection.organisation_signals == {OWNER: None}
    assert sim.stats()["by_endpoint"].get(REPO_ISSUES) == len(sim.state.repos())
    assert any("refused the issue listing of organisation acme" in r.getMessage() for r in caplog.records)


def test_a_deleted_open_issue_is_found_by_re_reading_only_the_open_items_it_could_be(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    hook = make_hook(sim, pg_database)
    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=False)
    repo = multi_page_repo(sim)
    gone = some_issue(repo, "open")
    sim.state.delete_issue(repo.name, gone.number)
    sim.reset_stats()

    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=True, reconcile_every=10_000)

    row = pg_conn.execute("SELECT removed_reason FROM bugs WHERE github_id = %s", (gone.id,)).fetchone()
    assert row == ("deleted",)  # GitHub answered 410 Gone for it
    by_endpoint = sim.stats()["by_endpoint"]
    open_items = sum(1 for i in repo.issues.values() if i.state == "open")
    pages = sum(max(1, math.ceil(len(r.issues) / 100)) for r in [repo])
    # The newest page, the open items' pages, and one issue: not the complete listing.
    assert by_endpoint[REPO_ISSUES] <= 1 + math.ceil(open_items / 100) < pages
    assert by_endpoint["GET /repos/{owner}/{repo}/issues/{issue_number}"] == 1


def test_an_open_count_github_gets_wrong_is_reconciled_once_then_left_alone(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = make_hook(sim, pg_database)
    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=False)
    drifting = quiet_repo(sim)
    # GitHub's open_issues_count is a counter that can disagree with the open items it lists; the
    # simulator counts exactly, so the disagreement is injected here (nothing else can cause it).
    counted = Repo.open_issues_count.fget
    assert counted is not None
    monkeypatch.setattr(Repo, "open_issues_count", property(lambda r: counted(r) + (r is drifting)))
    sim.state.touch_repository(drifting.name)  # its rendered listing entry is cached by version

    first = detect(sim, hook, pg_conn, reconcile_every=10_000)
    assert list(first.reasons) == [f"acme/{drifting.name}"]
    assert first.reasons[f"acme/{drifting.name}"].startswith("open issues and pull requests: GitHub lists")
    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=True, reconcile_every=10_000)

    second = detect(sim, hook, pg_conn, reconcile_every=10_000)
    assert second.changed == []  # the count nothing could explain is remembered, not chased every run


def test_a_push_elsewhere_than_the_default_branch_is_probed_once(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    hook = make_hook(sim, pg_database)
    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=False)
    repo = quiet_repo(sim)
    # A push to another branch moves pushed_at, not the default branch's head.
    with sim.state.editing_repository(repo.name) as edited:
        edited.pushed_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)

    sim.reset_stats()
    assert detect(sim, hook, pg_conn, reconcile_every=10_000).changed == []
    assert sim.stats()["by_endpoint"].get(REPO_COMMITS) == 1
    sim.reset_stats()
    assert detect(sim, hook, pg_conn, reconcile_every=10_000).changed == []
    assert sim.stats()["by_endpoint"].get(REPO_COMMITS, 0) == 0


def test_a_listing_that_does_not_show_what_was_stored_from_its_window_is_not_trusted(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    hook = make_hook(sim, pg_database)
    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=False)
    repo = quiet_repo(sim)
    issue = some_issue(repo, "closed")
    sim.state.edit_issue(repo.name, issue.number, title="edited")
    run_sync(hook, pg_conn, owner=OWNER, as_of=datetime.now(UTC), incremental=True, reconcile_every=10_000)
    # The newest item the store holds of the repository vanishes from every listing.
    sim.state.delete_issue(repo.name, issue.number)

    detection = detect(sim, hook, pg_conn, reconcile_every=10_000)

    assert detection.organisation_signals == {OWNER: None}
    assert any("does not show" in r.getMessage() for r in caplog.records)
