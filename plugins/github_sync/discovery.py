"""List an owner's repositories, record them as projects, and plan the run's budget.

This is the first task of the full and incremental syncs. It spends one or two
requests (the owner lookup and the repository listing, both conditional), writes the
``projects`` rows from the listing in one transaction, tombstones repositories that
vanished from the owner, and returns the small targets the mapped tasks expand over.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from github_sync import loader
from github_sync.normalizer import normalize_repository
from github_sync.repository_sync import GitHubClient, RepositoryTarget, rollback_quietly

log = logging.getLogger(__name__)

# Requests a repository costs in a full sync before its listings need a second page:
# issues, commits, contributor count, tree (see repository_sync).
BASE_REQUESTS_PER_REPOSITORY = 4
ITEMS_PER_PAGE = 100


class DiscoveryError(ValueError):
    """The owner or the allow-list is wrong; raised before anything is written."""


@dataclass(frozen=True)
class BudgetEstimate:
    """What the run is expected to spend, against what the token has left."""

    requests: int
    remaining: int | None
    limit: int | None
    reset_at: datetime | None
    reserve: int = 0  # left for other users of the token (the hook never spends it)

    @property
    def usable(self) -> int | None:
        return None if self.remaining is None else max(0, self.remaining - self.reserve)

    @property
    def fits(self) -> bool:
        return self.usable is None or self.requests <= self.usable

    def describe(self) -> str:
        if self.usable is None:
            return f"estimated {self.requests} requests (remaining budget unknown)"
        text = (
            f"estimated {self.requests} requests against {self.usable} usable "
            f"({self.remaining} remaining of {self.limit}, {self.reserve} kept in reserve)"
        )
        if not self.fits and self.limit and self.reset_at:
            per_window = max(1, self.limit - self.reserve)
            windows = math.ceil((self.requests - self.usable) / per_window)
            text += (
                f"; the budget runs out mid-run, so tasks will wait for the reset at "
                f"{self.reset_at.isoformat()} (and {windows - 1} more hourly window(s)) before finishing"
            )
        return text


@dataclass(frozen=True)
class Discovery:
    """Result of listing an owner's repositories."""

    owner: str
    owner_type: str
    targets: tuple[RepositoryTarget, ...]
    listed: int
    removed: tuple[str, ...]
    estimate: BudgetEstimate


def owner_repositories_path(client: GitHubClient, owner: str) -> tuple[str, str, dict[str, str]]:
    """Return ``(owner_type, listing path, params)`` for a user or an organisation."""
    account = client.get(f"/users/{owner}").json
    owner_type = str(account.get("type") or "User")
    if owner_type == "Organization":
        return owner_type, f"/orgs/{owner}/repos", {"type": "all", "sort": "full_name", "direction": "asc"}
    return owner_type, f"/users/{owner}/repos", {"type": "owner", "sort": "full_name", "direction": "asc"}


def _estimate_requests(repos: Iterable[Mapping[str, Any]]) -> int:
    total = 0
    for repo in repos:
        # open_issues_count counts open issues and PRs; closed ones add pages we cannot see
        # from here, so this is a lower bound for old, busy repositories.
        extra_pages = max(0, math.ceil(int(repo.get("open_issues_count") or 0) / ITEMS_PER_PAGE) - 1)
        total += BASE_REQUESTS_PER_REPOSITORY + extra_pages
    return total


def _select(
    repos: Sequence[Mapping[str, Any]], allow: Sequence[str] | None, include_archived: bool, owner: str
) -> list[Mapping[str, Any]]:
    if allow:
        foreign = sorted(
            name for name in allow if "/" in name and name.split("/", 1)[0].lower() != owner.lower()
        )
        if foreign:
            raise DiscoveryError(f"Param 'repos' names repositories of another owner than {owner}: {foreign}")
        wanted = {name.split("/", 1)[-1].lower() for name in allow}
        known = {str(repo["name"]).lower() for repo in repos}
        unknown = sorted(wanted - known)
        if unknown:
            raise DiscoveryError(f"Param 'repos' names repositories that {owner} does not have: {unknown}")
        repos = [repo for repo in repos if str(repo["name"]).lower() in wanted]
    return [repo for repo in repos if include_archived or not repo.get("archived")]


def discover_repositories(
    client: GitHubClient,
    conn: Any,
    *,
    owner: str,
    allow: Sequence[str] | None = None,
    include_archived: bool = False,
    as_of: datetime,
) -> Discovery:
    """List ``owner``'s repositories, upsert them as projects, and tombstone vanished ones.

    Args:
        client: the GitHub hook.
        conn: a psycopg 3 connection; committed once at the end.
        owner: a user or organisation login.
        allow: optional allow-list of repository names (``name`` or ``owner/name``).
        include_archived: also sync archived repositories (they are recorded either way).
        as_of: the run's time (tombstone time).

    Raises:
        DiscoveryError: the allow-list names unknown repositories (nothing written).
    """
    owner_type, path, params = owner_repositories_path(client, owner)
    repos = [repo for page in client.iter_pages(path, params) for repo in page.items]
    selected = _select(repos, allow, include_archived, owner)
    targets: list[RepositoryTarget] = []
    try:
        with conn.cursor() as cursor:
            ids: dict[int, int] = {}
            for repo in repos:
                project_id, _changed = loader.upsert_project(cursor, normalize_repository(repo))
                ids[int(repo["id"])] = project_id
            # One statement: what it marks is exactly what it reports (owner compared without case,
            # as GitHub logins are).
            cursor.execute(
                "UPDATE projects SET removed_at = %s, removed_reason = %s, synced_at = now() "
                "WHERE lower(owner) = lower(%s) AND removed_at IS NULL AND NOT (github_id = ANY(%s)) "
                "RETURNING full_name",
                (as_of, f"no longer listed for {owner}", owner, list(ids)),
            )
            removed = tuple(sorted(row[0] for row in cursor.fetchall()))
            if removed:
                log.warning("Repositories no longer listed for %s (kept, marked removed): %s", owner, removed)
        conn.commit()
    except BaseException:
        rollback_quietly(conn)
        raise
    for repo in selected:
        targets.append(
            RepositoryTarget(
                full_name=str(repo["full_name"]),
                project_id=ids[int(repo["id"])],
                default_branch=repo.get("default_branch"),
            )
        )
    # Known once the listing has answered (every GitHub response reports the budget).
    rate_limit = client.rate_limit("core") if hasattr(client, "rate_limit") else None
    estimate = BudgetEstimate(
        requests=_estimate_requests(selected),
        remaining=getattr(rate_limit, "remaining", None),
        limit=getattr(rate_limit, "limit", None),
        reset_at=getattr(rate_limit, "reset", None),
        reserve=int(getattr(rate_limit, "limit", 0) * getattr(client, "reserve_fraction", 0)),
    )
    log_budget = log.info if estimate.fits else log.warning
    log_budget("%s %s: %d repositories listed, %d to sync; %s", owner_type, owner, len(repos), len(targets),
               estimate.describe())  # fmt: skip
    return Discovery(
        owner=owner,
        owner_type=owner_type,
        targets=tuple(targets),
        listed=len(repos),
        removed=removed,
        estimate=estimate,
    )
