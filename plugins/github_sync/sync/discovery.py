"""List an owner's repositories, record them as projects, and plan the run's budget.

This is the first task of the full and incremental syncs. It spends one or two
requests (the owner lookup and the repository listing, both conditional), writes the
``projects`` rows from the listing in one transaction, tombstones repositories that
vanished from the owner, and returns the small targets the mapped tasks expand over.

This module owns where an owner's repositories are listed, the allow-list rules and the
budget estimate. It must not hold SQL (:mod:`github_sync.store`) or sync any repository's
content (:mod:`github_sync.sync.repository` does). It is one piece (just over 300 lines)
because it is one task's work: the listing rules decide what is listed, and the estimate and the
tombstones depend on exactly that listing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from github_sync.github.errors import GitHubClientError
from github_sync.github.listings import GitHubClient
from github_sync.github.pagination import MAX_PER_PAGE
from github_sync.store import loader, projects
from github_sync.store.transactions import unit_of_work
from github_sync.sync.targets import RepositoryTarget
from github_sync.transform.normalizer import normalize_repository

log = logging.getLogger(__name__)

# Requests a repository costs in a full sync before its listings need a second page:
# issues, commits, contributor count, tree (see github_sync.sync.repository).
BASE_REQUESTS_PER_REPOSITORY = 4
# Archived repositories are synced unless a run opts out: the dashboard shows them as
# "shipped" with their history, and after one read they cost only 304s.
DEFAULT_INCLUDE_ARCHIVED = True


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
    visibility: str  # which of the owner's repositories GitHub listed (VISIBILITY_*)


# Where GitHub lists an account's repositories, and what it shows there:
# - an organisation: every repository the credential may see, private ones only for members
#   with access (https://docs.github.com/en/rest/repos/repos#list-organization-repositories);
# - the credential's own user account: /user/repos, private included; `type` may not be combined
#   with `affiliation`/`visibility` (422), so only those two are sent
#   (https://docs.github.com/en/rest/repos/repos#list-repositories-for-the-authenticated-user);
# - any other user: /users/{username}/repos lists public repositories only, whoever asks
#   (https://docs.github.com/en/rest/repos/repos#list-repositories-for-a-user).
# - a GitHub App installed on a user account: its installation token has no user of its own
#   (GET /user answers 403) and lists what the installation may see, private included, through
#   /installation/repositories
#   (https://docs.github.com/en/rest/apps/installations#list-repositories-accessible-to-the-app-installation);
#   an installation may span accounts only through its one owner, but the owner is checked anyway.
VISIBILITY_ALL = "all the credential can see"
VISIBILITY_INSTALLATION = "all the GitHub App installation can see"
INSTALLATION_LISTING = "/installation/repositories"
VISIBILITY_PUBLIC = "public only (GitHub lists another user's public repositories only)"
LISTING_ORDER = {"sort": "full_name", "direction": "asc"}


@dataclass(frozen=True)
class OwnerListing:
    """How an owner's repositories are listed, and which of them GitHub shows there."""

    owner_type: str
    path: str
    params: dict[str, str]
    visibility: str


# What /user answers for a credential that is a GitHub App installation rather than a user.
INSTALLATION = object()


def authenticated_login(client: GitHubClient) -> str | object | None:
    """The login of the credential's own account; :data:`INSTALLATION` for a GitHub App installation.

    A 401 (bad credentials) propagates: nothing else can work with that credential.
    """
    try:
        body = client.get("/user").json
    except GitHubClientError as exc:
        # An installation token answers 403 "Resource not accessible by integration".
        if exc.status == 403:
            return INSTALLATION
        raise
    login = body.get("login") if isinstance(body, Mapping) else None
    return str(login) if login else None


def owner_listing(client: GitHubClient, owner: str) -> OwnerListing:
    """Decide where ``owner``'s repositories are listed (see the rules above)."""
    account = client.get(f"/users/{owner}").json
    owner_type = str(account.get("type") or "User")
    if owner_type == "Organization":
        return OwnerListing(
            owner_type, f"/orgs/{owner}/repos", {"type": "all", **LISTING_ORDER}, VISIBILITY_ALL
        )
    login = authenticated_login(client)
    if login is INSTALLATION:
        return OwnerListing(owner_type, INSTALLATION_LISTING, {}, VISIBILITY_INSTALLATION)
    if isinstance(login, str) and login.lower() == owner.lower():
        return OwnerListing(
            owner_type,
            "/user/repos",
            {"affiliation": "owner", "visibility": "all", **LISTING_ORDER},
            VISIBILITY_ALL,
        )
    log.warning(
        "%s is a user account that is not the credential's own: GitHub lists its public repositories "
        "only; sync it with that user's own token to include private ones",
        owner,
    )
    return OwnerListing(
        owner_type, f"/users/{owner}/repos", {"type": "owner", **LISTING_ORDER}, VISIBILITY_PUBLIC
    )


def estimated_requests(repo: Mapping[str, Any]) -> int:
    """What a full sync of the listed ``repo`` is expected to cost."""
    # open_issues_count counts open issues and PRs; closed ones add pages we cannot see
    # from here, so this is a lower bound for old, busy repositories.
    extra_pages = max(0, math.ceil(int(repo.get("open_issues_count") or 0) / MAX_PER_PAGE) - 1)
    return BASE_REQUESTS_PER_REPOSITORY + extra_pages


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


