"""parse_github_timestamp: the forms GitHub sends; latest: the latest of several, None ignored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from github_sync.transform.normalizer import clean_text, listing_keys
from github_sync.transform.timestamps import latest, parse_github_timestamp


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2011-01-26T19:01:12Z", datetime(2011, 1, 26, 19, 1, 12, tzinfo=UTC)),
        ("2015-05-05T19:40:15-04:00", datetime(2015, 5, 5, 23, 40, 15, tzinfo=UTC)),
        ("2015-05-05T19:40:15+05:30", datetime(2015, 5, 5, 14, 10, 15, tzinfo=UTC)),
        ("2011-01-26T19:01:12", datetime(2011, 1, 26, 19, 1, 12, tzinfo=UTC)),  # no offset: UTC
        (1557933657, datetime(2019, 5, 15, 15, 20, 57, tzinfo=UTC)),  # push webhook epoch seconds
        (datetime(2020, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), datetime(2020, 1, 1, tzinfo=UTC)),
        (None, None),
    ],
)
def test_parse(raw, expected) -> None:
    parsed = parse_github_timestamp(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize("raw", ["yesterday", "", True, [2020]])
def test_parse_rejects(raw) -> None:
    with pytest.raises(ValueError):
        parse_github_timestamp(raw)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("a\x00b", "ab"), ("\x00", ""), ("ok", "ok"), ("x\ud800y", "x\ufffdy"), (None, None), ("é😀", "é😀")],
)
def test_clean_text(raw, clean) -> None:
    assert clean_text(raw) == clean


def test_latest_ignores_none() -> None:
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    assert latest(early, late) == latest(late, early) == late
    assert latest(None, early) == latest(early, None) == early
    assert latest(None, None) is None
    assert latest() is None
    assert latest(late, None, early) == late


def test_listing_keys_split_issues_by_id_and_pull_requests_by_number() -> None:
    items = [
        {"id": 11, "number": 1},
        {"id": 12, "number": 2, "pull_request": {"url": "u"}},
        {"id": 13, "number": 3, "pull_request": None},  # null pull_request: an issue
    ]
    assert listing_keys(items) == (frozenset({11, 13}), frozenset({2}))
