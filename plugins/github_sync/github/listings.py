"""The GitHub endpoints a repository sync reads, and how it reads and counts their listings.

Owns the URLs and query parameters of those endpoints (issues+PRs, commits, open pulls,
contributors, one issue, the recursive tree), so that the sync and change detection ask for
byte-identical URLs: a listing's first page is then the same cache entry in every run, and its
ETag tells "nothing changed" for free. Also owns :class:`GitHubClient`, what these functions
need of :class:`github_sync.github.hook.GitHubHook`.

It must not decide anything about a sync (where to stop reading, what a change means), touch the
database, or import Airflow: the hook module does, so it is described here structurally.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from github_sync.github.pagination import MAX_PER_PAGE, page_number, per_page_of

__all__ = [
    "COMMITS_LISTING",
    "CONTRIBUTORS_LISTING",
    "ISSUES_LISTING",
    "ISSUE_RESOURCE",
    "OPEN_PULLS_LISTING",
    "REPOSITORY_RESOURCE",
    "TREE_RESOURCE",
    "GitHubClient",
    "ListingPage",
    "RepositoryEndpoint",
    "count_listing",
    "first_page",
    "iter_listing",
    "path_segment",
]

log = logging.getLogger(__name__)


class ListingPage(Protocol):
    """What the sync reads of one answered GET (:class:`github_sync.github.hook.GitHubResponse`)."""

    @property
    def json(self) -> Any:
        """The decoded body (on a 304, the stored body of the earlier 200)."""

    @property
    def items(self) -> list[Any]:
        """The items of a listing page."""

    @property
    def links(self) -> Mapping[str, str]:
        """``{rel: url}`` of the ``Link`` header."""

    @property
    def next_url(self) -> str | None:
        """The next page, or ``None`` on the last one."""

    @property
    def not_modified(self) -> bool:
        """GitHub answered 304: nothing changed since the stored copy (and it cost no budget)."""

    @property
    def server_time(self) -> datetime | None:
        """GitHub's clock when it answered (``Date``), or ``None`` when it sent none."""


class GitHubClient(Protocol):
    """What the sync needs of :class:`github_sync.github.hook.GitHubHook`."""

    def iter_pages(
        self, path: str, params: Mapping[str, Any] | None = None, per_page: int = MAX_PER_PAGE
    ) -> Iterator[ListingPage]:
        """Every page of a listing, each a conditional request."""
        ...

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> ListingPage:
        """One conditional GET."""
        ...


@dataclass(frozen=True)
class RepositoryEndpoint:
    """One endpoint of a repository: a path template (``{full_name}`` and more) and fixed query parameters."""

    path: str
    params: tuple[tuple[str, str], ...] = ()

    def path_for(self, full_name: str, **fields: object) -> str:
        """The path for one repository (``fields`` fill the other placeholders, e.g. ``branch``).

        Each value is percent-encoded as a path segment, so no value can change the path:
        ``owner`` and ``name`` of ``full_name`` wholly (a ``/`` or ``..`` in them would), the
        other fields all but ``/`` (a branch ``feature/x`` is a ref with a slash, as GitHub
        takes it; a ``#``, ``?`` or ``%`` in it must not end or escape the path).
        """
        owner, _, name = full_name.partition("/")
        return self.path.format(
            full_name=f"{path_segment(owner)}/{path_segment(name)}",
            **{key: quote(str(value), safe="/") for key, value in fields.items()},
        )

    @property
    def query(self) -> dict[str, str]:
        """The query parameters, as the hook takes them."""
        return dict(self.params)


def path_segment(value: str) -> str:
    """``value`` percent-encoded as one path segment (``/``, ``?``, ``#`` and ``%`` included).

    Raises:
        ValueError: ``value`` is empty, ``.`` or ``..``: no encoding keeps those from changing
            the path (``%2E`` is ``.`` to every URL normaliser).
    """
    if value in DOT_SEGMENTS:
        raise ValueError(f"{value!r} is not a path segment of a GitHub API path")
    return quote(value, safe="")


