"""Find the repositories that changed since their last sync, cheaply, inside one task.

For every repository the incremental sync probes the first page of the two listings the
sync reads newest-first (issues+PRs by ``updated_at``, commits of the default branch),
as conditional requests: an unchanged page answers 304, which costs no rate-limit
budget, and the probes run concurrently (bounded by the hook's in-flight limit) rather
than as one Airflow task per repository.

A repository is *changed* when:

* it was never synced (no metrics row), or was renamed (its listing URL is new);
* the first issues page is not a 304 (something on it changed: a new, edited, closed,
  labelled or deleted issue or PR among the newest hundred);
* the page, even if served from the cache, holds an item newer than the repository's
  committed cursor, or (when the whole listing fits in that page) its ids differ from
  the ids stored. This is what makes an interrupted run safe: a probe stores the new
  page in the ETag cache, so the next probe answers 304, but the cursor and the rows
  only change when the repository's transaction commits, so it still counts as changed;
* the default branch's newest commit is not the head the last sync committed (a push,
  a force-push, a merge).

Deletions and transfers in repositories whose issue listing spans several pages leave
no trace on the first page. They are applied from webhooks at once, and caught by a
rolling reconciliation: each run walks the complete issue listing of a slice of the
repositories (1/``reconcile_every`` of them, chosen by the run's hour, so every
repository is reconciled once a day with hourly runs) and compares the ids present with
the ids stored. The walk is free where pages did not change (304). A difference makes
the repository "changed" with ``reconcile`` set, and its sync reads the whole listing
and tombstones what GitHub no longer lists. The weekly full sync reconciles everything.

This module owns the probes and what counts as a change. It must not write anything but the
carried-forward metrics of unchanged repositories, and holds no SQL (:mod:`github_sync.store`)
and no URLs (:mod:`github_sync.github.listings`): a probe asks for exactly the first page the
repository sync reads, so that they share one cache entry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import psycopg

from github_sync.github.errors import RepositoryUnavailable
from github_sync.github.listings import (
    COMMITS_LISTING,
    ISSUES_LISTING,
    GitHubClient,
    first_page,
    iter_listing,
)
from github_sync.store import projects, synced_rows
from github_sync.store.cursors import read_cursors_of
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


@dataclass(frozen=True)
class StoredState:
    """What the database holds of one repository, for comparison with the probes."""

    synced: bool
    issues_cursor: datetime | None
    commits_head: str | None
    live_issue_ids: frozenset[int]
    live_pr_numbers: frozenset[int]
    # The repository was empty when last synced and has not been pushed to since.
    empty_since: bool = False


@dataclass
class Detection:
    """The outcome of change detection over a run's repositories."""

    changed: list[RepositoryTarget] = field(default_factory=list)
    unchanged: list[RepositoryTarget] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)


def load_stored_states(cursor: psycopg.Cursor[Any], project_ids: Sequence[int]) -> dict[int, StoredState]:
    """Read cursors, sync status and live keys of the given projects (those that exist) at once."""
    last_pushes = projects.last_pushes(cursor, project_ids)
    existing = [project_id for project_id in project_ids if project_id in last_pushes]
    synced = synced_rows.synced_project_ids(cursor, existing)
    cursors = read_cursors_of(cursor, existing)
    keys = synced_rows.live_keys_of(cursor, existing)
    return {
        project_id: StoredState(
            synced=project_id in synced,
            issues_cursor=cursors[project_id].issues,
            commits_head=cursors[project_id].commits.head,
            empty_since=cursors[project_id].commits.still_empty(last_pushes[project_id]),
            live_issue_ids=keys[project_id].issue_ids,
            live_pr_numbers=keys[project_id].pr_numbers,
        )
        for project_id in existing
    }


def probe_repository(client: GitHubClient, target: RepositoryTarget, state: StoredState | None) -> str | None:
    """Return why ``target`` needs a sync, or ``None`` when it is unchanged."""
    if state is None or not state.synced:
        return "never synced"
    issues = first_page(client, ISSUES_LISTING, target.full_name)
    if not issues.not_modified:
        return "issues changed"
    # A 304 can still hide changes a previous, interrupted run fetched but never committed.
    newest_issue = latest(*(parse_github_timestamp(item.get("updated_at")) for item in issues.items))
    if newest_issue is not None and (state.issues_cursor is None or newest_issue > state.issues_cursor):
        return "issues changed (not yet committed)"
    if issues.next_url is None:
        ids, numbers = listing_keys(issues.items)
        if ids != state.live_issue_ids or numbers != state.live_pr_numbers:
            return "issues added or removed (not yet committed)"
    if state.empty_since:
        return None
    try:
        commits = first_page(client, COMMITS_LISTING, target.full_name)
    except RepositoryUnavailable as exc:
        if exc.reason == "empty":
            return None
        raise
    head = commits.items[0].get("sha") if commits.items else None
    if head != state.commits_head:
        return "commits pushed"
    return None


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
    max_workers: int = DEFAULT_PROBE_WORKERS,
    reconcile_every: int = DEFAULT_RECONCILE_EVERY,
) -> Detection:
    """Probe every target concurrently; carry the metrics of unchanged ones forward to ``as_of``.

    Args:
        client: the GitHub hook (thread-safe).
        conn: a psycopg 3 connection; committed once (the carried-forward metrics).
        targets: the repositories of the run.
        as_of: the run's time.
        max_workers: concurrent probes (the hook's in-flight limit also applies).
        reconcile_every: reconcile 1/N of the repositories per run (1: all of them).

    Raises:
        Whatever a probe raises other than an unavailable repository (which counts as
        changed, so that its own task records why it is skipped).
    """
    with unit_of_work(conn) as cursor:
        states = load_stored_states(cursor, [t.project_id for t in targets])

    if reconcile_every < 1:
        raise ValueError(f"reconcile_every must be at least 1, got {reconcile_every}")
    slot = reconciliation_slot(as_of, reconcile_every)

    def probe(target: RepositoryTarget) -> tuple[RepositoryTarget, str | None]:
        state = states.get(target.project_id)
        try:
            reason = probe_repository(client, target, state)
            if state is not None and state.synced and target.project_id % reconcile_every == slot:
                reconciliation = reconcile_repository(client, target, state)
                if reconciliation is not None:
                    return replace(target, reconcile=True), reconciliation
            return target, reason
        except RepositoryUnavailable as exc:
            return target, f"unavailable ({exc.reason})"

    detection = Detection()
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="probe") as pool:
        for target, reason in pool.map(probe, targets):
            if reason is None:
                detection.unchanged.append(target)
            else:
                detection.changed.append(target)
                detection.reasons[target.full_name] = reason
    with unit_of_work(conn) as cursor:
        for target in detection.unchanged:
            carry_metrics_forward(cursor, target.project_id, as_of)
    log.info(
        "%d of %d repositories changed: %s",
        len(detection.changed),
        len(targets),
        ", ".join(f"{name} ({why})" for name, why in sorted(detection.reasons.items())) or "none",
    )
    return detection


__all__ = ["Detection", "StoredState", "detect_changes", "load_stored_states", "probe_repository"]
