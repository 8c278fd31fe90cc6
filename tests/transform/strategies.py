"""Hypothesis strategies shared by the transform property tests: aware datetimes and labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from github_sync.transform.labels import SEVERITIES

MIN_DT = datetime(1990, 1, 1)
MAX_DT = datetime(2040, 1, 1)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=-4)), timezone(timedelta(hours=5, minutes=30))])
aware = st.datetimes(min_value=MIN_DT, max_value=MAX_DT, timezones=offsets)

# Known convention labels mixed with arbitrary unicode, so both the matching and the
# non-matching paths are exercised.
known_labels = st.sampled_from(
    [
        "P0",
        "P1",
        "P3",
        "critical",
        "Severity: High",
        "severity: low",
        "sev-1",
        "WIP",
        "blocker",
        "security",
        "regression",
        "Docs",
        "good first issue",
    ]
)
labels = st.lists(st.one_of(known_labels, st.text(max_size=60)), max_size=8)

# Every argument of priority_score, for @given(**priority_arguments): created_at may be before
# or after as_of (and after closed_at).
priority_arguments = {
    "severity": st.sampled_from(SEVERITIES),
    "is_blocker": st.booleans(),
    "labels": labels,
    "created_at": aware,
    "as_of": aware,
    "closed_at": st.none() | aware,
}
