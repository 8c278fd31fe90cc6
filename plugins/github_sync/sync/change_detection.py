"""Find the repositories that changed since their last sync, at a cost that follows the changes.

Per repository, three questions, answered by the cheapest signal GitHub gives for each:

* **Was it pushed to?** The owner's repository listing, which discovery reads anyway, has
  every repository's ``pushed_at``; the last sync stored the one it read commits at. Equal:
  nothing was pushed, no request. Different (or unknown): the first page of its commits is
  probed (conditional, free when unchanged) and a new head means "commits pushed".
* **Did an issue or pull request change?** For an organisation, one listing of every issue
  and PR updated since the oldest watermark among its repositories
  (``GET /orgs/{org}/issues?filter=all&state=all&sort=updated&since=...``): a repository
  with an item newer than its issues cursor changed. The watermark is GitHub's clock when
  the repository's last sync read its issue listing (``Date`` of that answer), or when a
  later detection found its issues unchanged (the listing's own ``Date``, stored for the
  unchanged repositories in one statement), so nothing updated after it can be missed
  and an idle repository's watermark keeps up. Where GitHub does not offer that listing (a user
  account, a credential refused it) or a repository's watermark is unknown or older than
  :data:`MAX_WATERMARK_AGE`, the first page of its own issue listing is probed instead,
  as before: not a 304, or an item newer than the cursor, or (when the whole listing fits
  in that page) ids that differ from the stored ones, means changed.
* **Did an open issue or PR vanish?** The listing's ``open_issues_count`` (open issues and
  PRs) differs from the open rows stored: changed, and its sync recounts after reading
  the newest items and walks the complete listing when they still differ (deleted or
  transferred open items are found in that run, not a day later).

A repository never synced, or renamed since its last sync (every row's URL changes), is
changed. An unchanged organisation thus costs its listing's conditional pages (304s) and
one request for its issues, whatever its size.

Deletions and transfers of *closed* items in repositories whose issue listing spans
several pages leave no trace in any of these signals. They are applied from webhooks at
once, and caught by a rolling reconciliation: each run walks the complete issue listing of
a slice of the repositories (1/``reconcile_every`` of them, chosen by the run's hour, so
every repository is reconciled once a day with hourly runs) and compares the ids present
with the ids stored. The walk is free where pages did not change (304). A difference makes
the repository "changed" with ``reconcile`` set, and its sync reads the whole listing and
tombstones what GitHub no longer lists. The weekly full sync reconciles everything.

This module owns the probes and what counts as a change. It must not write anything but the
carried-forward metrics and the issue watermarks of unchanged repositories, and holds no SQL (:mod:`github_sync.store`)
and no URLs (:mod:`github_sync.github.listings`): a probe asks for exactly the first page the
repository sync reads, so that they share one cache entry.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import psycopg

from github_sync.github.errors import GitHubClientError, RepositoryUnavailable
from github_sync.github.listings import (
    COMMITS_LISTING,
    ISSUES_LISTING,
    GitHubClient,
    first_page,
    iter_listing,
    iter_organisation_issues,
)
from github_sync.store import projects, synced_rows
from github_sync.store.cursors import advance_issue_checks, advance_push_checks, read_cursors_of
from github_sync.store.transactions import unit_of_work
from github_sync.sync.daily_metrics import carry_metrics_forward
from github_sync.sync.targets import RepositoryTarget
from github_sync.transform.normalizer import listing_keys
from github_sync.transform.timestamps import latest, parse_github_timestamp

log = logging.getLogger(__name__)

DEFAULT_PROBE_WORKERS = 8
# With hourly runs, every repository's complete issue listing is compared once a day.
DEFAULT_RECONCILE_EVERY = 24
# A reconciliation slot lasts an hour: consecutive hourly runs reconcile different slices.
RECONCILIATION_SLOT_SECONDS = 3600
# The organisation's issue listing is asked from this long before the oldest watermark:
# GitHub's replicas' clocks are not perfectly in step and updated_at has one-second resolution.
WATERMARK_OVERLAP = timedelta(minutes=5)
# A repository whose watermark is older than this is probed on its own, so that one stale
# repository cannot make the organisation's listing reach back weeks...
MAX_WATERMARK_AGE = timedelta(days=7)
# ...nor older than this before the newest watermark of its organisation: a repository that
# keeps failing (or is skipped) does not drag every run's listing back to its last sync. Six
# hours covers the spread of one long full sync's reads.
STALE_WATERMARK_MARGIN = timedelta(hours=6)
# GitHub's header on a listing that left out the resources of organisations whose SAML SSO the
# credential has not authorised
# (https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api#personal-access-tokens-and-saml-sso):
# such a listing cannot say "nothing changed".
SSO_HEADER = "X-GitHub-SSO"
SSO_PARTIAL = "partial-results"
# What GitHub answers when a credential may not use the organisation's issue listing, or
# the owner is not an organisation: then every repository is probed on its own.
SIGNAL_REFUSED_STATUSES = (403, 404, 410, 422)


@dataclass(frozen=True)
class StoredState:
    """What the database holds of one repository, for comparison with the signals.

    ``listed_push`` and ``listed_open`` are this run's listing (discovery stored it in
    ``projects`` before detection runs); the rest is what the last committed sync left.
    """

    synced: bool
    issues_cursor: datetime | None
    commits_head: str | None
    live_issue_ids: frozenset[int]
    live_pr_numbers: frozenset[int]
    # The repository was empty when last synced and has not been pushed to since.
    empty_since: bool = False
    # GitHub's clock when the last sync read the issue listing, and the name it had then.
    issues_listed_at: datetime | None = None
    synced_full_name: str | None = None
    # GitHub's clock when detection last found its issues unchanged (after that sync).
    issues_checked_at: datetime | None = None
    # pushed_at when the last sync read the commits, and as this run's listing reports it.
    synced_push: datetime | None = None
    listed_push: datetime | None = None
    # Open issues and PRs: as this run's listing counts them, as stored, and GitHub's count
    # that the last sync could not explain (its counter drifts at times).
    listed_open: int = 0
    stored_open: int = 0
    unexplained_open: int | None = None
    # The default branch the last sync read, and when commits were last read (or probed).
    synced_branch: str | None = None
    commits_read_at: datetime | None = None

    @property
    def issues_watermark(self) -> datetime | None:
        """Up to when every change of its issues was seen: its sync's read, or a later check."""
        return latest(self.issues_listed_at, self.issues_checked_at)


