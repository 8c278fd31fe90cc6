"""Property tests: arbitrary labels, dates and bodies never break the normalizers or the score bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from github_sync.transform.labels import SEVERITIES, LabelRules
from github_sync.transform.normalizer import normalize_commit, normalize_issue, normalize_pull_request
from github_sync.transform.scoring import health_score, priority_score
from github_sync.transform.timestamps import parse_github_timestamp
from tests.transform.strategies import aware, labels, priority_arguments

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RULES = LabelRules.default()

# Bodies: unicode, NUL characters, and occasionally very long.
bodies = st.one_of(
    st.none(),
    st.text(),
    st.text(alphabet=st.sampled_from(["a", "\x00", "é", "😀", "\n"]), max_size=200),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=10), st.integers(10_000, 50_000)),
)


def _iso(dt: datetime) -> str:
    return dt.isoformat()


def _no_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, list):
        return all(_no_nul(v) for v in value)
    return True


@SETTINGS
@given(**priority_arguments)
def test_priority_in_bounds(severity, is_blocker, labels, created_at, as_of, closed_at) -> None:
    # created_at may be before or after as_of (and after closed_at)
    score = priority_score(
        severity=severity,
        is_blocker=is_blocker,
        labels=labels,
        created_at=created_at,
        as_of=as_of,
        closed_at=closed_at,
    )
    assert 25 <= score <= 100  # 25 is the lowest the default points can reach


@SETTINGS
@given(
    last_commit=st.none() | aware,
    as_of=aware,
    open_issues=st.integers(0, 10**6),
    stars=st.integers(0, 10**7),
    contributors=st.integers(0, 10**5),
    has_ci=st.booleans(),
    has_tests=st.booleans(),
)
def test_health_in_bounds(**kwargs) -> None:
    assert 50 <= health_score(**kwargs) <= 100


@SETTINGS
@given(
    labels=labels,
    title=st.text(),
    body=bodies,
    created_at=aware,
    as_of=aware,
    state=st.sampled_from(["open", "closed"]),
    closed_at=st.none() | aware,
    assignees=st.lists(st.text(min_size=1, max_size=39), max_size=3),
)
def test_issue_row_is_always_storable(
    labels, title, body, created_at, as_of, state, closed_at, assignees
) -> None:
    issue = {
        "id": 1,
        "number": 7,
        "title": title,
        "body": body,
        "state": state,
        "labels": [{"name": name} for name in labels],
        "assignees": [{"login": login} for login in assignees],
        "assignee": None,
        "user": {"login": "octocat"},
        "html_url": "https://github.com/o/r/issues/7",
        "created_at": _iso(created_at),
        "updated_at": _iso(created_at),
        "closed_at": _iso(closed_at) if closed_at else None,
    }
    row = normalize_issue(issue, as_of=as_of, rules=RULES)
    assert row["severity"] in SEVERITIES
    assert 0 <= row["priority_score"] <= 100
    assert row["status"] in {"pending", "in_progress", "closed"}
    assert all(_no_nul(v) for v in row.values())
    assert row["description"] == (body or "").replace("\x00", "")
    assert row["created_at"].tzinfo is UTC and row["created_at"] == created_at
    assert row["labels"] == [name.replace("\x00", "") for name in labels]


@SETTINGS
@given(body=bodies, title=st.text(), labels=labels, merged=st.none() | aware, draft=st.none() | st.booleans())
def test_pull_request_row_is_always_storable(body, title, labels, merged, draft) -> None:
    pr = {
        "id": 2,
        "number": 8,
        "title": title,
        "body": body,
        "state": "closed" if merged else "open",
        "draft": draft,
        "labels": [{"name": name} for name in labels],
        "user": None,
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-02T00:00:00Z",
        "merged_at": _iso(merged) if merged else None,
    }
    row = normalize_pull_request(pr, as_of=datetime(2024, 1, 1, tzinfo=UTC))
    assert all(_no_nul(v) for v in row.values())
    assert row["state"] == ("merged" if merged else "open")
    assert row["draft"] is bool(draft) and row["author"] is None


@SETTINGS
@given(message=bodies, name=st.none() | st.text(), when=aware)
def test_commit_row_is_always_storable(message, name, when) -> None:
    row = normalize_commit(
        {
            "sha": "a" * 40,
            "author": None,
            "commit": {"author": {"name": name, "date": _iso(when)}, "message": message},
        }
    )
    assert all(_no_nul(v) for v in row.values())
    assert row["committed_at"] == when and row["committed_at"].utcoffset() == timedelta(0)


@SETTINGS
@given(when=aware)
def test_timestamp_round_trip_to_utc(when) -> None:
    parsed = parse_github_timestamp(when.isoformat())
    assert parsed == when and parsed.tzinfo is UTC
    assert parse_github_timestamp(when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")) == when.replace(
        microsecond=0
    )
