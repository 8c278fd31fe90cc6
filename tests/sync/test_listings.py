"""github_sync.github.listings: the URLs the sync reads, and counting a listing from its first and last pages."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

from github_sync.github.listings import (
    COMMITS_LISTING,
    CONTRIBUTORS_LISTING,
    ISSUE_RESOURCE,
    ISSUES_LISTING,
    TREE_RESOURCE,
    count_listing,
    first_page,
)

PER_PAGE = 100


@dataclass(frozen=True)
class Page:
    items: list[Any]
    links: dict[str, str] = field(default_factory=dict)
    not_modified: bool = False

    @property
    def json(self) -> Any:
        return self.items

    @property
    def next_url(self) -> str | None:
        return self.links.get("next")


class NumberedListing:
    """A listing of ``total`` items in numbered pages of 100 (``numbered=False``: cursor links only)."""

    def __init__(self, total: int, *, numbered: bool = True) -> None:
        self.total = total
        self.numbered = numbered
        self.requests: list[str] = []

    def _page(self, number: int) -> Page:
        items = list(range((number - 1) * PER_PAGE, min(number * PER_PAGE, self.total)))
        pages = max(1, -(-self.total // PER_PAGE))
        links: dict[str, str] = {}
        if number < pages:
            links["next"] = self._url(number + 1) if self.numbered else f"https://api/x?after=c{number}"
            if self.numbered:
                links["last"] = self._url(pages)
        return Page(items, links)

    def _url(self, number: int) -> str:
        return "https://api/x?" + urlencode({"per_page": PER_PAGE, "page": number})

    def iter_pages(
        self, path: str, params: Mapping[str, Any] | None = None, per_page: int = PER_PAGE
    ) -> Iterator[Page]:
        self.requests.append(f"{path}?{urlencode(dict(params or {}))}")
        number = 1
        while True:
            page = self._page(number)
            yield page
            if page.next_url is None:
                return
            number += 1
            self.requests.append(page.next_url)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Page:
        self.requests.append(path)
        return self._page(int(path.rsplit("page=", 1)[1]))


def test_the_sync_reads_these_urls() -> None:
    assert ISSUES_LISTING.path_for("acme/api") == "/repos/acme/api/issues"
    assert ISSUES_LISTING.query == {"state": "all", "sort": "updated", "direction": "desc"}
    assert (COMMITS_LISTING.path_for("acme/api"), COMMITS_LISTING.query) == ("/repos/acme/api/commits", {})
    assert CONTRIBUTORS_LISTING.query == {"anon": "1"}
    assert ISSUE_RESOURCE.path_for("acme/api", number=7) == "/repos/acme/api/issues/7"
    assert TREE_RESOURCE.path_for("acme/api", branch="main") == "/repos/acme/api/git/trees/main"
    assert TREE_RESOURCE.query == {"recursive": "1"}


@pytest.mark.parametrize(("total", "requests"), [(0, 1), (37, 1), (100, 1), (101, 2), (250, 2), (1000, 2)])
def test_a_numbered_listing_is_counted_from_its_first_and_last_pages(total: int, requests: int) -> None:
    client = NumberedListing(total)
    assert count_listing(client, CONTRIBUTORS_LISTING, "acme/api") == total
    assert len(client.requests) == requests
    assert client.requests[0] == "/repos/acme/api/contributors?anon=1"


def test_a_first_page_in_hand_is_not_asked_for_again() -> None:
    client = NumberedListing(250)
    first = first_page(client, COMMITS_LISTING, "acme/api")
    client.requests.clear()
    assert count_listing(client, COMMITS_LISTING, "acme/api", first) == 250
    assert client.requests == ["https://api/x?per_page=100&page=3"]  # the last page only


def test_a_cursor_paginated_listing_is_walked() -> None:
    client = NumberedListing(250, numbered=False)
    assert count_listing(client, COMMITS_LISTING, "acme/api") == 250
    assert len(client.requests) == 1 + 3  # the first page, then the whole walk