@dataclass
class Detection:
    """The outcome of change detection over a run's repositories."""

    changed: list[RepositoryTarget] = field(default_factory=list)
    unchanged: list[RepositoryTarget] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    # How the issue question was answered: organisation -> its listing's ``since``, or None
    # where GitHub refused it (its repositories were probed one by one).
    organisation_signals: dict[str, str | None] = field(default_factory=dict)


def load_stored_states(cursor: psycopg.Cursor[Any], project_ids: Sequence[int]) -> dict[int, StoredState]:
    """Read cursors, sync status, live keys and open counts of the given projects (those that exist)."""
    listed = projects.listed_facts(cursor, project_ids)
    existing = [project_id for project_id in project_ids if project_id in listed]
    synced = synced_rows.synced_project_ids(cursor, existing)
    cursors = read_cursors_of(cursor, existing)
    keys = synced_rows.live_keys_of(cursor, existing)
    open_counts = synced_rows.open_counts_of(cursor, existing)
    return {
        project_id: StoredState(
            synced=project_id in synced,
            issues_cursor=cursors[project_id].issues,
            commits_head=cursors[project_id].commits.head,
            empty_since=cursors[project_id].commits.still_empty(listed[project_id].last_push),
            live_issue_ids=keys[project_id].issue_ids,
            live_pr_numbers=keys[project_id].pr_numbers,
            issues_listed_at=cursors[project_id].issues_listed_at,
            synced_full_name=cursors[project_id].synced_full_name,
            issues_checked_at=cursors[project_id].issues_checked_at,
            synced_push=cursors[project_id].commits.pushed_at,
            listed_push=listed[project_id].last_push,
            listed_open=listed[project_id].open_issues,
            stored_open=open_counts[project_id],
            unexplained_open=cursors[project_id].unexplained_open,
            synced_branch=cursors[project_id].commits.branch,
            # Cursors written before read_at was kept: the issue read preceded the commit read.
            commits_read_at=cursors[project_id].commits.read_at or cursors[project_id].issues_listed_at,
        )
        for project_id in existing
    }