def allow_lists_by_owner(allow: Sequence[str] | None, owners: Sequence[str]) -> dict[str, list[str]]:
    """Split the run's allow-list (``repos``) between its owners, keyed by lower-case owner.

    ``name`` entries are allowed with one owner only; with several, each entry must say
    ``owner/name``, and every owner must have at least one (else the run would sync all of
    an owner the user meant to limit).

    Raises:
        DiscoveryError: an entry names another owner, is ambiguous, or an owner has none.
    """
    by_owner: dict[str, list[str]] = {owner.lower(): [] for owner in owners}
    if not allow:
        return by_owner
    for name in allow:
        owner, slash, _ = name.partition("/")
        if not slash:
            if len(owners) > 1:
                raise DiscoveryError(
                    f"Param 'repos' entry {name!r} is ambiguous with several owners {list(owners)}: "
                    "write it as owner/name"
                )
            owner = owners[0]
        if owner.lower() not in by_owner:
            raise DiscoveryError(
                f"Param 'repos' names repositories of another owner than {', '.join(owners)}: {name!r}"
            )
        by_owner[owner.lower()].append(name)
    empty = [owner for owner in owners if not by_owner[owner.lower()]]
    if empty:
        raise DiscoveryError(
            f"Param 'repos' names no repository of {empty}: add theirs (owner/name) or drop them from 'owners'"
        )
    return by_owner


def organisation_owners(discoveries: Sequence[Discovery]) -> list[str]:
    """The owners among ``discoveries`` that are organisations (they have an issue listing of their own)."""
    return [discovery.owner for discovery in discoveries if discovery.owner_type == "Organization"]


def discover_owners(
    client: GitHubClient,
    conn: psycopg.Connection[Any],
    *,
    owners: Sequence[str],
    allow: Sequence[str] | None = None,
    include_archived: bool = DEFAULT_INCLUDE_ARCHIVED,
    as_of: datetime,
) -> list[Discovery]:
    """:func:`discover_repositories` for each owner of the run, the allow-list split between them."""
    allow_by_owner = allow_lists_by_owner(allow, owners)
    return [
        discover_repositories(
            client, conn, owner=owner, allow=allow_by_owner[owner.lower()] or None,
            include_archived=include_archived, as_of=as_of,
        )
        for owner in owners
    ]  # fmt: skip


def discover_repositories(
    client: GitHubClient,
    conn: psycopg.Connection[Any],
    *,
    owner: str,
    allow: Sequence[str] | None = None,
    include_archived: bool = DEFAULT_INCLUDE_ARCHIVED,
    as_of: datetime,
) -> Discovery:
    """List ``owner``'s repositories, upsert them as projects, and tombstone vanished ones.

    Args:
        client: the GitHub hook.
        conn: a psycopg 3 connection; committed once at the end.
        owner: a user or organisation login.
        allow: optional allow-list of repository names (``name`` or ``owner/name``).
        include_archived: also sync archived repositories (they are recorded either way); they
            cannot change, so after their first read they cost only 304s.
        as_of: the run's time (tombstone time).

    Raises:
        DiscoveryError: the allow-list names unknown repositories (nothing written).
    """
    listing = owner_listing(client, owner)
    repos = [repo for page in client.iter_pages(listing.path, listing.params) for repo in page.items]
    if listing.path == INSTALLATION_LISTING:
        # Unsorted, and not only the owner's: keep the owner's, in the order the others are listed.
        repos = sorted(
            (
                repo
                for repo in repos
                if str((repo.get("owner") or {}).get("login", "")).lower() == owner.lower()
            ),
            key=lambda repo: str(repo.get("full_name", "")).lower(),
        )
    selected = _select(repos, allow, include_archived, owner)
    targets: list[RepositoryTarget] = []
    with unit_of_work(conn) as cursor:
        ids: dict[int, int] = {}
        for repo in repos:
            project_id, _changed = loader.upsert_project(cursor, normalize_repository(repo))
            ids[int(repo["id"])] = project_id
        removed = projects.remove_unlisted(
            cursor,
            owner=owner,
            listed_github_ids=list(ids),
            removed_at=as_of,
            reason=f"no longer listed for {owner}",
        )
        if removed:
            log.warning("Repositories no longer listed for %s (kept, marked removed): %s", owner, removed)
    for repo in selected:
        targets.append(
            RepositoryTarget(
                full_name=str(repo["full_name"]),
                project_id=ids[int(repo["id"])],
                default_branch=repo.get("default_branch"),
                estimated_requests=estimated_requests(repo),
            )
        )
    # Known once the listing has answered (every GitHub response reports the budget).
    rate_limit = client.rate_limit("core") if hasattr(client, "rate_limit") else None
    estimate = BudgetEstimate(
        requests=sum(target.estimated_requests for target in targets),
        remaining=getattr(rate_limit, "remaining", None),
        limit=getattr(rate_limit, "limit", None),
        reset_at=getattr(rate_limit, "reset", None),
        reserve=int(getattr(rate_limit, "limit", 0) * getattr(client, "reserve_fraction", 0)),
    )
    log_budget = log.info if estimate.fits else log.warning
    log_budget("%s %s: %d repositories listed (%s), %d to sync; %s", listing.owner_type, owner, len(repos),
               listing.visibility, len(targets), estimate.describe())  # fmt: skip
    return Discovery(
        owner=owner,
        owner_type=listing.owner_type,
        visibility=listing.visibility,
        targets=tuple(targets),
        listed=len(repos),
        removed=removed,
        estimate=estimate,
    )
