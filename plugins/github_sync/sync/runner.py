"""Run a whole sync in one process, without Airflow: the same steps the DAGs map out.

The DAGs spread this over tasks (list -> map ``sync_repository`` -> summary); this
module runs the same functions in a loop. It serves the equivalence and crash-safety
tests, the benchmarks (the sync's own cost without Airflow's per-task overhead) and
``github-sync sync`` for one-off runs from a shell.

It owns only the loop; it must not add steps the DAGs do not have (then it would no longer
show what they do) or import Airflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from github_sync.github.errors import RepositoryUnavailable
from github_sync.github.listings import GitHubClient
from github_sync.sync.change_detection import DEFAULT_RECONCILE_EVERY, detect_changes
from github_sync.sync.discovery import DEFAULT_INCLUDE_ARCHIVED, discover_owners, organisation_owners
from github_sync.sync.repository import sync_repository
from github_sync.sync.targets import DEFAULT_COMMITS_SINCE_DAYS, RepositoryTarget, SyncOptions
from github_sync.transform.labels import LabelRules

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What one in-process run did."""

    synced: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    records: int = 0
    probed: int = 0


def run_sync(
    client: GitHubClient,
    conn: psycopg.Connection[Any],
    *,
    owner: str | Sequence[str],
    as_of: datetime,
    incremental: bool,
    rules: LabelRules | None = None,
    commits_since_days: int = DEFAULT_COMMITS_SINCE_DAYS,
    include_archived: bool = DEFAULT_INCLUDE_ARCHIVED,
    repos: Sequence[str] | None = None,
    before_repository: Callable[[RepositoryTarget], None] | None = None,
    reconcile_every: int = DEFAULT_RECONCILE_EVERY,
) -> RunResult:
    """Run a full or incremental sync of ``owner`` sequentially in this process.

    Args:
        client: the GitHub hook.
        conn: a psycopg 3 connection to the target database.
        owner: the user or organisation, or several.
        as_of: the run's time.
        incremental: probe and sync only changed repositories.
        rules: label rules (defaults when None).
        commits_since_days: the commit window.
        include_archived: also sync archived repositories.
        repos: optional allow-list.
        before_repository: called before each repository (tests inject crashes here).
        reconcile_every: incremental runs reconcile 1/N of the repositories (1: all).
    """
    owners = [owner] if isinstance(owner, str) else list(owner)
    discoveries = discover_owners(
        client, conn, owners=owners, allow=repos, include_archived=include_archived, as_of=as_of
    )
    targets: Sequence[RepositoryTarget] = [t for discovery in discoveries for t in discovery.targets]
    result = RunResult(probed=len(targets))
    if incremental:
        targets = detect_changes(
            client, conn, targets, as_of=as_of, organisations=organisation_owners(discoveries),
            reconcile_every=reconcile_every,
        ).changed  # fmt: skip
    options = SyncOptions(
        as_of=as_of,
        commits_since=as_of - timedelta(days=commits_since_days),
        rules=rules or LabelRules.default(),
        incremental=incremental,
    )
    for target in targets:
        if before_repository is not None:
            before_repository(target)
        try:
            outcome = sync_repository(client, conn, target, options)
        except RepositoryUnavailable as exc:
            result.skipped[target.full_name] = exc.reason
            continue
        result.synced.append(target.full_name)
        result.records += outcome.records
    return result