@dataclass(frozen=True)
class OrganisationIssues:
    """What an organisation's issue listing said: the newest update per repository since ``since``.

    ``read_at`` is GitHub's clock when it answered the first page (newest first): every change
    stamped before it is in the listing.
    """

    since: datetime
    newest_by_repository: Mapping[str, datetime]  # lower-case owner/name -> newest updated_at
    read_at: datetime | None = None

    def covers(self, state: StoredState) -> bool:
        """Whether every change after the repository's watermark is inside this listing."""
        mark = state.issues_watermark
        return mark is not None and mark - WATERMARK_OVERLAP >= self.since

    def newest(self, full_name: str) -> datetime | None:
        return self.newest_by_repository.get(full_name.lower())


def signal_since(states: Sequence[StoredState], *, as_of: datetime) -> datetime:
    """Where an organisation's issue listing must start to cover these repositories.

    The oldest watermark not older than :data:`MAX_WATERMARK_AGE` nor more than
    :data:`STALE_WATERMARK_MARGIN` before the newest, minus the overlap; without any, ``as_of``
    minus the overlap: that listing covers none of them (each is probed), but
    its answer's time becomes the watermark of those found unchanged, so the next run covers them.
    """
    marks = [mark for mark in (s.issues_watermark for s in states if s.synced) if mark is not None]
    if not marks:
        return as_of - WATERMARK_OVERLAP
    horizon = max(as_of - MAX_WATERMARK_AGE, max(marks) - STALE_WATERMARK_MARGIN)
    usable = [mark for mark in marks if mark >= horizon]
    return (min(usable) if usable else as_of) - WATERMARK_OVERLAP


def organisation_issues(client: GitHubClient, org: str, since: datetime) -> OrganisationIssues | None:
    """Read ``org``'s issues and PRs updated since ``since``; None when GitHub refuses the listing."""
    newest: dict[str, datetime] = {}
    read_at: datetime | None = None
    try:
        for number, page in enumerate(iter_organisation_issues(client, org, since)):
            if number == 0:
                read_at = page.server_time
            if SSO_PARTIAL in str((getattr(page, "headers", None) or {}).get(SSO_HEADER, "")):
                log.warning(
                    "GitHub left out resources of organisation %s (SAML SSO not authorised for the credential): "
                    "its repositories are probed one by one",
                    org,
                )
                return None
            for item in page.items:
                name = repository_of(item)
                updated = parse_github_timestamp(item.get("updated_at"))
                if name is not None and updated is not None:
                    newest[name] = latest(newest.get(name), updated) or updated
    except GitHubClientError as exc:
        if exc.status not in SIGNAL_REFUSED_STATUSES:
            raise
        log.warning(
            "GitHub refused the issue listing of organisation %s (%s): its repositories are probed one by one",
            org,
            exc,
        )
        return None
    return OrganisationIssues(since=since, newest_by_repository=newest, read_at=read_at)


