"""priority_base: the time-independent part of the priority, and how priority_score is built on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import github_sync
from github_sync.transform.labels import LabelRules
from github_sync.transform.normalizer import normalize_issue
from github_sync.transform.scoring import (
    BLOCKER_POINTS,
    MODIFIER_POINTS,
    PRIORITY_BASE,
    SEVERITY_POINTS,
    age_points,
    clamp_score,
    priority_base,
    priority_score,
)
from tests.transform.strategies import aware, labels, priority_arguments

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RULES = LabelRules.default()
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("severity", "blocker", "labels", "expected"),
    [
        ("medium", False, [], PRIORITY_BASE + SEVERITY_POINTS["medium"]),
        ("low", False, ["documentation", "good first issue"], 50 + 10 - 15 - 20),  # the lowest: 25
        ("critical", True, ["security", "regression"], 50 + 40 + 30 + 25 + 20),  # 165: not clamped
        ("high", True, [], 50 + 30 + BLOCKER_POINTS),
        ("high", False, ["security", "Security", "CVE"], 50 + 30 + MODIFIER_POINTS["security"]),  # once
    ],
)
def test_priority_base_is_the_unclamped_sum_without_age(
    severity: str, blocker: bool, labels: list[str], expected: int
) -> None:
    assert priority_base(severity=severity, is_blocker=blocker, labels=labels) == expected


def test_priority_base_rejects_an_unknown_severity() -> None:
    with pytest.raises(ValueError, match="unknown severity"):
        priority_base(severity="urgent", is_blocker=False, labels=[])


def test_priority_base_is_exported_lazily() -> None:
    assert github_sync.priority_base is priority_base


@SETTINGS
@given(**priority_arguments)
def test_priority_score_is_the_clamped_base_plus_age(
    severity: str,
    is_blocker: bool,
    labels: list[str],
    created_at: datetime,
    as_of: datetime,
    closed_at: datetime | None,
) -> None:
    base = priority_base(severity=severity, is_blocker=is_blocker, labels=labels, rules=RULES)
    score = priority_score(
        severity=severity,
        is_blocker=is_blocker,
        labels=labels,
        created_at=created_at,
        as_of=as_of,
        closed_at=closed_at,
        rules=RULES,
    )
    assert score == clamp_score(base + age_points(created_at, as_of, closed_at))


@SETTINGS
@given(labels=labels, created_at=aware, as_of=aware, state=st.sampled_from(["open", "closed"]))
def test_issue_row_carries_its_priority_base(
    labels: list[str], created_at: datetime, as_of: datetime, state: str
) -> None:
    issue = {
        "id": 1,
        "number": 7,
        "title": "t",
        "state": state,
        "labels": [{"name": name} for name in labels],
        "created_at": created_at.isoformat(),
        "updated_at": created_at.isoformat(),
        "closed_at": (created_at + timedelta(days=10)).isoformat() if state == "closed" else None,
    }
    row = normalize_issue(issue, as_of=as_of, rules=RULES)
    base = priority_base(severity=row["severity"], is_blocker=row["is_blocker"], labels=row["labels"])
    assert row["priority_base"] == base
    assert row["priority_score"] == clamp_score(
        base + age_points(row["created_at"], as_of, row["resolved_at"])
    )


def test_a_base_over_100_is_kept_while_the_score_is_clamped() -> None:
    issue = {
        "id": 1,
        "number": 7,
        "title": "t",
        "state": "open",
        "labels": [{"name": n} for n in ("P0", "blocker", "security", "regression")],
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    }
    row = normalize_issue(issue, as_of=T0 + timedelta(weeks=3))
    assert (row["priority_base"], row["priority_score"]) == (165, 100)
