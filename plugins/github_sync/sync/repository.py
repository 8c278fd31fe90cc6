"""Sync one repository end to end: fetch, normalise, load, in one transaction.

This is the unit of work of every sync DAG (full, incremental, single repository): the
mapped ``sync_repository`` task calls :func:`sync_repository` once per repository.

Requests, for a repository with fewer than 100 issues+PRs and 100 commits:

1. ``GET /repos/{r}/issues?state=all&sort=updated&direction=desc&per_page=100`` - issues
   *and* pull requests (GitHub lists PRs there too, with ``pull_request.merged_at``), so
   the pulls endpoint is not needed;
2. ``GET /repos/{r}/commits?per_page=100`` - newest first; read until the commit window
   starts; when the whole history fits, this also gives the commit count;
3. ``GET /repos/{r}/contributors?per_page=1&anon=1`` - the contributor count from the
   ``last`` link;
4. ``GET /repos/{r}/git/trees/{branch}?recursive=1`` - lines of code, tech stack, CI, tests.

Every request is conditional (ETag): an unchanged listing answers 304 and costs no budget.

Why newest-first: the first page of each listing is the same URL in every run, so its
ETag tells "nothing changed" for free, and an incremental run reads only until it meets
what it already has. Paging by "updated, descending" also cannot skip an item updated
while we page (it jumps to page 1, which we have read; the rest only shifts down).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from github_sync.github.errors import RepositoryUnavailable
from github_sync.github.pagination import page_number, per_page_of
from github_sync.store import loader
from github_sync.store.run_records import RepositoryOutcome
from github_sync.transform.labels import LabelRules
from github_sync.transform.metrics import project_metrics
from github_sync.transform.normalizer import (
    is_pull_request,
    normalize_commit,
    normalize_issue,
    normalize_pull_request,
)
from github_sync.transform.scoring import health_score

log = logging.getLogger(__name__)

ISSUES_STREAM = "issues"
COMMITS_STREAM = "commits"
# Re-read this much before a cursor: clocks of GitHub's replicas are not perfectly in step
# and updated_at has one-second resolution, so an update in the same second as the cursor
# could otherwise be lost. Re-reading costs nothing extra (the rows are in the same page).
CURSOR_OVERLAP = timedelta(minutes=5)


@dataclass(frozen=True)
class Listing:
    """A listing the sync reads newest-first; its first page URL is identical in every run."""

    path: str
    params: tuple[tuple[str, str], ...] = ()

    def path_for(self, full_name: str) -> str:
        return self.path.format(full_name=full_name)


ISSUES_LISTING = Listing(
    "/repos/{full_name}/issues", (("state", "all"), ("sort", "updated"), ("direction", "desc"))
)
COMMITS_LISTING = Listing("/repos/{full_name}/commits")
OPEN_PULLS_LISTING = Listing("/repos/{full_name}/pulls", (("state", "open"),))


def iter_listing(client: GitHubClient, listing: Listing, full_name: str) -> Iterator[Any]:
    """Pages of ``listing`` for one repository, newest first (the URLs change detection also uses)."""
    return client.iter_pages(listing.path_for(full_name), dict(listing.params))


def first_page(client: GitHubClient, listing: Listing, full_name: str) -> Any:
    """Only the first page of ``listing`` (a conditional request: free when unchanged)."""
    return next(iter(iter_listing(client, listing, full_name)))


class GitHubClient(Protocol):
    """What the sync needs of :class:`github_sync.github.hook.GitHubHook` (a Protocol for readability)."""

    def iter_pages(
        self, path: str, params: Mapping[str, Any] | None = None, per_page: int = 100
    ) -> Iterator[Any]: ...

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any: ...

    def count(self, path: str, params: Mapping[str, Any] | None = None) -> int: ...


@dataclass(frozen=True)
class RepositoryTarget:
    """The repository a task syncs: the mapped task's (small) input."""

    full_name: str
    project_id: int
    default_branch: str | None = None
    # Read the whole issue listing even in an incremental run (reconciliation found ids
    # that differ from what is stored: deletions or transfers the cursor cannot see).
    reconcile: bool = False

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> RepositoryTarget:
        try:
            return cls(
                full_name=str(value["full_name"]),
                project_id=int(value["project_id"]),
                default_branch=value.get("default_branch"),
                reconcile=bool(value.get("reconcile", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a repository target (need full_name and project_id): {value!r}") from exc

    def to_mapping(self) -> dict[str, Any]:
        return {
            "full_name": self.full_name,
            "project_id": self.project_id,
            "default_branch": self.default_branch,
            "reconcile": self.reconcile,
        }


# Days of commit history a sync keeps unless a run says otherwise.
DEFAULT_COMMITS_SINCE_DAYS = 90


@dataclass(frozen=True)
class SyncOptions:
    """How a repository is synced.

    Attributes:
        as_of: the DAG run's time; every derived field (ages, health, metrics date) uses it.
        commits_since: start of the commit window kept in ``commits``.
        rules: label rules (validated before the run writes anything).
        incremental: read only what changed since the stored cursors.
    """

    as_of: datetime
    commits_since: datetime
    rules: LabelRules
    incremental: bool = False


@dataclass
class _Progress:
    counts: dict[str, int] = field(default_factory=dict)
    written: int = 0
    seen: int = 0

    def add(self, table: str, seen: int, written: int) -> None:
        self.counts[table] = self.counts.get(table, 0) + seen
        self.seen += seen
        self.written += written


METRICS_CARRIED = ("commits_count", "contributors", "lines_of_code", "tech_stack", "has_ci", "has_tests")


def _last_metrics(cursor: Any, project_id: int) -> dict[str, Any] | None:
    cursor.execute(
        f"SELECT {', '.join(METRICS_CARRIED)} FROM project_metrics WHERE project_id = %s "
        "ORDER BY date DESC LIMIT 1",
        (project_id,),
    )
    row = cursor.fetchone()
    return None if row is None else dict(zip(METRICS_CARRIED, row, strict=True))


def _project_row(cursor: Any, project_id: int) -> dict[str, Any]:
    keys = ("full_name", "default_branch", "last_commit", "stars", "language")
    cursor.execute(f"SELECT {', '.join(keys)} FROM projects WHERE id = %s", (project_id,))
    row = cursor.fetchone()
    if row is None:
        raise LookupError(f"project {project_id} is not in the projects table")
    return dict(zip(keys, row, strict=True))


@dataclass(frozen=True)
class _StreamResult:
    newest: datetime | None  # newest updated_at / commit time seen
    complete: bool  # the whole listing was read
    total: int  # items in the listing, when complete
    head: str | None = None  # commits: the default branch's newest sha
    first_page: Any = None  # commits: the first page (for counting without a new request)


def count_listing(
    client: GitHubClient, path: str, params: Mapping[str, Any] | None, first: Any = None
) -> int:
    """Count a listing's items from its first and last pages of 100, both conditional requests.

    Not ``per_page=1``: GitHub's ETag covers the body, not the ``Link`` header, so a
    cached one-item page can answer 304 while its ``last`` link (the count) moved on, e.g.
    a new contributor who is not the top one. The first and last pages of 100 change
    whenever the count does, so their 304s can be trusted.

    Args:
        client: the GitHub hook.
        path: the listing.
        params: its query parameters.
        first: its first page, when the caller already has it.
    """
    page = first if first is not None else next(iter(client.iter_pages(path, params)))
    if page.next_url is None:
        return len(page.items)
    last_url = page.links.get("last")
    last_number = page_number(last_url)
    if last_url is None or last_number is None:
        # Cursor-paginated listings have no numbered last page: walk them.
        return sum(len(p.items) for p in client.iter_pages(path, params))
    return (last_number - 1) * per_page_of(last_url) + len(client.get(last_url).items)


def _sync_issues(
    client: GitHubClient,
    cursor: Any,
    target: RepositoryTarget,
    options: SyncOptions,
    stop_before: datetime | None,
    progress: _Progress,
) -> _StreamResult:
    """Upsert issues and PRs page by page, newest first, until ``stop_before`` (None: all)."""
    newest: datetime | None = None
    seen_bug_ids: list[int] = []
    seen_pr_numbers: list[int] = []
    complete = True
    for page in iter_listing(client, ISSUES_LISTING, target.full_name):
        bugs: list[dict[str, Any]] = []
        pulls: list[dict[str, Any]] = []
        for item in page.items:
            if is_pull_request(item):
                pulls.append(normalize_pull_request(item, as_of=options.as_of))
            else:
                bugs.append(normalize_issue(item, as_of=options.as_of, rules=options.rules))
        rows = [*bugs, *pulls]
        progress.add(
            "bugs", len(bugs), loader.upsert_rows(cursor, loader.BUGS, bugs, project_id=target.project_id)
        )
        progress.add(
            "pull_requests",
            len(pulls),
            loader.upsert_rows(cursor, loader.PULL_REQUESTS, pulls, project_id=target.project_id),
        )
        seen_bug_ids.extend(row["github_id"] for row in bugs)
        seen_pr_numbers.extend(row["number"] for row in pulls)
        if rows:
            newest = max(newest or rows[0]["updated_at"], *(row["updated_at"] for row in rows))
        if stop_before is not None and rows and min(row["updated_at"] for row in rows) < stop_before:
            # Everything further down is older than what the last run committed.
            complete = page.next_url is None
            break
    if complete:
        # A complete listing is the truth: what we hold and GitHub no longer lists was
        # deleted or transferred away (incremental runs get here for one-page repositories).
        gone = _tombstone_missing(cursor, target.project_id, seen_bug_ids, seen_pr_numbers, options.as_of)
        progress.add("removed", gone, gone)
    return _StreamResult(newest=newest, complete=complete, total=len(seen_bug_ids) + len(seen_pr_numbers))


def _tombstone_missing(
    cursor: Any, project_id: int, bug_ids: list[int], pr_numbers: list[int], as_of: datetime
) -> int:
    scope = {"project_id": project_id}
    reason = "missing from listing"
    return loader.mark_removed(
        cursor, "bugs", reason=reason, removed_at=as_of, where=scope, not_in=("github_id", bug_ids)
    ) + loader.mark_removed(
        cursor, "pull_requests", reason=reason, removed_at=as_of, where=scope, not_in=("number", pr_numbers)
    )


def listing_keys(items: Iterable[Mapping[str, Any]]) -> tuple[frozenset[int], frozenset[int]]:
    """``(issue ids, PR numbers)`` of issues-listing items: how ``bugs`` and ``pull_requests`` are keyed."""
    ids: set[int] = set()
    numbers: set[int] = set()
    for item in items:
        if is_pull_request(item):
            numbers.add(int(item["number"]))
        else:
            ids.add(int(item["id"]))
    return frozenset(ids), frozenset(numbers)


def _recheck_open_pulls(
    client: GitHubClient, cursor: Any, target: RepositoryTarget, options: SyncOptions, progress: _Progress
) -> None:
    """Re-read PRs stored as open that GitHub no longer lists as open (merged or closed).

    An incremental run reads only what was updated since its cursor, and a PR's merge is
    not always reflected in its ``updated_at`` (e.g. merged by a push of its head to the
    base branch). One conditional request (free when the open set did not change) tells
    which stored open PRs are no longer open; each of those is read again.
    """
    cursor.execute(
        "SELECT number FROM pull_requests WHERE project_id = %s AND state = 'open' AND removed_at IS NULL",
        (target.project_id,),
    )
    stored_open = {number for (number,) in cursor.fetchall()}
    if not stored_open:
        return
    still_open = {int(pr["number"]) for page in iter_listing(client, OPEN_PULLS_LISTING, target.full_name)
                  for pr in page.items}  # fmt: skip
    rows = []
    for number in sorted(stored_open - still_open):
        try:
            item = client.get(f"/repos/{target.full_name}/issues/{number}").json
        except RepositoryUnavailable:
            continue  # deleted by GitHub staff: the complete listing will tombstone it
        rows.append(normalize_pull_request(item, as_of=options.as_of))
    progress.add(
        "pull_requests",
        len(rows),
        loader.upsert_rows(cursor, loader.PULL_REQUESTS, rows, project_id=target.project_id),
    )


def _sync_commits(
    client: GitHubClient,
    cursor: Any,
    target: RepositoryTarget,
    options: SyncOptions,
    stop_before: datetime | None,
    progress: _Progress,
) -> _StreamResult:
    """Upsert the window's commits, newest first, until the window or ``stop_before`` starts."""
    stop = options.commits_since if stop_before is None else max(options.commits_since, stop_before)
    newest: datetime | None = None
    head: str | None = None
    first: Any = None
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
        if rows:
            newest = max(newest or rows[0]["committed_at"], *(row["committed_at"] for row in rows))
        oldest = min((row["committed_at"] for row in rows), default=None)
        # The window always ends the walk. The cursor only does once a page brings nothing
        # new: commit times can be older than the cursor (a branch merged days after its
        # commits were made), and commits are immutable, so "nothing written" means "known".
        if oldest is not None and (oldest < options.commits_since or (oldest < stop and written == 0)):
            complete = page.next_url is None
            break
    return _StreamResult(newest=newest, complete=complete, total=total, head=head, first_page=first)


def sync_repository(
    client: GitHubClient,
    conn: Any,
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
    try:
        with conn.cursor() as cursor:
            project = _project_row(cursor, target.project_id)
            cursors = loader.get_cursors(cursor, target.project_id)
            previous = _last_metrics(cursor, target.project_id)
            incremental = options.incremental and previous is not None

            issues_cursor = cursors.get(ISSUES_STREAM) if incremental and not target.reconcile else None
            issues = _sync_issues(client, cursor, target, options, _minus_overlap(issues_cursor), progress)
            if incremental and not issues.complete:
                _recheck_open_pulls(client, cursor, target, options, progress)
            commits_cursor = cursors.get(COMMITS_STREAM) if incremental else None
            try:
                commits = _sync_commits(
                    client, cursor, target, options, _minus_overlap(commits_cursor), progress
                )
                empty = False
            except RepositoryUnavailable as exc:
                if exc.reason != "empty":
                    raise
                commits, empty = _StreamResult(newest=None, complete=True, total=0), True

            # The head sha, not a time, tells a push: commit times have one-second resolution
            # and can be older than the cursor (rebases, clock skew).
            stored_head = loader.get_cursor_details(cursor, target.project_id, COMMITS_STREAM).get("head")
            pushed = commits.head != stored_head
            if not incremental or pushed or empty:
                inputs = _fetch_metrics_inputs(client, target, project, commits, empty)
                open_issues = _open_bug_count(cursor, target.project_id)
                metrics = _metrics_from_inputs(project, inputs, open_issues, options.as_of)
            else:
                metrics = _carried_metrics(cursor, target.project_id, project, previous, options.as_of)
            day = options.as_of.date()
            progress.add("project_metrics", 1, loader.upsert_metrics(cursor, target.project_id, day, metrics))
            _advance(cursor, target.project_id, ISSUES_STREAM, cursors.get(ISSUES_STREAM), issues.newest)
            if pushed or empty or not incremental:
                details: dict[str, Any] = {"head": commits.head}
                if empty:
                    # Remembered so change detection need not ask again (a 409 costs budget)
                    # until GitHub reports a push (the repository's pushed_at moves).
                    last_push = project.get("last_commit")
                    details["empty_at_push"] = last_push.isoformat() if last_push else None
                loader.set_cursor(
                    cursor,
                    target.project_id,
                    COMMITS_STREAM,
                    _later(commits.newest, cursors.get(COMMITS_STREAM)),
                    json.dumps(details),
                )
        conn.commit()
    except BaseException:
        rollback_quietly(conn)
        raise
    log.info(
        "Synced %s (%s): %d rows seen, %d written %s",
        target.full_name,
        "incremental" if incremental else "full",
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


def _minus_overlap(cursor_value: datetime | None) -> datetime | None:
    return cursor_value - CURSOR_OVERLAP if cursor_value is not None else None


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a is not None and b is not None else a or b


def _advance(
    cursor: Any, project_id: int, stream: str, current: datetime | None, newest: datetime | None
) -> None:
    if newest is not None and (current is None or newest > current):
        loader.set_cursor(cursor, project_id, stream, newest)


@dataclass(frozen=True)
class _MetricsInputs:
    commits_count: int
    contributors: int
    tree: Mapping[str, Any] | None


def _fetch_metrics_inputs(
    client: GitHubClient,
    target: RepositoryTarget,
    project: Mapping[str, Any],
    commits: _StreamResult,
    empty: bool,
) -> _MetricsInputs:
    if empty:
        return _MetricsInputs(commits_count=0, contributors=0, tree=None)
    commits_path = COMMITS_LISTING.path_for(target.full_name)
    commits_count = (
        commits.total if commits.complete else count_listing(client, commits_path, None, commits.first_page)
    )
    contributors = count_listing(client, f"/repos/{target.full_name}/contributors", {"anon": "1"})
    branch = target.default_branch or project.get("default_branch") or "HEAD"
    try:
        tree = client.get(f"/repos/{target.full_name}/git/trees/{branch}", {"recursive": "1"}).json
    except RepositoryUnavailable:
        tree = None
    return _MetricsInputs(commits_count=commits_count, contributors=contributors, tree=tree)


def _open_bug_count(cursor: Any, project_id: int) -> int:
    cursor.execute(
        "SELECT count(*) FROM bugs WHERE project_id = %s AND status <> 'closed' AND removed_at IS NULL",
        (project_id,),
    )
    return int(cursor.fetchone()[0])


def _metrics_from_inputs(
    project: Mapping[str, Any], inputs: _MetricsInputs, open_issues: int, as_of: datetime
) -> dict[str, Any]:
    return project_metrics(
        repo_row_or_repo=project,
        tree=inputs.tree,
        languages=None,
        commits_count=inputs.commits_count,
        contributors=inputs.contributors,
        open_issues=open_issues,
        as_of=as_of,
    )


def _carried_metrics(
    cursor: Any, project_id: int, project: Mapping[str, Any], previous: Mapping[str, Any], as_of: datetime
) -> dict[str, Any]:
    # Nothing was pushed since the last metrics: carry commit, contributor and tree figures
    # forward, and rescore what depends on the run's time, the issues and the stars.
    open_issues = _open_bug_count(cursor, project_id)
    return {
        **previous,
        "open_issues": open_issues,
        "health_score": health_score(
            last_commit=project.get("last_commit"),
            as_of=as_of,
            open_issues=open_issues,
            stars=project.get("stars") or 0,
            contributors=previous["contributors"],
            has_ci=previous["has_ci"],
            has_tests=previous["has_tests"],
        ),
    }


def carry_metrics_forward(cursor: Any, project_id: int, as_of: datetime) -> bool:
    """Write the run date's metrics row of an unchanged repository from its last one (no request).

    Returns:
        False when the repository has no metrics yet (it needs a real sync).
    """
    previous = _last_metrics(cursor, project_id)
    if previous is None:
        return False
    project = _project_row(cursor, project_id)
    metrics = _carried_metrics(cursor, project_id, project, previous, as_of)
    loader.upsert_metrics(cursor, project_id, as_of.date(), metrics)
    return True


def rollback_quietly(conn: Any) -> None:
    """Roll back, logging (not raising) a failure, so the error that made us roll back is the one raised."""
    try:
        conn.rollback()
    except Exception:  # a broken connection cannot roll back; the original error matters more
        log.exception("rollback failed")