def repository_of(item: Mapping[str, Any]) -> str | None:
    """Lower-case ``owner/name`` of an issue of an organisation listing (its ``repository`` object)."""
    repository = item.get("repository")
    if isinstance(repository, Mapping) and repository.get("full_name"):
        return str(repository["full_name"]).lower()
    url = item.get("repository_url")
    if isinstance(url, str) and "/repos/" in url:
        return url.split("/repos/", 1)[1].strip("/").lower()
    return None


@dataclass(frozen=True)
class Questions:
    """What is still open about one repository once the cheap signals are read."""

    reason: str | None  # already known to have changed, and why
    probe_issues: bool = True
    probe_commits: bool = True


def ask_signals(
    target: RepositoryTarget, state: StoredState | None, issues: OrganisationIssues | None
) -> Questions:
    """Answer what the stored state and the owner-wide signals can answer for ``target``."""
    if state is None or not state.synced:
        return Questions("never synced")
    if state.synced_full_name is not None and state.synced_full_name != target.full_name:
        return Questions(f"renamed from {state.synced_full_name}")
    if state.listed_open not in (state.stored_open, state.unexplained_open):
        return Questions(
            f"open issues and pull requests: GitHub lists {state.listed_open}, {state.stored_open} stored"
        )
    if state.synced_branch is not None and target.default_branch not in (None, state.synced_branch):
        return Questions(f"default branch changed to {target.default_branch}")
    probe_issues = True
    if issues is not None and issues.covers(state):
        probe_issues = False
        newest = issues.newest(target.full_name)
        if newest is not None and _after_last_read(newest, state.issues_cursor, state.issues_watermark):
            return Questions("issues changed")
    return Questions(None, probe_issues=probe_issues, probe_commits=_maybe_pushed(state))


def _after_last_read(updated: datetime, cursor: datetime | None, watermark: datetime | None) -> bool:
    """Whether an item updated at ``updated`` may be newer than what the last sync committed.

    Newer than the cursor, or in (or after) the second of the watermark: timestamps have
    one-second resolution, so an update in that second may have come after the read and
    carry the cursor's own time.
    """
    if cursor is None or updated > cursor:
        return True
    return watermark is not None and updated >= watermark.replace(microsecond=0)


def _maybe_pushed(state: StoredState) -> bool:
    """Whether the default branch may have moved since the last sync read the commits.

    The listing's ``pushed_at`` equal to the one the sync read at says no, unless that push
    was stamped in (or after) the second of the last commit read (the sync's, or a probe's that
    found the head unchanged): a push later in the same second would carry the same
    ``pushed_at`` (GitHub's timestamps are whole seconds).
    """
    if state.empty_since:
        return False
    if state.synced_push is None or state.synced_push != state.listed_push:
        return True
    read_at = state.commits_read_at
    return read_at is None or state.synced_push >= read_at.replace(microsecond=0)


@dataclass(frozen=True)
class Probed:
    """What probing a repository found: why it changed (``None``: unchanged), and when GitHub
    answered a commits probe that found the stored head (``None``: no such probe)."""

    reason: str | None
    head_seen_at: datetime | None = None


def probe_repository(
    client: GitHubClient,
    target: RepositoryTarget,
    state: StoredState | None,
    *,
    issues: bool = True,
    commits: bool = True,
) -> Probed:
    """Probe the listings asked for (first pages, conditional); say why ``target`` needs a sync."""
    if state is None or not state.synced:
        return Probed("never synced")
    if issues:
        reason = _probe_issues(client, target, state)
        if reason is not None:
            return Probed(reason)
    if commits and not state.empty_since:
        return _probe_commits(client, target, state)
    return Probed(None)


def _probe_issues(client: GitHubClient, target: RepositoryTarget, state: StoredState) -> str | None:
    page = first_page(client, ISSUES_LISTING, target.full_name)
    if not page.not_modified:
        return "issues changed"
    # A 304 can still hide changes a previous, interrupted run fetched but never committed.
    newest_issue = latest(*(parse_github_timestamp(item.get("updated_at")) for item in page.items))
    if newest_issue is not None and (state.issues_cursor is None or newest_issue > state.issues_cursor):
        return "issues changed (not yet committed)"
    if page.next_url is None:
        ids, numbers = listing_keys(page.items)
        if ids != state.live_issue_ids or numbers != state.live_pr_numbers:
            return "issues added or removed (not yet committed)"
    return None