# Values that would remove or climb a path segment instead of filling it.
DOT_SEGMENTS = frozenset({"", ".", ".."})
# The repository itself (GET /repos/{owner}/{repo}).
REPOSITORY_RESOURCE = RepositoryEndpoint("/repos/{full_name}")
# Issues *and* pull requests, most recently updated first: GitHub lists PRs among issues (with
# pull_request.merged_at), so the pulls endpoint is not needed for them.
ISSUES_LISTING = RepositoryEndpoint(
    "/repos/{full_name}/issues", (("state", "all"), ("sort", "updated"), ("direction", "desc"))
)
# The default branch's commits, newest first.
COMMITS_LISTING = RepositoryEndpoint("/repos/{full_name}/commits")
OPEN_PULLS_LISTING = RepositoryEndpoint("/repos/{full_name}/pulls", (("state", "open"),))
# Open issues and PRs, oldest first: an item updated while the listing is paged keeps its place
# (sorting by creation), so only closes and removals shift the pages.
OPEN_ISSUES_LISTING = RepositoryEndpoint(
    "/repos/{full_name}/issues", (("state", "open"), ("sort", "created"), ("direction", "asc"))
)
# Anonymous contributors (commits whose e-mail matches no account) count too.
CONTRIBUTORS_LISTING = RepositoryEndpoint("/repos/{full_name}/contributors", (("anon", "1"),))
# One issue or pull request (in its issue form), by number.
ISSUE_RESOURCE = RepositoryEndpoint("/repos/{full_name}/issues/{number}")
# The whole tree of a branch in one response (paths and blob sizes).
TREE_RESOURCE = RepositoryEndpoint("/repos/{full_name}/git/trees/{branch}", (("recursive", "1"),))


# Every issue and pull request of an organisation's repositories that the credential can see
# (filter=all), most recently updated first, only those updated at or after ``since``: one
# listing answers "what changed" for all of an organisation's repositories at once
# (https://docs.github.com/en/rest/issues/issues#list-organization-issues-assigned-to-the-authenticated-user).
ORGANISATION_ISSUES_PATH = "/orgs/{org}/issues"
ORGANISATION_ISSUES_QUERY = (("filter", "all"), ("state", "all"), ("sort", "updated"), ("direction", "desc"))


def iter_organisation_issues(client: GitHubClient, org: str, since: datetime) -> Iterator[ListingPage]:
    """Pages of every issue and PR of ``org`` updated at or after ``since``, newest first."""
    # Whole seconds in UTC, as GitHub's examples write ISO 8601 (YYYY-MM-DDTHH:MM:SSZ).
    stamp = since.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return client.iter_pages(
        ORGANISATION_ISSUES_PATH.format(org=path_segment(org)),
        {**dict(ORGANISATION_ISSUES_QUERY), "since": stamp},
    )


def iter_listing(client: GitHubClient, listing: RepositoryEndpoint, full_name: str) -> Iterator[ListingPage]:
    """Pages of ``listing`` for one repository, in GitHub's order (newest first for the sync's listings)."""
    return client.iter_pages(listing.path_for(full_name), listing.query)


def first_page(client: GitHubClient, listing: RepositoryEndpoint, full_name: str) -> ListingPage:
    """Only the first page of ``listing`` (a conditional request: free when unchanged)."""
    return next(iter(iter_listing(client, listing, full_name)))


def count_listing(
    client: GitHubClient,
    listing: RepositoryEndpoint,
    full_name: str,
    first: ListingPage | None = None,
) -> int:
    """Count a listing's items from its first and last pages of 100, both conditional requests.

    Not ``per_page=1``: GitHub's ETag covers the body, not the ``Link`` header, so a
    cached one-item page can answer 304 while its ``last`` link (the count) moved on, e.g.
    a new contributor who is not the top one. The first and last pages of 100 change
    whenever the count does, so their 304s can be trusted.

    Args:
        client: the GitHub hook.
        listing: the listing.
        full_name: the repository.
        first: its first page, when the caller already has it.
    """
    page = first if first is not None else first_page(client, listing, full_name)
    if page.next_url is None:
        return len(page.items)
    last_url = page.links.get("last")
    last_number = page_number(last_url)
    if last_url is None or last_number is None:
        # Cursor-paginated listings have no numbered last page: walk them.
        log.info("GET %s has no numbered last page; counting by walking it", listing.path_for(full_name))
        return sum(len(p.items) for p in iter_listing(client, listing, full_name))
    return (last_number - 1) * per_page_of(last_url) + len(client.get(last_url).items)
