"""The rules that let owner-wide signals answer for a repository, at GitHub's one-second resolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from github_sync.sync.change_detection import (
    MAX_WATERMARK_AGE,
    STALE_WATERMARK_MARGIN,
    WATERMARK_OVERLAP,
    OrganisationIssues,
    StoredState,
    ask_signals,
    organisation_issues,
    repository_of,
    signal_since,
)
from github_sync.sync.targets import RepositoryTarget

T = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)
TARGET = RepositoryTarget("acme/api", project_id=1)


def state(**fields: object) -> StoredState:
    base: dict[str, object] = {
        "synced": True,
        "issues_cursor": T - timedelta(hours=2),
        "commits_head": "abc",
        "live_issue_ids": frozenset(),
        "live_pr_numbers": frozenset(),
        "issues_listed_at": T - timedelta(hours=1),
        "synced_full_name": "acme/api",
        "synced_push": T - timedelta(hours=3),
        "listed_push": T - timedelta(hours=3),
        "listed_open": 4,
        "stored_open": 4,
        "commits_read_at": T - timedelta(hours=1),
    }
    return StoredState(**{**base, **fields})  # type: ignore[arg-type]


def listing(newest: datetime | None = None, since: datetime = T - timedelta(days=1)) -> OrganisationIssues:
    return OrganisationIssues(since=since, newest_by_repository={"acme/api": newest} if newest else {})


def test_nothing_changed_needs_no_probe_at_all() -> None:
    questions = ask_signals(TARGET, state(), listing())
    assert (questions.reason, questions.probe_issues, questions.probe_commits) == (None, False, False)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"synced": False}, "never synced"),
        ({"synced_full_name": "acme/old-api"}, "renamed from acme/old-api"),
        ({"listed_open": 3}, "open issues and pull requests: GitHub lists 3, 4 stored"),
    ],
)
def test_what_the_stored_state_alone_decides(fields: dict[str, object], reason: str) -> None:
    assert ask_signals(TARGET, state(**fields), listing()).reason == reason


def test_an_item_newer_than_the_cursor_is_a_change() -> None:
    assert ask_signals(TARGET, state(), listing(T - timedelta(minutes=1))).reason == "issues changed"


def test_an_item_as_old_as_the_cursor_is_one_only_when_stamped_in_the_second_of_the_last_read() -> None:
    cursor = T - timedelta(hours=1)
    # Updated in the very second the last sync read the listing: it may have come after the read.
    same_second = state(issues_cursor=cursor, issues_listed_at=cursor + timedelta(milliseconds=400))
    assert ask_signals(TARGET, same_second, listing(cursor)).reason == "issues changed"
    # Read a second later: the item was seen (its time is the cursor's).
    later = state(issues_cursor=cursor, issues_listed_at=cursor + timedelta(seconds=1))
    assert ask_signals(TARGET, later, listing(cursor)).reason is None


def test_a_listing_that_starts_after_the_watermark_cannot_answer_so_the_repository_is_probed() -> None:
    late = listing(since=T - timedelta(minutes=30))
    assert ask_signals(TARGET, state(), late).probe_issues
    assert ask_signals(TARGET, state(), None).probe_issues  # no listing (a user account, refused)
    checked = state(issues_checked_at=T - timedelta(minutes=10))  # a later detection found it unchanged
    assert not ask_signals(TARGET, checked, late).probe_issues


@pytest.mark.parametrize(
    ("fields", "probe"),
    [
        ({}, False),
        ({"listed_push": T - timedelta(minutes=5)}, True),  # pushed since
        ({"synced_push": None}, True),  # a cursor from before pushed_at was kept
        # The push the sync read at was stamped in the second of its read: a later push in
        # that second would carry the same pushed_at.
        ({"synced_push": T - timedelta(hours=1), "listed_push": T - timedelta(hours=1)}, True),
        ({"commits_read_at": None}, True),
        ({"listed_push": T, "empty_since": True}, False),  # empty at the last sync, no push since
    ],
)
def test_when_the_commits_are_probed(fields: dict[str, object], probe: bool) -> None:
    assert ask_signals(TARGET, state(**fields), listing()).probe_commits is probe


def test_the_listing_starts_at_the_oldest_usable_watermark() -> None:
    states = [
        state(issues_listed_at=T - timedelta(hours=5)),
        state(issues_listed_at=T - timedelta(hours=1), issues_checked_at=T - timedelta(minutes=2)),
        state(issues_listed_at=T - timedelta(hours=1, minutes=30)),
        state(issues_listed_at=T - MAX_WATERMARK_AGE - timedelta(hours=1)),  # too old: probed alone
        state(synced=False, issues_listed_at=T - timedelta(days=2)),
    ]
    assert signal_since(states, as_of=T) == T - timedelta(hours=5) - WATERMARK_OVERLAP
    assert signal_since([state(issues_listed_at=None)], as_of=T) == T - WATERMARK_OVERLAP


def test_the_repository_of_an_organisation_issue() -> None:
    assert repository_of({"repository": {"full_name": "Acme/API"}}) == "acme/api"
    assert repository_of({"repository_url": "https://api.github.com/repos/acme/api"}) == "acme/api"
    assert repository_of({}) is None


def test_a_switched_default_branch_is_a_change_without_any_push() -> None:
    switched = RepositoryTarget("acme/api", project_id=1, default_branch="develop")
    assert (
        ask_signals(switched, state(synced_branch="main"), listing()).reason
        == "default branch changed to develop"
    )
    assert ask_signals(switched, state(synced_branch="develop"), listing()).reason is None


def test_an_open_count_the_last_sync_could_not_explain_is_not_flagged_again_until_it_moves() -> None:
    drifting = state(listed_open=5, stored_open=4, unexplained_open=5)
    assert ask_signals(TARGET, drifting, listing()).reason is None
    moved = state(listed_open=6, stored_open=4, unexplained_open=5)
    assert ask_signals(TARGET, moved, listing()).reason is not None


def test_a_repository_stuck_hours_behind_its_organisation_does_not_drag_the_listing_back() -> None:
    healthy = [state(issues_listed_at=T - timedelta(minutes=m)) for m in (60, 62, 65)]
    stuck = state(issues_listed_at=T - timedelta(minutes=61) - STALE_WATERMARK_MARGIN)
    assert signal_since([*healthy, stuck], as_of=T) == T - timedelta(minutes=65) - WATERMARK_OVERLAP
    assert not listing(since=signal_since([*healthy, stuck], as_of=T)).covers(stuck)  # probed on its own


class _OnePage:
    """A page of the organisation's issue listing as GitHub answers it with SAML SSO partly authorised.

    Stands in for GitHub here because the simulator has no SAML SSO: the header is what
    GitHub documents for listings that left resources out.
    """

    items: list[object] = []
    next_url = None
    not_modified = False
    server_time = T
    headers = {"X-GitHub-SSO": "partial-results; organizations=21955855"}
    json: object = []
    links: dict[str, str] = {}


class _SsoClient:
    def iter_pages(self, path: str, params: object = None, per_page: int = 100) -> object:
        return iter([_OnePage()])

    def get(self, path: str, params: object = None) -> object:
        raise AssertionError("not used")


def test_a_listing_that_left_out_sso_protected_resources_cannot_say_unchanged() -> None:
    assert organisation_issues(_SsoClient(), "acme", T - timedelta(hours=1)) is None  # type: ignore[arg-type]