def _probe_commits(client: GitHubClient, target: RepositoryTarget, state: StoredState) -> Probed:
    try:
        page = first_page(client, COMMITS_LISTING, target.full_name)
    except RepositoryUnavailable as exc:
        if exc.reason == "empty":
            return Probed(None)
        raise
    head = page.items[0].get("sha") if page.items else None
    if head != state.commits_head:
        return Probed("commits pushed")
    return Probed(None, head_seen_at=page.server_time)


def reconcile_repository(client: GitHubClient, target: RepositoryTarget, state: StoredState) -> str | None:
    """Walk the complete issue listing; return why the stored ids differ, or ``None``."""
    ids, numbers = listing_keys(
        item for page in iter_listing(client, ISSUES_LISTING, target.full_name) for item in page.items
    )
    missing = len(state.live_issue_ids - ids) + len(state.live_pr_numbers - numbers)
    unknown = len(ids - state.live_issue_ids) + len(numbers - state.live_pr_numbers)
    if missing or unknown:
        return f"reconciliation: {missing} stored rows no longer listed, {unknown} listed rows not stored"
    return None


def reconciliation_slot(as_of: datetime, reconcile_every: int) -> int:
    """Which slice of the repositories this run reconciles (changes every hour)."""
    return int(as_of.timestamp() // RECONCILIATION_SLOT_SECONDS) % reconcile_every


def detect_changes(
    client: GitHubClient,
    conn: psycopg.Connection[Any],
    targets: Sequence[RepositoryTarget],
    *,
    as_of: datetime,
    organisations: Collection[str] = (),
    max_workers: int = DEFAULT_PROBE_WORKERS,
    reconcile_every: int = DEFAULT_RECONCILE_EVERY,
) -> Detection:
    """Decide which targets changed (see the module's rules); carry the others' metrics forward to ``as_of``.

    Args:
        client: the GitHub hook (thread-safe).
        conn: a psycopg 3 connection; committed once (the carried-forward metrics).
        targets: the repositories of the run, as discovery listed them (it stored the
            listing's ``pushed_at`` and ``open_issues_count`` in ``projects``).
        as_of: the run's time.
        organisations: the run's owners that are organisations (their issue listing is
            asked once instead of each repository's).
        max_workers: concurrent probes (the hook's in-flight limit also applies).
        reconcile_every: reconcile 1/N of the repositories per run (1: all of them).

    Raises:
        Whatever a probe raises other than an unavailable repository (which counts as
        changed, so that its own task records why it is skipped).
    """
    if reconcile_every < 1:
        raise ValueError(f"reconcile_every must be at least 1, got {reconcile_every}")
    with unit_of_work(conn) as cursor:
        states = load_stored_states(cursor, [t.project_id for t in targets])
    slot = reconciliation_slot(as_of, reconcile_every)
    detection = Detection()
    signals = _organisation_signals(client, targets, states, organisations, as_of, detection)

    # {project_id: (pushed_at, when a probe saw the stored head)} of unchanged repositories
    # whose pushes were elsewhere than the default branch: stored, so they are not probed again.
    push_checks: dict[int, tuple[datetime, datetime]] = {}

    def probe(target: RepositoryTarget) -> tuple[RepositoryTarget, str | None]:
        state = states.get(target.project_id)
        questions = ask_signals(target, state, signals.get(_owner_of(target)))
        try:
            reason = questions.reason
            if reason is None:
                probed = probe_repository(
                    client, target, state, issues=questions.probe_issues, commits=questions.probe_commits
                )
                reason = probed.reason
                if state is not None and state.listed_push is not None and probed.head_seen_at is not None:
                    push_checks[target.project_id] = (state.listed_push, probed.head_seen_at)
            if state is not None and state.synced and target.project_id % reconcile_every == slot:
                reconciliation = reconcile_repository(client, target, state)
                if reconciliation is not None:
                    return replace(target, reconcile=True), reconciliation
            return target, reason
        except RepositoryUnavailable as exc:
            return target, f"unavailable ({exc.reason})"

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="probe") as pool:
        for target, reason in pool.map(probe, targets):
            if reason is None:
                detection.unchanged.append(target)
            else:
                detection.changed.append(target)
                detection.reasons[target.full_name] = reason
    unchanged_ids = {target.project_id for target in detection.unchanged}
    with unit_of_work(conn) as cursor:
        for target in detection.unchanged:
            carry_metrics_forward(cursor, target.project_id, as_of)
        for org, listing in signals.items():
            if listing.read_at is not None:
                # Their issues were seen unchanged up to the listing's answer (probes came after it).
                unchanged = [t.project_id for t in detection.unchanged if _owner_of(t) == org]
                advance_issue_checks(cursor, unchanged, listing.read_at)
        advance_push_checks(
            cursor, {pid: check for pid, check in push_checks.items() if pid in unchanged_ids}
        )
    log.info(
        "%d of %d repositories changed: %s",
        len(detection.changed),
        len(targets),
        ", ".join(f"{name} ({why})" for name, why in sorted(detection.reasons.items())[:100]) or "none",
    )
    return detection


