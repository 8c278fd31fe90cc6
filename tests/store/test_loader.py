"""The store's writes and read-backs against real PostgreSQL.

Upserts: idempotent, column ownership, per-project issue numbers, stale-write guard. Cursors:
what is written is what is read back, for one repository or many. Projects: tombstones of
unlisted repositories, the webhook's lock and last-push update.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from github_sync.store import cursors, loader, projects, synced_rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def project_row(github_id: int = 1, name: str = "alpha", **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "github_id": github_id,
        "owner": "acme",
        "name": name,
        "full_name": f"acme/{name}",
        "description": "a project",
        "github_url": f"https://github.com/acme/{name}",
        "language": "Python",
        "tags": ["airflow", "etl"],
        "stars": 10,
        "forks": 2,
        "open_issues": 3,
        "default_branch": "main",
        "is_fork": False,
        "last_commit": T0,
        "status": "active",
        "created_at": T0 - timedelta(days=100),
        "updated_at": T0,
    }
    row.update(overrides)
    return row


def bug_row(github_id: int, number: int, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "github_id": github_id,
        "bug_number": f"GH-{number}",
        "number": number,
        "title": "It breaks",
        "description": "",
        "severity": "high",
        "status": "pending",
        "sla_hours": 24,
        "priority_score": 80,
        "priority_base": 80,
        "is_blocker": False,
        "labels": ["bug", "severity: high"],
        "assignees": [],
        "author": "octocat",
        "github_url": f"https://github.com/acme/alpha/issues/{number}",
        "created_at": T0,
        "updated_at": T0,
        "resolved_at": None,
    }
    row.update(overrides)
    return row


def test_bug_gh_1_lives_in_two_projects(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        alpha, _ = loader.upsert_project(cur, project_row(1, "alpha"))
        beta, _ = loader.upsert_project(cur, project_row(2, "beta"))
        loader.upsert_rows(cur, loader.BUGS, [bug_row(101, 1)], project_id=alpha)
        loader.upsert_rows(cur, loader.BUGS, [bug_row(202, 1)], project_id=beta)
    pg_conn.commit()
    rows = pg_conn.execute("SELECT project_id, bug_number FROM bugs ORDER BY project_id").fetchall()
    assert rows == [(alpha, "GH-1"), (beta, "GH-1")]


def test_sync_upsert_leaves_dashboard_owned_columns_untouched(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row(1, "alpha"))
    pg_conn.execute("UPDATE projects SET complexity = 7, client_appeal = 9 WHERE id = %s", (project_id,))
    pg_conn.commit()
    with pg_conn.cursor() as cur:
        again, changed = loader.upsert_project(cur, project_row(1, "alpha", stars=99, description="new"))
    pg_conn.commit()
    assert (again, changed) == (project_id, True)
    assert pg_conn.execute(
        "SELECT stars, description, complexity, client_appeal FROM projects WHERE id = %s", (project_id,)
    ).fetchone() == (99, "new", 7, 9)


def test_re_upserting_unchanged_rows_writes_nothing(pg_conn: psycopg.Connection) -> None:
    rows = [bug_row(100 + n, n) for n in range(1, 2501)]  # more than one batch
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        assert loader.upsert_rows(cur, loader.BUGS, rows, project_id=project_id) == 2500
    pg_conn.commit()
    before = pg_conn.execute("SELECT count(*), max(synced_at) FROM bugs").fetchone()
    with pg_conn.cursor() as cur:
        assert loader.upsert_rows(cur, loader.BUGS, rows, project_id=project_id) == 0
        assert loader.upsert_project(cur, project_row())[1] is False
    pg_conn.commit()
    assert pg_conn.execute("SELECT count(*), max(synced_at) FROM bugs").fetchone() == before


def test_an_older_version_never_overwrites_a_newer_one(pg_conn: psycopg.Connection) -> None:
    newer = bug_row(7, 7, title="newer", updated_at=T0 + timedelta(hours=1))
    older = bug_row(7, 7, title="older", updated_at=T0)
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        loader.upsert_rows(cur, loader.BUGS, [newer], project_id=project_id)
        assert loader.upsert_rows(cur, loader.BUGS, [older], project_id=project_id) == 0
    pg_conn.commit()
    assert pg_conn.execute("SELECT title FROM bugs").fetchone() == ("newer",)


def test_pull_request_refs_survive_a_source_without_them(pg_conn: psycopg.Connection) -> None:
    pr = {
        "number": 5, "title": "Add x", "description": "", "state": "open", "draft": False, "author": "a",
        "labels": [], "base_ref": "main", "head_ref": "feature", "additions": 10, "deletions": 2,
        "changed_files": 1, "github_url": "u", "created_at": T0, "updated_at": T0, "closed_at": None,
        "merged_at": None,
    }  # fmt: skip
    from_listing = {
        **pr, "base_ref": None, "head_ref": None, "additions": None, "deletions": None,
        "changed_files": None, "state": "merged", "updated_at": T0 + timedelta(minutes=5),
        "merged_at": T0 + timedelta(minutes=5),
    }  # fmt: skip
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        loader.upsert_rows(cur, loader.PULL_REQUESTS, [pr], project_id=project_id)
        loader.upsert_rows(cur, loader.PULL_REQUESTS, [from_listing], project_id=project_id)
    pg_conn.commit()
    assert pg_conn.execute("SELECT state, base_ref, head_ref, additions FROM pull_requests").fetchone() == (
        "merged",
        "main",
        "feature",
        10,
    )


def test_a_failed_unit_of_work_leaves_no_rows(pg_conn: psycopg.Connection) -> None:
    bad = bug_row(9, 9, severity="catastrophic")  # violates the CHECK constraint
    try:
        with pg_conn.cursor() as cur:
            project_id, _ = loader.upsert_project(cur, project_row())
            loader.upsert_rows(cur, loader.BUGS, [bug_row(8, 8)], project_id=project_id)
            loader.upsert_rows(cur, loader.BUGS, [bad], project_id=project_id)
        pg_conn.commit()
    except psycopg.errors.CheckViolation:
        pg_conn.rollback()
    assert pg_conn.execute("SELECT count(*) FROM projects").fetchone() == (0,)
    assert pg_conn.execute("SELECT count(*) FROM bugs").fetchone() == (0,)


def test_metrics_are_one_row_per_project_and_day(pg_conn: psycopg.Connection) -> None:
    metrics = {
        "commits_count": 10, "contributors": 2, "lines_of_code": 1000, "tech_stack": ["Python"],
        "health_score": 70, "open_issues": 1, "has_ci": True, "has_tests": False,
    }  # fmt: skip
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        loader.upsert_metrics(cur, project_id, date(2026, 1, 1), metrics)
        loader.upsert_metrics(cur, project_id, date(2026, 1, 1), {**metrics, "health_score": 80})
        loader.upsert_metrics(cur, project_id, date(2026, 1, 2), metrics)
    pg_conn.commit()
    assert pg_conn.execute("SELECT date, health_score FROM project_metrics ORDER BY date").fetchall() == [
        (date(2026, 1, 1), 80),
        (date(2026, 1, 2), 70),
    ]


def test_a_removed_repository_gives_its_url_to_the_next_one(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        loader.upsert_project(cur, project_row(1, "alpha"))
        loader.mark_removed(cur, "projects", reason="deleted", removed_at=T0, where={"github_id": 1})
        loader.upsert_project(cur, project_row(2, "alpha"))
    pg_conn.commit()
    rows = pg_conn.execute("SELECT github_id, github_url, removed_reason FROM projects ORDER BY 1").fetchall()
    assert rows == [
        (1, "https://github.com/acme/alpha#removed-1", "deleted"),
        (2, "https://github.com/acme/alpha", None),
    ]


def test_bulk_batches_take_the_copy_path_with_the_same_rules(pg_conn: psycopg.Connection) -> None:
    """Batches of COPY_MIN_ROWS or more are staged with COPY; guards and counts must not change."""
    count = loader.COPY_MIN_ROWS + 100
    newer = [bug_row(10_000 + n, n, title="newer", updated_at=T0 + timedelta(hours=1)) for n in range(count)]
    older = [bug_row(10_000 + n, n, title="older") for n in range(count)]
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        assert loader.upsert_rows(cur, loader.BUGS, newer, project_id=project_id) == count
        assert (
            loader.upsert_rows(cur, loader.BUGS, older, project_id=project_id) == 0
        )  # never older over newer
        assert loader.upsert_rows(cur, loader.BUGS, newer, project_id=project_id) == 0  # unchanged: no write
        changed = [{**row, "status": "closed"} for row in newer[:7]]
        assert loader.upsert_rows(cur, loader.BUGS, changed + newer[7:], project_id=project_id) == 7
    pg_conn.commit()
    assert pg_conn.execute("SELECT count(*), min(title), max(title) FROM bugs").fetchone() == (
        count,
        "newer",
        "newer",
    )
    assert pg_conn.execute("SELECT count(*) FROM bugs WHERE status = 'closed'").fetchone() == (7,)
    # The staging table consumed no ids and left nothing behind.
    assert pg_conn.execute("SELECT max(id) - min(id) + 1 FROM bugs").fetchone() == (count,)


def test_cursors_read_back_what_was_written(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        alpha, _ = loader.upsert_project(cur, project_row(1, "alpha"))
        empty, _ = loader.upsert_project(cur, project_row(2, "empty"))
        never, _ = loader.upsert_project(cur, project_row(3, "never"))
        cursors.write_issues_cursor(cur, alpha, T0)
        cursors.write_commits_cursor(cur, alpha, cursors.CommitsCursor(newest=T0, head="abc"))
        cursors.write_commits_cursor(cur, empty, cursors.CommitsCursor(empty=True, empty_at_push=T0))
    pg_conn.commit()
    with pg_conn.cursor() as cur:
        one = cursors.read_cursors(cur, alpha)
        many = cursors.read_cursors_of(cur, [alpha, empty, never])
    assert (
        one
        == many[alpha]
        == cursors.RepositoryCursors(issues=T0, commits=cursors.CommitsCursor(newest=T0, head="abc"))
    )
    assert many[never] == cursors.RepositoryCursors()  # never synced: empty records, not None
    assert many[empty].commits.still_empty(T0)
    assert not many[empty].commits.still_empty(T0 + timedelta(seconds=1))  # pushed since
    assert not many[alpha].commits.still_empty(T0)
    # The stored documents keep their keys: "empty_at_push" only for an empty repository.
    details = dict(
        pg_conn.execute("SELECT project_id, details FROM sync_cursors WHERE stream = 'commits'").fetchall()
    )
    assert details == {alpha: {"head": "abc"}, empty: {"head": None, "empty_at_push": T0.isoformat()}}


def test_a_cursor_write_replaces_the_previous_one(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        cursors.write_commits_cursor(cur, project_id, cursors.CommitsCursor(empty=True, empty_at_push=None))
        cursors.write_commits_cursor(cur, project_id, cursors.CommitsCursor(newest=T0, head="def"))
        stored = cursors.read_cursors(cur, project_id)
    pg_conn.commit()
    assert stored.commits == cursors.CommitsCursor(newest=T0, head="def")
    assert not stored.commits.empty


def test_unlisted_projects_of_an_owner_are_tombstoned_and_named(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        loader.upsert_project(cur, project_row(1, "alpha"))
        loader.upsert_project(cur, project_row(2, "beta"))
        loader.upsert_project(cur, project_row(3, "gamma", owner="other", full_name="other/gamma"))
        removed = projects.remove_unlisted(
            cur, owner="ACME", listed_github_ids=[1], removed_at=T0, reason="no longer listed for ACME"
        )
        again = projects.remove_unlisted(cur, owner="acme", listed_github_ids=[1], removed_at=T0, reason="x")
    pg_conn.commit()
    assert removed == ("acme/beta",)  # owner compared without case; other owners untouched
    assert again == ()  # already removed
    rows = pg_conn.execute("SELECT github_id, removed_reason FROM projects ORDER BY 1").fetchall()
    assert rows == [(1, None), (2, "no longer listed for ACME"), (3, None)]


def test_stored_project_facts_and_pushes(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row(1, "alpha", stars=5))
        stored = projects.read_project(cur, project_id)
        listed = projects.listed_facts(cur, [project_id, project_id + 1])
    pg_conn.commit()
    open_issues = project_row(1, "alpha")["open_issues"]
    assert stored == projects.StoredProject(
        full_name="acme/alpha", default_branch="main", last_commit=T0, stars=5, language="Python",
        open_issues=open_issues,
    )  # fmt: skip
    assert listed == {project_id: projects.ListedFacts(last_push=T0, open_issues=open_issues)}
    with pg_conn.cursor() as cur, pytest.raises(LookupError):
        projects.read_project(cur, project_id + 1)
    pg_conn.rollback()


def test_a_locked_project_and_its_last_push(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row(1, "alpha"))
        locked = projects.lock_project(cur, 1)
        assert projects.lock_project(cur, 2) is None
        assert projects.set_last_commit(cur, project_id, T0) == 0  # unchanged: not written
        assert projects.set_last_commit(cur, project_id, T0 + timedelta(hours=1)) == 1
    pg_conn.commit()
    assert locked == projects.LockedProject(
        project_id=project_id, updated_at=T0, last_commit=T0, removed_at=None, tags=["airflow", "etl"]
    )
    assert pg_conn.execute("SELECT last_commit FROM projects").fetchone() == (T0 + timedelta(hours=1),)


def test_read_backs_count_live_rows_only(pg_conn: psycopg.Connection) -> None:
    pr = {
        "number": 5, "title": "Add x", "description": "", "state": "open", "draft": False, "author": "a",
        "labels": [], "base_ref": None, "head_ref": None, "additions": None, "deletions": None,
        "changed_files": None, "github_url": "u", "created_at": T0, "updated_at": T0, "closed_at": None,
        "merged_at": None,
    }  # fmt: skip
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        other, _ = loader.upsert_project(cur, project_row(2, "beta"))
        loader.upsert_rows(cur, loader.BUGS, [bug_row(7, 1), bug_row(8, 2), bug_row(9, 3, status="closed")],
                           project_id=project_id)  # fmt: skip
        loader.upsert_rows(cur, loader.PULL_REQUESTS, [pr, {**pr, "number": 6}], project_id=project_id)
        loader.mark_removed(cur, "bugs", reason="deleted", removed_at=T0, where={"github_id": 8})
        loader.mark_removed(cur, "pull_requests", reason="x", removed_at=T0, where={"number": 6})
        loader.upsert_metrics(cur, project_id, date(2026, 1, 1), {
            "commits_count": 10, "contributors": 2, "lines_of_code": 1000, "tech_stack": ["Python"],
            "health_score": 70, "open_issues": 1, "has_ci": True, "has_tests": False,
        })  # fmt: skip
        keys = synced_rows.live_keys_of(cur, [project_id, other])
        open_bugs = synced_rows.open_bug_count(cur, project_id)
        open_pulls = synced_rows.open_pull_numbers(cur, project_id)
        synced = synced_rows.synced_project_ids(cur, [project_id, other])
        last = synced_rows.last_metrics(cur, project_id, ("contributors", "has_ci"))
        none = synced_rows.last_metrics(cur, other, ("contributors",))
    pg_conn.commit()
    assert keys == {
        project_id: synced_rows.LiveKeys(issue_ids=frozenset({7, 9}), pr_numbers=frozenset({5})),
        other: synced_rows.LiveKeys(),
    }
    assert (open_bugs, open_pulls, synced) == (1, {5}, {project_id})
    assert (last, none) == ({"contributors": 2, "has_ci": True}, None)
