"""Table-driven tests of every priority, SLA and health rule and their boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from github_sync.transform.scoring import (
    SLA_HOURS,
    age_points,
    clamp_score,
    health_score,
    priority_score,
    sla_hours,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _priority(
    severity: str = "low", *, blocker: bool = False, labels: tuple[str, ...] = (), age=timedelta(0)
) -> int:
    return priority_score(
        severity=severity, is_blocker=blocker, labels=list(labels), created_at=T0, as_of=T0 + age
    )


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", 90), ("high", 80), ("medium", 70), ("low", 60)],
)
def test_severity_points(severity: str, expected: int) -> None:
    assert _priority(severity) == expected


def test_blocker_adds_30() -> None:
    assert _priority("low", blocker=True) == 60 + 30


@pytest.mark.parametrize(
    ("age", "points"),
    [
        (timedelta(0), 0),
        (timedelta(days=6, hours=23), 0),
        (timedelta(days=6, hours=23, minutes=59, seconds=59), 0),
        (timedelta(weeks=1), 1),
        (timedelta(weeks=1, seconds=1), 1),
        (timedelta(weeks=2) - timedelta(seconds=1), 1),
        (timedelta(weeks=2), 2),
        (timedelta(weeks=19, days=6), 19),
        (timedelta(weeks=20), 20),
        (timedelta(weeks=21), 20),
        (timedelta(weeks=500), 20),
        (timedelta(days=-3), 0),  # created after as_of (clock skew): never negative
    ],
    ids=lambda v: str(v),
)
def test_age_full_weeks_capped(age: timedelta, points: int) -> None:
    assert age_points(T0, T0 + age) == points
    assert _priority("low", age=age) == 60 + points


def test_age_stops_at_closed_at() -> None:
    closed = T0 + timedelta(weeks=3)
    assert age_points(T0, T0 + timedelta(weeks=10), closed) == 3
    # closed_at after as_of (not possible in practice) does not add age beyond as_of
    assert age_points(T0, T0 + timedelta(weeks=2), T0 + timedelta(weeks=5)) == 2


def test_age_compares_instants_across_offsets() -> None:
    # 2024-01-08T00:00+02:00 is 2024-01-07T22:00Z: 6 days 22 hours after T0, not a full week.
    plus_two = timezone(timedelta(hours=2))
    assert age_points(T0, datetime(2024, 1, 8, tzinfo=plus_two)) == 0
    assert age_points(T0, datetime(2024, 1, 8, 2, tzinfo=plus_two)) == 1


@pytest.mark.parametrize(
    ("labels", "delta"),
    [
        (("security",), 25),
        (("regression",), 20),
        (("documentation",), -15),
        (("docs",), -15),
        (("good first issue",), -20),
        (("SECURITY",), 25),  # case-insensitive through the rules
        (("Good First Issue",), -20),
        (("security", "regression"), 45),
        (("security", "Security"), 25),  # one modifier counts once
        (("documentation", "good first issue"), -35),
        (("bug", "enhancement"), 0),
        (("securityish",), 0),  # whole-label match, not substring
    ],
)
def test_label_modifiers(labels: tuple[str, ...], delta: int) -> None:
    assert _priority("medium", labels=labels) == clamp_score(70 + delta)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # 50 + 40 + 30 + 20 + 25 + 20 = 185 -> 100
        (
            {
                "severity": "critical",
                "blocker": True,
                "labels": ("security", "regression"),
                "age": timedelta(weeks=30),
            },
            100,
        ),
        ({"severity": "critical", "blocker": True}, 100),  # 120 -> 100
        ({"severity": "high", "labels": ("security",)}, 100),  # 105 -> 100
        ({"severity": "critical", "labels": ("security",)}, 100),  # 115 -> 100
        ({"severity": "high", "labels": ("regression",)}, 100),  # exactly 100
        ({"severity": "medium", "labels": ("regression",), "age": timedelta(weeks=9)}, 99),
        # the lowest reachable: 50 + 10 - 15 - 20
        ({"severity": "low", "labels": ("documentation", "good first issue")}, 25),
    ],
)
def test_priority_clamped_and_extremes(kwargs: dict, expected: int) -> None:
    severity = kwargs.pop("severity")
    assert _priority(severity, **kwargs) == expected


@pytest.mark.parametrize(
    ("raw", "clamped"), [(-50, 0), (-1, 0), (0, 0), (1, 1), (99, 99), (100, 100), (101, 100), (185, 100)]
)
def test_clamp_score(raw: int, clamped: int) -> None:
    # The default point values cannot go below 25, so the lower clamp is proven on the helper itself.
    assert clamp_score(raw) == clamped


def test_priority_rejects_unknown_severity_and_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        priority_score(severity="urgent", is_blocker=False, labels=[], created_at=T0, as_of=T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        priority_score(
            severity="low", is_blocker=False, labels=[], created_at=T0.replace(tzinfo=None), as_of=T0
        )


@pytest.mark.parametrize(("severity", "hours"), [("critical", 4), ("high", 24), ("medium", 72), ("low", 168)])
def test_sla_hours(severity: str, hours: int) -> None:
    assert sla_hours(severity) == hours == SLA_HOURS[severity]


def test_sla_unknown_severity() -> None:
    with pytest.raises(ValueError, match="unknown severity"):
        sla_hours("blocker")


# --- health ----------------------------------------------------------------------------------

AS_OF = datetime(2024, 6, 30, 12, tzinfo=UTC)
# A baseline that earns nothing but the base: old commit, many issues, few stars/contributors.
BASE = {
    "last_commit": AS_OF - timedelta(days=365),
    "as_of": AS_OF,
    "open_issues": 50,
    "stars": 0,
    "contributors": 0,
    "has_ci": False,
    "has_tests": False,
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, 50),
        ({"last_commit": None}, 50),
        ({"last_commit": AS_OF}, 70),
        ({"last_commit": AS_OF - timedelta(days=29, hours=23)}, 70),
        ({"last_commit": AS_OF - timedelta(days=30)}, 70),  # exactly 30 days counts as within
        ({"last_commit": AS_OF - timedelta(days=30, seconds=1)}, 50),
        ({"last_commit": AS_OF - timedelta(days=31)}, 50),
        ({"last_commit": AS_OF + timedelta(hours=2)}, 70),  # pushed after the run's logical time
        ({"open_issues": 0}, 60),
        ({"open_issues": 4}, 60),
        ({"open_issues": 5}, 50),
        ({"stars": 100}, 50),
        ({"stars": 101}, 60),
        ({"contributors": 10}, 50),
        ({"contributors": 11}, 60),
        ({"has_ci": True}, 60),
        ({"has_tests": True}, 60),
        # everything: 50 + 20 + 10 * 5 = 120 -> clamped to 100
        (
            {
                "last_commit": AS_OF,
                "open_issues": 0,
                "stars": 5000,
                "contributors": 50,
                "has_ci": True,
                "has_tests": True,
            },
            100,
        ),
        # one short of everything: exactly 100 without clamping
        ({"last_commit": AS_OF, "open_issues": 0, "stars": 5000, "contributors": 50, "has_ci": True}, 100),
        ({"open_issues": 0, "stars": 5000, "contributors": 50, "has_ci": True}, 90),
    ],
)
def test_health_rules(change: dict, expected: int) -> None:
    assert health_score(**{**BASE, **change}) == expected


def test_health_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="as_of"):
        health_score(**{**BASE, "as_of": AS_OF.replace(tzinfo=None)})
