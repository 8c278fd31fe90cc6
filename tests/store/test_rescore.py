"""rescore_open_bugs: the age part of open issues' priority, re-scored in SQL against real PostgreSQL.

Rows are written the way the sync writes them (normalize_issue, then the BUGS upsert), and the
SQL result is compared with github_sync.transform.scoring.priority_score for the same issue.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from github_sync.store import loader
from github_sync.transform import scoring
from github_sync.transform.normalizer import normalize_issue
from tests.store.test_loader import project_row

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WEEK = timedelta(weeks=1)
US = timedelta(microseconds=1)

#: Label sets covering the range of priority_base: 25 (lowest), 70 (default), 95 (crosses 100
#: after 5 weeks, so the clamp matters), 165 (always clamped).
LABEL_SETS: tuple[tuple[str, ...], ...] = (
    (),
    ("severity: low", "documentation", "good first issue"),
    ("bug", "security"),
    ("P1",),
    ("P0", "blocker", "security", "regression"),
)


def issue_json(
    github_id: int,
    *,
    created_at: datetime,
    labels: Sequence[str] = (),
    state: str = "open",
    closed_at: datetime | None = None,
    updated_at: datetime | None = None,
) -> dict[str, Any]:
    """A GitHub issue as the REST listing returns it (timestamps as ISO strings)."""
    return {
        "id": github_id,
        "number": github_id,
        "title": f"Issue {github_id}",
        "body": None,
        "state": state,
        "labels": [{"name": name} for name in labels],
        "assignees": [],
        "assignee": None,
        "user": {"login": "octocat"},
        "html_url": f"https://github.com/acme/alpha/issues/{github_id}",
        "created_at": created_at.isoformat(),
        "updated_at": (updated_at or closed_at or created_at).isoformat(),
        "closed_at": closed_at.isoformat() if closed_at else None,
    }


def load_issues(cur: Any, project_id: int, issues: Sequence[dict[str, Any]], *, as_of: datetime) -> int:
    rows = [normalize_issue(issue, as_of=as_of) for issue in issues]
    return loader.upsert_rows(cur, loader.BUGS, rows, project_id=project_id)


def expected_score(row: tuple[Any, ...], as_of: datetime) -> int:
    """scoring.priority_score of a stored (severity, is_blocker, labels, created_at, resolved_at) row."""
    severity, is_blocker, labels, created_at, resolved_at = row
    return scoring.priority_score(
        severity=severity,
        is_blocker=is_blocker,
        labels=labels,
        created_at=created_at,
        as_of=as_of,
        closed_at=resolved_at,
    )


def stored(conn: psycopg.Connection) -> dict[int, tuple[Any, ...]]:
    """github_id -> (priority_score, priority_base, synced_at)."""
    return {
        gid: rest
        for gid, *rest in conn.execute("SELECT github_id, priority_score, priority_base, synced_at FROM bugs")
    }


def score_of(conn: psycopg.Connection, github_id: int) -> int:
    (score,) = conn.execute("SELECT priority_score FROM bugs WHERE github_id = %s", (github_id,)).fetchone()
    return score


# --- the SQL agrees with scoring.priority_score --------------------------------------------------

offsets = st.sampled_from([UTC, timezone(timedelta(hours=-4)), timezone(timedelta(hours=5, minutes=30))])
as_of_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=offsets)
#: age = as_of - created_at: anywhere, or next to a week boundary (exactly on it, 1 us / 1 s either side).
ages = st.one_of(
    st.timedeltas(min_value=-30 * WEEK, max_value=300 * WEEK),
    st.builds(
        lambda weeks, nudge: weeks * WEEK + nudge,
        st.integers(-3, 25),
        st.sampled_from([timedelta(0), US, -US, timedelta(seconds=1), -timedelta(seconds=1)]),
    ),
)
cases = st.lists(st.tuples(ages, st.sampled_from(LABEL_SETS)), min_size=1, max_size=25)
#: Every boundary, with every label set: on a week, 1 us either side, the cap, created after
#: as_of, and very old.
BOUNDARY_AGES = (
    *(timedelta(0), -US, -3 * WEEK),
    *(WEEK - US, WEEK, WEEK + US, 2 * WEEK - US, 2 * WEEK, 5 * WEEK),
    *(20 * WEEK - US, 20 * WEEK, 21 * WEEK, T0 - datetime(1970, 1, 1, tzinfo=UTC)),
)
BOUNDARY_CASES = [(age, labels) for age in BOUNDARY_AGES for labels in LABEL_SETS]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    as_of=as_of_times,
    written_at_offset=st.timedeltas(min_value=-60 * WEEK, max_value=timedelta(0)),
    cases=cases,
)
@example(as_of=T0, written_at_offset=-30 * WEEK, cases=BOUNDARY_CASES)
def test_sql_rescore_equals_priority_score(
    pg_conn: psycopg.Connection,
    as_of: datetime,
    written_at_offset: timedelta,
    cases: list[tuple[timedelta, tuple[str, ...]]],
) -> None:
    written_at = as_of + written_at_offset  # the run that wrote the rows, at or before as_of
    issues = [
        issue_json(1000 + n, created_at=as_of - age, labels=labels) for n, (age, labels) in enumerate(cases)
    ]
    try:
        with pg_conn.cursor() as cur:
            project_id, _ = loader.upsert_project(cur, project_row())
            assert load_issues(cur, project_id, issues, as_of=written_at) == len(issues)
            # At the time they were written, SQL and the normalizer agree: nothing to change.
            assert loader.rescore_open_bugs(cur, as_of=written_at) == 0
            changed = loader.rescore_open_bugs(cur, as_of=as_of)
            assert loader.rescore_open_bugs(cur, as_of=as_of) == 0  # idempotent
        rows = pg_conn.execute(
            "SELECT github_id, priority_score, severity, is_blocker, labels, created_at, resolved_at FROM bugs"
        ).fetchall()
        assert len(rows) == len(issues)
        for issue, (github_id, score, *facts) in zip(issues, sorted(rows), strict=True):
            assert github_id == issue["id"]
            assert facts[3] == datetime.fromisoformat(issue["created_at"])  # microseconds survive
            assert score == expected_score(tuple(facts), as_of), (issue["created_at"], as_of)
        moved = sum(
            expected_score(tuple(facts), as_of) != expected_score(tuple(facts), written_at)
            for _gid, _score, *facts in rows
        )
        assert changed == moved
    finally:
        pg_conn.rollback()


# --- what it touches -----------------------------------------------------------------------------


def test_rescore_moves_an_open_issue_forward_week_by_week(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        load_issues(cur, project_id, [issue_json(1, created_at=T0)], as_of=T0)
    pg_conn.commit()
    assert score_of(pg_conn, 1) == 70  # medium, new
    steps = [
        (3 * WEEK, 1, 73),
        (3 * WEEK, 0, 73),  # same as_of again: nothing written
        (4 * WEEK - US, 0, 73),  # still three full weeks
        (4 * WEEK, 1, 74),
        (30 * WEEK, 1, 90),  # age capped at +20
        (31 * WEEK, 0, 90),
    ]
    for age, count, score in steps:
        before = stored(pg_conn)[1]
        with pg_conn.cursor() as cur:
            assert loader.rescore_open_bugs(cur, as_of=T0 + age) == count, age
        pg_conn.commit()
        after = stored(pg_conn)[1]
        assert after[0] == score, age
        assert after[1] == 70  # the base is never rewritten by the re-scoring
        # synced_at means "last changed by the sync": it moves exactly when the score does
        assert (after[2] != before[2]) == (count == 1), age


def test_rescore_leaves_closed_removed_and_unbased_bugs_alone(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        load_issues(
            cur,
            project_id,
            [
                issue_json(1, created_at=T0),  # open: re-scored
                issue_json(2, created_at=T0, state="closed", closed_at=T0 + 2 * WEEK),  # stopped ageing
                issue_json(3, created_at=T0, labels=["WIP"]),  # open, to be removed
                issue_json(4, created_at=T0, labels=["P1"]),  # open, written before migration 0003
            ],
            as_of=T0 + 3 * WEEK,
        )
        loader.mark_removed(cur, "bugs", reason="deleted", removed_at=T0 + 3 * WEEK, where={"github_id": 3})
        cur.execute("UPDATE bugs SET priority_base = NULL WHERE github_id = 4")
    pg_conn.commit()
    before = stored(pg_conn)
    assert {gid: row[0] for gid, row in before.items()} == {1: 73, 2: 72, 3: 73, 4: 83}
    with pg_conn.cursor() as cur:
        assert loader.rescore_open_bugs(cur, as_of=T0 + 10 * WEEK) == 1
    pg_conn.commit()
    after = stored(pg_conn)
    assert after[1][0] == 80
    assert {gid: after[gid] for gid in (2, 3, 4)} == {gid: before[gid] for gid in (2, 3, 4)}


def test_a_reopened_issue_ages_again(pg_conn: psycopg.Connection) -> None:
    closed = issue_json(1, created_at=T0, state="closed", closed_at=T0 + 2 * WEEK)
    reopened = issue_json(1, created_at=T0, updated_at=T0 + 5 * WEEK)
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        load_issues(cur, project_id, [closed], as_of=T0 + 3 * WEEK)
        assert loader.rescore_open_bugs(cur, as_of=T0 + 6 * WEEK) == 0
        load_issues(cur, project_id, [reopened], as_of=T0 + 5 * WEEK)
        assert score_of(pg_conn, 1) == 75
        assert loader.rescore_open_bugs(cur, as_of=T0 + 6 * WEEK) == 1
    assert score_of(pg_conn, 1) == 76
    pg_conn.rollback()


def test_rescore_is_idempotent(pg_conn: psycopg.Connection) -> None:
    issues = [
        issue_json(n, created_at=T0 - n * timedelta(days=3), labels=LABEL_SETS[n % len(LABEL_SETS)])
        for n in range(1, 60)
    ]
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        load_issues(cur, project_id, issues, as_of=T0)
    pg_conn.commit()
    with pg_conn.cursor() as cur:
        assert loader.rescore_open_bugs(cur, as_of=T0 + 8 * WEEK) > 0
    pg_conn.commit()
    before = stored(pg_conn)
    with pg_conn.cursor() as cur:
        assert loader.rescore_open_bugs(cur, as_of=T0 + 8 * WEEK) == 0
    pg_conn.commit()
    assert stored(pg_conn) == before  # synced_at included: nothing was written


def test_rescore_only_touches_the_given_projects(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        alpha, _ = loader.upsert_project(cur, project_row(1, "alpha"))
        beta, _ = loader.upsert_project(cur, project_row(2, "beta"))
        load_issues(cur, alpha, [issue_json(1, created_at=T0)], as_of=T0)
        load_issues(cur, beta, [issue_json(2, created_at=T0)], as_of=T0)
        later = T0 + 4 * WEEK
        assert loader.rescore_open_bugs(cur, as_of=later, project_ids=[]) == 0
        assert loader.rescore_open_bugs(cur, as_of=later, project_ids=[alpha]) == 1
        assert (score_of(pg_conn, 1), score_of(pg_conn, 2)) == (74, 70)
        assert loader.rescore_open_bugs(cur, as_of=later, project_ids=(alpha, beta)) == 1  # beta's turn
        assert (score_of(pg_conn, 1), score_of(pg_conn, 2)) == (74, 74)
        assert loader.rescore_open_bugs(cur, as_of=later + WEEK) == 2  # None: every project
    pg_conn.rollback()


def test_an_older_as_of_never_makes_an_issue_younger(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        load_issues(cur, project_id, [issue_json(1, created_at=T0)], as_of=T0 + 5 * WEEK)
        before = cur.execute("SELECT priority_score FROM bugs").fetchone()[0]
        assert loader.rescore_open_bugs(cur, as_of=T0 + WEEK) == 0  # a cleared old run, say
        assert cur.execute("SELECT priority_score FROM bugs").fetchone()[0] == before
    pg_conn.rollback()


def test_rows_locked_by_a_concurrent_sync_are_skipped_not_waited_for(
    pg_conn: psycopg.Connection, pg_database: str
) -> None:
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        load_issues(cur, project_id, [issue_json(1, created_at=T0), issue_json(2, created_at=T0)], as_of=T0)
    pg_conn.commit()
    with psycopg.connect(pg_database) as other:  # a repository transaction holding one row
        other.execute("SELECT 1 FROM bugs WHERE github_id = 1 FOR UPDATE")
        with pg_conn.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = '2s'")  # a wait would fail the test, not hang it
            assert loader.rescore_open_bugs(cur, as_of=T0 + 3 * WEEK) == 1
        pg_conn.commit()
        other.rollback()
    with pg_conn.cursor() as cur:
        assert loader.rescore_open_bugs(cur, as_of=T0 + 3 * WEEK) == 1  # its turn in the next run
    pg_conn.commit()


def test_rescore_refuses_a_naive_as_of(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur, pytest.raises(ValueError, match="timezone-aware"):
        loader.rescore_open_bugs(cur, as_of=datetime(2026, 1, 1))


# --- priority_base in the table ------------------------------------------------------------------


@pytest.mark.parametrize("labels", LABEL_SETS, ids=lambda labels: ",".join(labels) or "no labels")
def test_priority_base_round_trips_from_the_normalizer(
    pg_conn: psycopg.Connection, labels: tuple[str, ...]
) -> None:
    row = normalize_issue(issue_json(1, created_at=T0, labels=labels), as_of=T0 + 3 * WEEK)
    assert row["priority_base"] == scoring.priority_base(
        severity=row["severity"], is_blocker=row["is_blocker"], labels=row["labels"]
    )
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        loader.upsert_rows(cur, loader.BUGS, [row], project_id=project_id)
    pg_conn.commit()
    assert pg_conn.execute("SELECT priority_base, priority_score FROM bugs").fetchone() == (
        row["priority_base"],
        row["priority_score"],
    )


def test_a_row_without_priority_base_is_filled_when_the_sync_rewrites_it(pg_conn: psycopg.Connection) -> None:
    # Rows written before migration 0003 have NULL: an unchanged re-sync (the weekly full sync)
    # still rewrites them, because the stored row differs from the incoming one in that column.
    issue = issue_json(1, created_at=T0, labels=["P1"])
    with pg_conn.cursor() as cur:
        project_id, _ = loader.upsert_project(cur, project_row())
        load_issues(cur, project_id, [issue], as_of=T0)
        cur.execute("UPDATE bugs SET priority_base = NULL")
        assert load_issues(cur, project_id, [issue], as_of=T0) == 1
        assert pg_conn.execute("SELECT priority_base FROM bugs").fetchone() == (80,)
        assert load_issues(cur, project_id, [issue], as_of=T0) == 0
    pg_conn.rollback()
