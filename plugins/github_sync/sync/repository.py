"""Sync one repository end to end: fetch, normalise, load, in one transaction.

This is the unit of work of every sync DAG (full, incremental, single repository): the
mapped ``sync_repository`` task calls :func:`sync_repository` once per repository. The module
owns the order of the steps and where each listing's walk stops; it must not hold SQL (that
is :mod:`github_sync.store`), URLs (:mod:`github_sync.github.listings`) or row shapes
(:mod:`github_sync.transform`), and knows nothing of Airflow. It is one piece (over 300
lines) because its steps share one transaction, one progress record and one set of stop rules:
where the issue and commit walks stop (cursors, overlap, window) and when the metrics and the
commits cursor are written again must agree, and reading them together is what shows that.

Requests, for a repository with fewer than 100 issues+PRs, commits and contributors:

1. ``GET /repos/{r}/issues?state=all&sort=updated&direction=desc&per_page=100`` - issues
   *and* pull requests (GitHub lists PRs there too, with ``pull_request.merged_at``), so
   the pulls endpoint is not needed (an incremental run asks it for the open PRs only when it
   stops before the end of the listing, see :func:`_recheck_open_pulls`);
2. ``GET /repos/{r}/commits?per_page=100`` - newest first; read until the commit window
   starts; when the whole history fits, this also gives the commit count;
3. ``GET /repos/{r}/contributors?anon=1&per_page=100`` - the contributor count (with its last
   page when there are more, see :func:`github_sync.github.listings.count_listing`);
4. ``GET /repos/{r}/git/trees/{branch}?recursive=1`` - lines of code, tech stack, CI, tests.

Every request is conditional (ETag): an unchanged listing answers 304 and costs no budget.
Requests 3 and 4 are made only when something was pushed (or in a full run); otherwise the
metrics are carried forward (:mod:`github_sync.sync.daily_metrics`).

Why newest-first: the first page of each listing is the same URL in every run, so its
ETag tells "nothing changed" for free, and an incremental run reads only until it meets
what it already has. Paging by "updated, descending" also cannot skip an item updated
while we page (it jumps to page 1, which we have read; the rest only shifts down).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import psycopg

from github_sync.github.errors import GitHubClientError, RepositoryUnavailable
from github_sync.github.listings import (
    COMMITS_LISTING,
    ISSUE_RESOURCE,
    ISSUES_LISTING,
    OPEN_ISSUES_LISTING,
    OPEN_PULLS_LISTING,
    GitHubClient,
    ListingPage,
    count_listing,
    iter_listing,
)
from github_sync.store import loader, projects, synced_rows
from github_sync.store.cursors import (
    CommitsCursor,
    RepositoryCursors,
    read_cursors,
    write_commits_cursor,
    write_issues_cursor,
)
from github_sync.store.projects import StoredProject
from github_sync.store.run_records import RepositoryOutcome
from github_sync.store.transactions import unit_of_work
from github_sync.sync import daily_metrics
from github_sync.sync.targets import DEFAULT_COMMITS_SINCE_DAYS, RepositoryTarget, SyncOptions
from github_sync.transform.normalizer import (
    is_pull_request,
    normalize_commit,
    normalize_issue,
    normalize_pull_request,
)
from github_sync.transform.timestamps import latest

# The inputs (github_sync.sync.targets) are exported here too: every caller of sync_repository
# builds them, and the DAG package imports them from here.
__all__ = [
    "CURSOR_OVERLAP",
    "DEFAULT_COMMITS_SINCE_DAYS",
    "RepositoryTarget",
    "SyncOptions",
    "sync_repository",
]

log = logging.getLogger(__name__)

# Re-read this much before a cursor: clocks of GitHub's replicas are not perfectly in step
# and updated_at has one-second resolution, so an update in the same second as the cursor
# could otherwise be lost. Re-reading costs nothing extra (the rows are in the same page).
CURSOR_OVERLAP = timedelta(minutes=5)
# What GitHub resolves to the default branch when neither the target nor the project names it.
DEFAULT_BRANCH_REF = "HEAD"
TOMBSTONE_REASON = "missing from listing"
# Stored open items re-read one by one when GitHub's open count says some vanished; with more,
# the complete issue listing is read instead.
MAX_OPEN_RECHECKS = 50
# What GitHub answers for one issue deleted (410 Gone) or moved where the token cannot read it
# (404) (https://docs.github.com/en/rest/issues/issues#get-an-issue).
GONE_STATUSES = (404, 410)


@dataclass
class _Progress:
    counts: dict[str, int] = field(default_factory=dict)
    written: int = 0
    seen: int = 0

    def add(self, table: str, seen: int, written: int) -> None:
        self.counts[table] = self.counts.get(table, 0) + seen
        self.seen += seen
        self.written += written


@dataclass(frozen=True)
class _Stored:
    """What the database holds of the repository when its sync starts."""

    project: StoredProject
    cursors: RepositoryCursors
    previous_metrics: dict[str, Any] | None  # None: never synced
    incremental: bool  # the run is incremental and the repository was synced before


@dataclass(frozen=True)
class _StreamResult:
    newest: datetime | None  # newest updated_at / commit time seen
    complete: bool  # the whole listing was read
    total: int  # items in the listing, when complete
    head: str | None = None  # commits: the default branch's newest sha
    first_page: ListingPage | None = None  # commits: the first page (for counting without a new request)
    empty: bool = False  # commits: the repository has none (GitHub answers 409)
    listed_at: datetime | None = None  # issues: GitHub's clock when it answered the first page
    unexplained_open: int | None = None  # issues: GitHub's open count the stored rows do not add up to


_EMPTY_REPOSITORY = _StreamResult(newest=None, complete=True, total=0, empty=True)


def sync_repository(
    client: GitHubClient,
    conn: psycopg.Connection[Any],
    target: RepositoryTarget,
    options: SyncOptions,
) -> RepositoryOutcome:
    """Sync one repository in one transaction and return its outcome.

    In incremental mode the listings are read newest first only down to the stored
    cursors (minus :data:`CURSOR_OVERLAP`); a repository never synced before is read whole.
    Cursors advance in the same transaction as the rows they cover, so a run killed
    mid-repository leaves the cursors where they were and the next run redoes it.

    Args:
        client: the GitHub hook.
        conn: a psycopg 3 connection (``PostgresHook(...).get_conn()``); committed on
            success, rolled back on any error, which is then re-raised.
        target: which repository.
        options: run-level options.

    Returns:
        The outcome (records written, counts per table). Request counters are filled in
        by the caller, which owns the hook.

    Raises:
        RepositoryUnavailable: the repository is gone or blocked (nothing written).
        RateLimitExhausted: the budget ran out; nothing of this repository is committed
            and a retry redoes it (pages already fetched are in the ETag cache: free).
    """
    progress = _Progress()
    with unit_of_work(conn) as cursor:
        stored = _read_stored(cursor, target, options)
        issues = _sync_issues(client, cursor, target, options, _issues_stop(stored, target), progress)
        if stored.incremental and not issues.complete:
            _recheck_open_pulls(client, cursor, target, options, progress)
        unexplained = _unexplained_open_count(cursor, target, stored)
        if unexplained is not None and stored.incremental and not issues.complete:
            log.info("%s: GitHub counts %d open issues and pull requests, other than stored: reading the open ones",
                     target.full_name, unexplained)  # fmt: skip
            _reconcile_open_items(client, cursor, target, options, progress)
            unexplained = _unexplained_open_count(cursor, target, stored)
        issues = replace(issues, unexplained_open=unexplained)
        commits = _sync_commits_unless_empty(client, cursor, target, options, _commits_stop(stored), progress)
        # The head sha, not a time, tells a push: commit times have one-second resolution
        # and can be older than the cursor (rebases, clock skew).
        pushed = commits.head != stored.cursors.commits.head
        remeasure = not stored.incremental or pushed or commits.empty
        metrics = _metrics(client, cursor, target, stored, commits, remeasure, options.as_of)
        progress.add(
            "project_metrics",
            1,
            loader.upsert_metrics(cursor, target.project_id, options.as_of.date(), metrics),
        )
        _advance_cursors(cursor, target, stored, issues, commits)
    log.info(
        "Synced %s (%s): %d rows seen, %d written %s",
        target.full_name,
        "incremental" if stored.incremental else "full",
        progress.seen,
        progress.written,
        json.dumps(progress.counts, sort_keys=True),
    )
    return RepositoryOutcome(
        repository=target.full_name,
        state="success",
        project_id=target.project_id,
        records=progress.written,
        counts=progress.counts,
    )


def _read_stored(cursor: psycopg.Cursor[Any], target: RepositoryTarget, options: SyncOptions) -> _Stored:
    project = projects.read_project(cursor, target.project_id)
    cursors = read_cursors(cursor, target.project_id)
    previous = daily_metrics.last_metrics(cursor, target.project_id)
    return _Stored(
        project=project,
        cursors=cursors,
        previous_metrics=previous,
        incremental=options.incremental and previous is not None,
    )


def _issues_stop(stored: _Stored, target: RepositoryTarget) -> datetime | None:
    # Reconciliation found ids the cursor cannot explain: read the whole listing.
    if not stored.incremental or target.reconcile:
        return None
    return _minus_overlap(stored.cursors.issues)


def _commits_stop(stored: _Stored) -> datetime | None:
    return _minus_overlap(stored.cursors.commits.newest) if stored.incremental else None


def _minus_overlap(cursor_value: datetime | None) -> datetime | None:
    return cursor_value - CURSOR_OVERLAP if cursor_value is not None else None


def _sync_issues(
    client: GitHubClient,
    cursor: psycopg.Cursor[Any],
    target: RepositoryTarget,
    options: SyncOptions,
    stop_before: datetime | None,
    progress: _Progress,
) -> _StreamResult:
    """Upsert issues and PRs page by page, newest first, until ``stop_before`` (None: all)."""
    newest: datetime | None = None
    listed_at: datetime | None = None
    seen_bug_ids: list[int] = []
    seen_pr_numbers: list[int] = []
    complete = True
    for number, page in enumerate(iter_listing(client, ISSUES_LISTING, target.full_name)):
        if number == 0:
            # Newest first: whatever changes after GitHub answered this page, the next run sees.
            listed_at = page.server_time
        bugs, pulls = _upsert_issue_items(cursor, target, options, page.items, progress)
        rows = [*bugs, *pulls]
        seen_bug_ids.extend(row["github_id"] for row in bugs)
        seen_pr_numbers.extend(row["number"] for row in pulls)
        newest = latest(newest, *(row["updated_at"] for row in rows))
        if stop_before is not None and rows and min(row["updated_at"] for row in rows) < stop_before:
            # Everything further down is older than what the last run committed.
            complete = page.next_url is None
            break
    if complete:
        # A complete listing is the truth: what we hold and GitHub no longer lists was
        # deleted or transferred away (incremental runs get here for one-page repositories).
        gone = _tombstone_missing(cursor, target.project_id, seen_bug_ids, seen_pr_numbers, options.as_of)
        progress.add("removed", gone, gone)
    return _StreamResult(
        newest=newest, complete=complete, total=len(seen_bug_ids) + len(seen_pr_numbers), listed_at=listed_at
    )


def _unexplained_open_count(
    cursor: psycopg.Cursor[Any], target: RepositoryTarget, stored: _Stored
) -> int | None:
    """GitHub's open count when the stored open rows still do not add up to it, else ``None``.

    Stored with the cursor, so that change detection does not flag the repository again for a
    count that a reconciliation could not explain (GitHub's counter drifts at times), only
    when GitHub's count moves again.
    """
    held = synced_rows.open_counts_of(cursor, [target.project_id])[target.project_id]
    return None if held == stored.project.open_issues else stored.project.open_issues


def _reconcile_open_items(
    client: GitHubClient,
    cursor: psycopg.Cursor[Any],
    target: RepositoryTarget,
    options: SyncOptions,
    progress: _Progress,
) -> None:
    """Find which stored open issues and PRs GitHub no longer lists as open, and why.

    Reads the open listing (about one page per 100 open items, oldest first so that updates
    do not shift it), upserts what it lists, and re-reads each stored open item it does not
    list: 410 or 404 means deleted, a 301 to another repository means transferred (both
    tombstoned), an answer from this repository is upserted (it was closed or merged). With
    more than :data:`MAX_OPEN_RECHECKS` such items the complete listing is read instead.
    """
    listed = [
        item for page in iter_listing(client, OPEN_ISSUES_LISTING, target.full_name) for item in page.items
    ]
    _upsert_issue_items(cursor, target, options, listed, progress)
    listed_numbers = {int(item["number"]) for item in listed}
    missing = {
        number: table
        for number, table in synced_rows.open_numbers(cursor, target.project_id).items()
        if number not in listed_numbers
    }
    if len(missing) > MAX_OPEN_RECHECKS:
        _sync_issues(client, cursor, target, options, None, progress)
        return
    removed = 0
    for number, table in sorted(missing.items()):
        item = _read_issue(client, target, number)
        if item is None:
            reason: str | None = "deleted"  # 410 Gone, or 404 where the token cannot see where it went
        elif not str(item.get("repository_url", "")).lower().endswith(f"/repos/{target.full_name.lower()}"):
            reason = "transferred"  # the 301 led to another repository
        else:
            reason = None
            _upsert_issue_items(cursor, target, options, [item], progress)
        if reason is not None:
            removed += loader.mark_removed(
                cursor, table, reason=reason, removed_at=options.as_of,
                where={"project_id": target.project_id, "number": number},
            )  # fmt: skip
    progress.add("removed", removed, removed)
    log.info("%s: %d open items re-read, %d removed", target.full_name, len(missing), removed)


def _read_issue(client: GitHubClient, target: RepositoryTarget, number: int) -> Any | None:
    """One issue or PR by number (following a transfer's 301), or ``None`` when GitHub says it is gone."""
    try:
        return client.get(ISSUE_RESOURCE.path_for(target.full_name, number=number)).json
    except GitHubClientError as exc:
        if exc.status not in GONE_STATUSES:
            raise
        return None


def _upsert_issue_items(
    cursor: psycopg.Cursor[Any],
    target: RepositoryTarget,
    options: SyncOptions,
    items: list[Any],
    progress: _Progress,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Normalise and upsert issues and PRs of the issues listing; return the (bug, pull request) rows."""
    bugs = [
        normalize_issue(item, as_of=options.as_of, rules=options.rules)
        for item in items
        if not is_pull_request(item)
    ]
    pulls = [normalize_pull_request(item, as_of=options.as_of) for item in items if is_pull_request(item)]
    progress.add(
        "bugs", len(bugs), loader.upsert_rows(cursor, loader.BUGS, bugs, project_id=target.project_id)
    )
    progress.add(
        "pull_requests", len(pulls),
        loader.upsert_rows(cursor, loader.PULL_REQUESTS, pulls, project_id=target.project_id),
    )  # fmt: skip
    return bugs, pulls


def _tombstone_missing(
    cursor: psycopg.Cursor[Any], project_id: int, bug_ids: list[int], pr_numbers: list[int], as_of: datetime
) -> int:
    scope = {"project_id": project_id}
    return loader.mark_removed(
        cursor, "bugs", reason=TOMBSTONE_REASON, removed_at=as_of, where=scope, not_in=("github_id", bug_ids)
    ) + loader.mark_removed(
        cursor, "pull_requests", reason=TOMBSTONE_REASON, removed_at=as_of, where=scope,
        not_in=("number", pr_numbers),
    )  # fmt: skip


def _recheck_open_pulls(
    client: GitHubClient,
    cursor: psycopg.Cursor[Any],
    target: RepositoryTarget,
    options: SyncOptions,
    progress: _Progress,
) -> None:
    """Re-read PRs stored as open that GitHub no longer lists as open (merged or closed).

    An incremental run reads only what was updated since its cursor, and a PR's merge is
    not always reflected in its ``updated_at`` (e.g. merged by a push of its head to the
    base branch). One conditional request (free when the open set did not change) tells
    which stored open PRs are no longer open; each of those is read again.
    """
    stored_open = synced_rows.open_pull_numbers(cursor, target.project_id)
    if not stored_open:
        return
    still_open = {int(pr["number"]) for page in iter_listing(client, OPEN_PULLS_LISTING, target.full_name)
                  for pr in page.items}  # fmt: skip
    rows = []
    for number in sorted(stored_open - still_open):
        item = _read_issue(client, target, number)
        if item is None:
            continue  # deleted: the open-count check or the complete listing tombstones it
        rows.append(normalize_pull_request(item, as_of=options.as_of))
    progress.add(
        "pull_requests",
        len(rows),
        loader.upsert_rows(cursor, loader.PULL_REQUESTS, rows, project_id=target.project_id),
    )


def _sync_commits_unless_empty(
    client: GitHubClient,
    cursor: psycopg.Cursor[Any],
    target: RepositoryTarget,
    options: SyncOptions,
    stop_before: datetime | None,
    progress: _Progress,
) -> _StreamResult:
    try:
        return _sync_commits(client, cursor, target, options, stop_before, progress)
    except RepositoryUnavailable as exc:
        if exc.reason != "empty":
            raise
        return _EMPTY_REPOSITORY


def _sync_commits(
    client: GitHubClient,
    cursor: psycopg.Cursor[Any],
    target: RepositoryTarget,
    options: SyncOptions,
    stop_before: datetime | None,
    progress: _Progress,
) -> _StreamResult:
    """Upsert the window's commits, newest first, until the window or ``stop_before`` starts."""
    stop = options.commits_since if stop_before is None else max(options.commits_since, stop_before)
    newest: datetime | None = None
    head: str | None = None
    first: ListingPage | None = None
    total = 0
    complete = True
    for page in iter_listing(client, COMMITS_LISTING, target.full_name):
        rows = [normalize_commit(item) for item in page.items]
        if first is None:
            first = page
            head = rows[0]["sha"] if rows else None
        total += len(rows)
        in_window = [row for row in rows if row["committed_at"] >= options.commits_since]
        written = loader.upsert_rows(cursor, loader.COMMITS, in_window, project_id=target.project_id)
        progress.add("commits", len(in_window), written)
        newest = latest(newest, *(row["committed_at"] for row in rows))
        oldest = min((row["committed_at"] for row in rows), default=None)
        # The window always ends the walk. The cursor only does once a page brings nothing
        # new: commit times can be older than the cursor (a branch merged days after its
        # commits were made), and commits are immutable, so "nothing written" means "known".
        if oldest is not None and (oldest < options.commits_since or (oldest < stop and written == 0)):
            complete = page.next_url is None
            break
    return _StreamResult(newest=newest, complete=complete, total=total, head=head, first_page=first)


def _metrics(
    client: GitHubClient,
    cursor: psycopg.Cursor[Any],
    target: RepositoryTarget,
    stored: _Stored,
    commits: _StreamResult,
    remeasure: bool,
    as_of: datetime,
) -> dict[str, Any]:
    """The run date's metrics row: measured again after a push (or in a full run), else carried."""
    previous = stored.previous_metrics
    if not remeasure and previous is not None:
        return daily_metrics.carried_metrics(cursor, target.project_id, stored.project, previous, as_of)
    if commits.empty:
        return daily_metrics.empty_repository_metrics(cursor, target.project_id, stored.project, as_of)
    commits_count = (
        commits.total
        if commits.complete
        else count_listing(client, COMMITS_LISTING, target.full_name, commits.first_page)
    )
    return daily_metrics.measured_metrics(
        client,
        cursor,
        project_id=target.project_id,
        project=stored.project,
        full_name=target.full_name,
        branch=target.default_branch or stored.project.default_branch or DEFAULT_BRANCH_REF,
        commits_count=commits_count,
        as_of=as_of,
    )


def _advance_cursors(
    cursor: psycopg.Cursor[Any],
    target: RepositoryTarget,
    stored: _Stored,
    issues: _StreamResult,
    commits: _StreamResult,
) -> None:
    """Move the cursors over what this transaction wrote (their values never move back).

    Both are written by every sync: the issues cursor with when GitHub answered the listing
    and under which name (change detection asks the owner for changes since then), the
    commits cursor with the push the commits were read at (while the owner's listing reports
    the same push, nothing was pushed).
    """
    project_id = target.project_id
    write_issues_cursor(
        cursor,
        project_id,
        latest(issues.newest, stored.cursors.issues),
        listed_at=issues.listed_at,
        full_name=stored.project.full_name,
        unexplained_open=issues.unexplained_open,
    )
    # The head is the one the metrics were measured at (a moved head remeasures), the branch
    # the one read. An empty repository's push time is remembered so that change detection
    # need not ask again (a 409 costs budget) until GitHub reports a push.
    write_commits_cursor(
        cursor,
        project_id,
        CommitsCursor(
            newest=latest(commits.newest, stored.cursors.commits.newest),
            head=commits.head,
            branch=target.default_branch,
            # The commit read came after the issue read: that read's time bounds it from below.
            read_at=(commits.first_page.server_time if commits.first_page is not None else None)
            or issues.listed_at,
            empty=commits.empty,
            empty_at_push=stored.project.last_commit if commits.empty else None,
            pushed_at=stored.project.last_commit,
        ),
    )