def _owner_of(target: RepositoryTarget) -> str:
    return target.full_name.split("/", 1)[0].lower()


def _organisation_signals(
    client: GitHubClient,
    targets: Sequence[RepositoryTarget],
    states: Mapping[int, StoredState],
    organisations: Collection[str],
    as_of: datetime,
    detection: Detection,
) -> dict[str, OrganisationIssues]:
    """Each organisation's issue listing since its repositories' oldest usable watermark."""
    signals: dict[str, OrganisationIssues] = {}
    for org in organisations:
        owned = [
            states[t.project_id] for t in targets if _owner_of(t) == org.lower() and t.project_id in states
        ]
        if not any(state.synced for state in owned):
            continue  # a first sync: nothing to compare with
        since = signal_since(owned, as_of=as_of)
        listing = organisation_issues(client, org, since)
        if listing is not None and not _lists_what_is_stored(listing, targets, states, org):
            listing = None
        detection.organisation_signals[org] = since.isoformat() if listing is not None else None
        if listing is not None:
            signals[org.lower()] = listing
    return signals


def _lists_what_is_stored(
    listing: OrganisationIssues,
    targets: Sequence[RepositoryTarget],
    states: Mapping[int, StoredState],
    org: str,
) -> bool:
    """Whether the listing shows what the last syncs stored from inside its window.

    A repository it covers whose newest stored item was updated after ``since`` must appear
    with at least that time. If one does not, the listing does not show this credential every
    repository (GitHub lists an organisation's issues by membership and team access, which
    need not match what the repository listing shows) and cannot say "unchanged" for any.
    """
    for target in targets:
        state = states.get(target.project_id)
        if _owner_of(target) != org.lower() or state is None or not listing.covers(state):
            continue
        cursor = state.issues_cursor
        if cursor is not None and cursor >= listing.since:
            newest = listing.newest(target.full_name)
            if newest is None or newest < cursor:
                log.warning(
                    "The issue listing of organisation %s does not show %s's issue updated at %s: "
                    "its repositories are probed one by one",
                    org,
                    target.full_name,
                    cursor.isoformat(),
                )
                return False
    return True


__all__ = [
    "Detection",
    "OrganisationIssues",
    "Probed",
    "StoredState",
    "ask_signals",
    "detect_changes",
    "load_stored_states",
    "probe_repository",
]
