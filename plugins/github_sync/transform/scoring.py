"""Scores the dashboard ranks by: an issue's priority, a repository's health, and SLA hours.

All functions are pure: the "as of" time is a parameter (the DAG run's time), never the clock.

Reachable ranges with these constants: priority 25..100 (the lowest is a ``low`` issue labelled
``documentation`` and ``good first issue``: 50 + 10 - 15 - 20), health 50..100. Both are still
clamped to 0..100 (:func:`clamp_score`) so that changing a constant can never produce a value the
database's CHECK constraint rejects.

The priority splits into a part that only changes when the issue does (:func:`priority_base`:
everything but the age, unclamped) and the age part (:func:`age_points`), which grows with the
run's time alone. ``bugs.priority_base`` stores the first, so that
``github_sync.store.loader.rescore_open_bugs`` can re-age open issues in SQL, with these same
constants, without asking GitHub again.

This module owns the score formulas and their constants; it must not read labels' names
itself (label rules decide which labels mean what), the database or the clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from github_sync.transform.labels import SEVERITIES, LabelRules

__all__ = [
    "AGE_POINTS_PER_WEEK",
    "BLOCKER_POINTS",
    "FEW_OPEN_ISSUES_THRESHOLD",
    "HEALTH_BASE",
    "HEALTH_POINTS",
    "MANY_CONTRIBUTORS_THRESHOLD",
    "MANY_STARS_THRESHOLD",
    "MAX_AGE_POINTS",
    "MODIFIER_POINTS",
    "PRIORITY_BASE",
    "RECENT_COMMIT_WINDOW",
    "SCORE_MAX",
    "SCORE_MIN",
    "SEVERITY_POINTS",
    "SLA_HOURS",
    "WEEK",
    "age_points",
    "clamp_score",
    "health_score",
    "priority_base",
    "priority_score",
    "sla_hours",
]

SCORE_MIN = 0
SCORE_MAX = 100

# --- priority ------------------------------------------------------------------------------
PRIORITY_BASE = 50
SEVERITY_POINTS: dict[str, int] = {"critical": 40, "high": 30, "medium": 20, "low": 10}
BLOCKER_POINTS = 30
AGE_POINTS_PER_WEEK = 1
MAX_AGE_POINTS = 20
#: Points per score modifier; which labels trigger each modifier is data (github_sync.transform.labels).
MODIFIER_POINTS: dict[str, int] = {
    "security": 25,
    "regression": 20,
    "documentation": -15,
    "good_first_issue": -20,
}

# --- SLA -----------------------------------------------------------------------------------
SLA_HOURS: dict[str, int] = {"critical": 4, "high": 24, "medium": 72, "low": 168}

# --- health --------------------------------------------------------------------------------
HEALTH_BASE = 50
RECENT_COMMIT_WINDOW = timedelta(days=30)
FEW_OPEN_ISSUES_THRESHOLD = 5  # strictly fewer than this
MANY_STARS_THRESHOLD = 100  # strictly more than this
MANY_CONTRIBUTORS_THRESHOLD = 10  # strictly more than this
HEALTH_POINTS: dict[str, int] = {
    "recent_commit": 20,
    "few_open_issues": 10,
    "many_stars": 10,
    "many_contributors": 10,
    "has_ci": 10,
    "has_tests": 10,
}

#: The unit of :func:`age_points`: only full weeks count.
WEEK = timedelta(weeks=1)


def clamp_score(value: int) -> int:
    """Clamp ``value`` to the 0..100 range every score column allows.

    Args:
        value: A raw score.

    Returns:
        ``value`` limited to :data:`SCORE_MIN`..:data:`SCORE_MAX`.
    """
    return max(SCORE_MIN, min(SCORE_MAX, value))


def _require_aware(name: str, value: datetime) -> None:
    # Comparing naive and aware datetimes raises a TypeError deep inside arithmetic; say what is
    # wrong instead. Naive times are also ambiguous: GitHub's are UTC, Airflow's are aware.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")


def _check_severity(severity: str) -> None:
    if severity not in SEVERITY_POINTS:
        raise ValueError(f"unknown severity {severity!r} (allowed: {', '.join(SEVERITIES)})")


def sla_hours(severity: str) -> int:
    """Return the SLA in hours for a severity (critical 4, high 24, medium 72, low 168).

    Args:
        severity: One of ``critical``, ``high``, ``medium``, ``low``.

    Returns:
        The SLA in hours.

    Raises:
        ValueError: If ``severity`` is not one of the four.
    """
    _check_severity(severity)
    return SLA_HOURS[severity]


def age_points(created_at: datetime, as_of: datetime, closed_at: datetime | None = None) -> int:
    """Return the age component of the priority: +1 per full week open, at most +20.

    The issue's age is measured from ``created_at`` to ``as_of`` or, for a closed issue, to
    ``closed_at`` when that is earlier (a closed issue stops ageing). Only full weeks count: 6 days
    23 hours is 0, exactly 7 days is 1. An issue created after ``as_of`` (clock skew between GitHub
    and the run's time) is 0 weeks old, never negative.

    Args:
        created_at: When the issue was opened (aware).
        as_of: The run's time (aware).
        closed_at: When it was closed, if it was (aware).

    Returns:
        0..:data:`MAX_AGE_POINTS`.
    """
    _require_aware("created_at", created_at)
    _require_aware("as_of", as_of)
    end = as_of
    if closed_at is not None:
        _require_aware("closed_at", closed_at)
        end = min(end, closed_at)
    full_weeks = max(0, (end - created_at) // WEEK)
    return min(MAX_AGE_POINTS, full_weeks * AGE_POINTS_PER_WEEK)


def priority_base(
    *,
    severity: str,
    is_blocker: bool,
    labels: Iterable[str],
    rules: LabelRules | None = None,
) -> int:
    """Return the part of an issue's priority that does not depend on time, unclamped.

    Base 50; severity critical +40, high +30, medium +20, low +10; blocker +30; then each score
    modifier the labels trigger, once: ``security`` +25, ``regression`` +20, ``documentation``
    -15, ``good first issue`` -20. Which labels trigger a modifier is decided by ``rules``
    (case-insensitive). Not clamped: with these constants it is 25..165, and
    :func:`priority_score` adds the age before clamping.

    Args:
        severity: One of ``critical``, ``high``, ``medium``, ``low``.
        is_blocker: Whether the issue is a blocker.
        labels: The issue's label names.
        rules: Label rules; the shipped defaults when None.

    Returns:
        The raw sum (it may lie outside 0..100).

    Raises:
        ValueError: Unknown severity.
    """
    _check_severity(severity)
    rules = rules or LabelRules.default()
    score = PRIORITY_BASE + SEVERITY_POINTS[severity]
    if is_blocker:
        score += BLOCKER_POINTS
    score += sum(MODIFIER_POINTS[name] for name in rules.modifiers_for(labels))
    return score


def priority_score(
    *,
    severity: str,
    is_blocker: bool,
    labels: Iterable[str],
    created_at: datetime,
    as_of: datetime,
    closed_at: datetime | None = None,
    rules: LabelRules | None = None,
) -> int:
    """Return an issue's priority, 0..100 (higher is more urgent).

    :func:`priority_base` (base 50; severity critical +40, high +30, medium +20, low +10;
    blocker +30; each score modifier the labels trigger, once: ``security`` +25,
    ``regression`` +20, ``documentation`` -15, ``good first issue`` -20) plus the age, +1 per
    full week open (see :func:`age_points`), at most +20. Which labels trigger a modifier is
    decided by ``rules`` (case-insensitive). The sum is clamped to 0..100
    (:func:`clamp_score`).

    Args:
        severity: One of ``critical``, ``high``, ``medium``, ``low``.
        is_blocker: Whether the issue is a blocker.
        labels: The issue's label names.
        created_at: When it was opened (aware).
        as_of: The run's time (aware).
        closed_at: When it was closed, if it was; the age stops there.
        rules: Label rules; the shipped defaults when None.

    Returns:
        The clamped score.

    Raises:
        ValueError: Unknown severity, or a naive datetime.
    """
    base = priority_base(severity=severity, is_blocker=is_blocker, labels=labels, rules=rules)
    return clamp_score(base + age_points(created_at, as_of, closed_at))


def health_score(
    *,
    last_commit: datetime | None,
    as_of: datetime,
    open_issues: int,
    stars: int,
    contributors: int,
    has_ci: bool,
    has_tests: bool,
) -> int:
    """Return a repository's health, 0..100.

    Base 50; +20 when the last commit is within 30 days of ``as_of``; +10 for fewer than 5 open
    issues; +10 for more than 100 stars; +10 for more than 10 contributors; +10 when CI/CD is
    configured; +10 when tests are present; clamped to 0..100.

    Boundaries: a last commit exactly 30 days before ``as_of`` counts as recent (``<=``); 30
    days and one second does not. A last commit *after* ``as_of`` counts as recent too: it
    happens when the run's logical time is earlier than GitHub's push time, and the repository
    is certainly active. ``None`` (never pushed) is not recent. 4 open issues earn the points, 5
    do not; 101 stars do, 100 do not; 11 contributors do, 10 do not.

    Args:
        last_commit: Time of the last push/commit (aware), or None.
        as_of: The run's time (aware).
        open_issues: Open issues count.
        stars: Stargazers count.
        contributors: Contributors count.
        has_ci: Whether CI/CD configuration was found.
        has_tests: Whether tests were found.

    Returns:
        The clamped score.

    Raises:
        ValueError: A naive datetime.
    """
    _require_aware("as_of", as_of)
    score = HEALTH_BASE
    if last_commit is not None:
        _require_aware("last_commit", last_commit)
        if as_of - last_commit <= RECENT_COMMIT_WINDOW:
            score += HEALTH_POINTS["recent_commit"]
    if open_issues < FEW_OPEN_ISSUES_THRESHOLD:
        score += HEALTH_POINTS["few_open_issues"]
    if stars > MANY_STARS_THRESHOLD:
        score += HEALTH_POINTS["many_stars"]
    if contributors > MANY_CONTRIBUTORS_THRESHOLD:
        score += HEALTH_POINTS["many_contributors"]
    if has_ci:
        score += HEALTH_POINTS["has_ci"]
    if has_tests:
        score += HEALTH_POINTS["has_tests"]
    return clamp_score(score)
