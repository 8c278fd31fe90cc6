"""Pure tests of Link parsing, page shrinking and the paginator loop guard (no server)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from github_sync.github.errors import PageTooLarge, PaginationLoopError
from github_sync.github.pagination import (
    MAX_PER_PAGE,
    MIN_PER_PAGE,
    follow_pages,
    page_number,
    parse_link_header,
    query_param,
    shrink_page_url,
    with_query,
)

BASE = "https://api.github.com/repos/acme/api/issues"


def test_parses_githubs_documented_example(github_samples: Path) -> None:
    headers = json.loads((github_samples / "openapi" / "_components_headers.json").read_text())
    links = parse_link_header(headers["components/headers"]["link"]["example"])
    assert links == {
        "next": "https://api.github.com/resource?page=2",
        "last": "https://api.github.com/resource?page=5",
    }
    assert page_number(links["last"]) == 5


def test_cursor_urls_are_kept_exactly() -> None:
    next_url = f"{BASE}?per_page=100&state=all&after=Y3Vyc29yOnYyOpK5MjAyNi0xMS0wMVQwMDowMDowMCswMDowMM4AAAAB"
    header = f'<{next_url}>; rel="next", <{BASE}?per_page=100&before=abc%3D%3D>; rel="prev"'
    links = parse_link_header(header)
    assert links["next"] == next_url
    assert links["prev"] == f"{BASE}?per_page=100&before=abc%3D%3D"
    assert "last" not in links
    assert page_number(links["next"]) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, {}),
        ("", {}),
        ("garbage", {}),
        ("<https://x/a?page=2>; rel=next", {"next": "https://x/a?page=2"}),
        # Commas stay in the URL; GitHub percent-encodes semicolons (requests cuts a link at a raw one).
        (
            '<https://x/a?q=a,b%3Bc>; rel="next last"',
            {"next": "https://x/a?q=a,b%3Bc", "last": "https://x/a?q=a,b%3Bc"},
        ),
        ('<https://x/1>; title="x"; REL="Next"', {"next": "https://x/1"}),
        (
            '<https://x/2>; rel="next", <https://x/9>; rel="last", <https://x/3>; rel="next"',
            {"next": "https://x/2", "last": "https://x/9"},
        ),
        ("<https://x/1>", {}),
    ],
)
def test_link_edge_cases(header: str | None, expected: dict[str, str]) -> None:
    assert parse_link_header(header) == expected


def test_with_query_replaces_and_appends_in_order() -> None:
    url = with_query(f"{BASE}?state=all&per_page=100&after=c1", {"per_page": "50", "anon": "1"})
    assert url == f"{BASE}?state=all&per_page=50&after=c1&anon=1"


def test_shrink_cursor_page_keeps_cursor() -> None:
    url = f"{BASE}?state=all&per_page=100&after=c1"
    new_url, size = shrink_page_url(url, 100)
    assert size == 50
    assert query_param(new_url, "after") == "c1" and query_param(new_url, "per_page") == "50"


def test_shrink_page_number_keeps_offset() -> None:
    # Page 3 of 100 starts at item 200; at 50 per page that is page 5.
    new_url, size = shrink_page_url(f"{BASE}?per_page=100&page=3", 100)
    assert (size, page_number(new_url)) == (50, 5)
    # Page 2 of 50 starts at 50: 25 divides it -> page 3.
    new_url, size = shrink_page_url(f"{BASE}?per_page=50&page=2", 50)
    assert (size, page_number(new_url)) == (25, 3)
    # Page 2 of 25 starts at 25: no size between the floor (10) and 12 divides 25, so it
    # cannot shrink without breaking the offset.
    assert shrink_page_url(f"{BASE}?per_page=25&page=2", 25) is None
    # The first page can always shrink.
    new_url, size = shrink_page_url(f"{BASE}?per_page=25", 25)
    assert size == 12


def test_shrink_sequence_ends_at_the_floor_not_above_it() -> None:
    # 12 halves to 6, below the floor: it must go to the floor (10), not give up at 12.
    url, sizes = f"{BASE}?per_page={MAX_PER_PAGE}", []
    while (smaller := shrink_page_url(url, int(query_param(url, "per_page") or MAX_PER_PAGE))) is not None:
        url, size = smaller
        sizes.append(size)
    assert sizes == [50, 25, 12, MIN_PER_PAGE]


def test_shrink_stops_at_floor() -> None:
    assert shrink_page_url(f"{BASE}?per_page=10", 10) is None
    assert shrink_page_url(f"{BASE}?per_page=10", 10, min_per_page=5) is not None


@dataclass
class FakePage:
    url: str
    link: str | None
    items: list[int] = field(default_factory=list)

    @property
    def links(self) -> dict[str, str]:
        return parse_link_header(self.link)


def test_follow_pages_detects_a_repeated_page() -> None:
    pages = {
        f"{BASE}?per_page=100": f'<{BASE}?per_page=100&after=a>; rel="next"',
        f"{BASE}?per_page=100&after=a": f'<{BASE}?per_page=100>; rel="next"',
    }

    def fetch(url: str, shrinkable: bool) -> FakePage:
        return FakePage(url, pages[url])

    it = follow_pages(fetch, f"{BASE}?per_page=100", path="/repos/acme/api/issues")
    assert next(it).url.endswith("per_page=100")
    assert next(it).url.endswith("after=a")
    with pytest.raises(PaginationLoopError) as info:
        next(it)
    assert "/repos/acme/api/issues" in str(info.value)


def test_follow_pages_shrinks_then_follows_the_smaller_links() -> None:
    items = list(range(230))
    calls: list[str] = []
    shrinks: list[tuple[int, int]] = []

    def fetch(url: str, shrinkable: bool) -> FakePage:
        calls.append(url)
        size = int(query_param(url, "per_page") or 30)
        if size > 40:
            assert shrinkable
            raise PageTooLarge(method="GET", path="/x", status=502)
        page = int(query_param(url, "page") or 1)
        chunk = items[(page - 1) * size : page * size]
        more = page * size < len(items)
        link = f'<{with_query(url, {"page": str(page + 1)})}>; rel="next"' if more else None
        return FakePage(url, link, chunk)

    got = [
        i
        for p in follow_pages(
            fetch, f"{BASE}?per_page={MAX_PER_PAGE}", on_shrink=lambda *a: shrinks.append(a[1:])
        )
        for i in p.items
    ]
    assert got == items
    assert shrinks == [(100, 50), (50, 25)]


def test_follow_pages_reraises_at_the_floor() -> None:
    def fetch(url: str, shrinkable: bool) -> FakePage:
        if shrinkable:
            raise PageTooLarge(method="GET", path="/x", status=504)
        raise RuntimeError("plain retry path reached")

    with pytest.raises(RuntimeError, match="plain retry path"):
        list(follow_pages(fetch, f"{BASE}?per_page=100"))
