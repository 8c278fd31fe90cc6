"""Link-header pagination: follow ``rel="next"`` exactly as GitHub gives it.

GitHub pages big issue listings with opaque ``after`` cursors and refuses ``page`` numbers
beyond 100 on them, so the paginator never builds ``?page=N`` URLs itself: it follows
the ``next`` URL verbatim. The one exception is a 502/504 on a big page (GitHub times out
building it): the paginator then asks for the *same* items with a smaller ``per_page``,
changing only that query parameter (and, for page-number URLs, the page number so the
offset stays the same), and keeps following the ``next`` links of the smaller pages.

Owns the ``Link`` relations of a page (parsed by ``requests.utils.parse_header_links``),
query-parameter arithmetic of page URLs and the page loop with its loop guard. It must
not send requests itself (the hook passes ``fetch``) nor count a listing (the sync does,
from its first and last pages).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from requests.utils import parse_header_links

from github_sync.github.errors import PageTooLarge, PaginationLoopError

log = logging.getLogger(__name__)

# GitHub's documented maximum page size.
MAX_PER_PAGE = 100
# Smallest page size the paginator shrinks to on 502/504; below it the error is a real outage.
MIN_PER_PAGE = 10
PER_PAGE_PARAM = "per_page"
PAGE_PARAM = "page"
# Query parameters of cursor pagination: their presence means "no page-number arithmetic".
CURSOR_PARAMS = frozenset({"after", "before", "cursor"})


def parse_link_header(value: str | None) -> dict[str, str]:
    """Parse a ``Link`` header into ``{rel: url}`` (``requests.utils.parse_header_links``).

    Args:
        value: the header value, e.g. ``<https://api.github.com/x?page=2>; rel="next", <...>; rel="last"``.

    Returns:
        The URLs by relation (``next``, ``prev``, ``first``, ``last``), exactly as given. A
        value with several relations (``rel="next last"``) is listed under each; parameter
        names and relations are case-insensitive. Empty for ``None`` or an unparsable
        header. (requests splits a link at its first ``;``, so a raw ``;`` inside a URL
        would cut it; GitHub percent-encodes it.)
    """
    links: dict[str, str] = {}
    if not value:
        return links
    for link in parse_header_links(value):
        params = {key.lower(): param for key, param in link.items()}
        url = params.get("url", "")
        rels = params.get("rel")
        if not url or rels is None:
            continue
        for rel in rels.split():
            # The first occurrence wins, like browsers do.
            links.setdefault(rel.lower(), url)
    return links


def query_param(url: str, name: str) -> str | None:
    """Return the first value of query parameter ``name`` of ``url`` (``None`` if absent)."""
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key == name:
            return value
    return None


def page_number(url: str | None) -> int | None:
    """Return the ``page`` query parameter of ``url`` as an int (``None`` if absent or not a number)."""
    if not url:
        return None
    value = query_param(url, PAGE_PARAM)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def with_query(url: str, updates: Mapping[str, str]) -> str:
    """Return ``url`` with the query parameters in ``updates`` set (replaced or appended).

    Args:
        url: an absolute or relative URL; its other query parameters keep their order.
        updates: parameter values to set.
    """
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    seen: set[str] = set()
    new_pairs: list[tuple[str, str]] = []
    for key, value in pairs:
        if key in updates:
            if key in seen:
                continue
            seen.add(key)
            new_pairs.append((key, updates[key]))
        else:
            new_pairs.append((key, value))
    new_pairs.extend((key, value) for key, value in updates.items() if key not in seen)
    return urlunsplit(parts._replace(query=urlencode(new_pairs)))


def shrink_page_url(url: str, per_page: int, *, min_per_page: int = MIN_PER_PAGE) -> tuple[str, int] | None:
    """Rewrite a page URL to ask for the same first item with a smaller page size.

    Cursor URLs (``after=``/``before=``) keep their cursor and only get a smaller
    ``per_page``. The new size is half the old one but at least ``min_per_page`` (so the
    sequence from 100 is 50, 25, 12, then the floor 10). Page-number URLs must keep their
    offset ``(page - 1) * per_page``, so their new size is the largest divisor of that offset
    between ``min_per_page`` and that target, and the page number is recomputed.

    Args:
        url: the URL of the page that failed.
        per_page: the page size that URL asked for.
        min_per_page: the floor.

    Returns:
        ``(new_url, new_per_page)``, or ``None`` when the page is already at the floor (or no
        size between the floor and the target keeps a page-number offset).
    """
    if per_page <= min_per_page:
        return None
    # Halve, but never below the floor: 12 goes to the floor (10), not to 6 and a give-up, so a
    # listing that GitHub can build only at the floor's size is still read.
    target = max(per_page // 2, min_per_page)
    has_cursor = any(query_param(url, name) is not None for name in CURSOR_PARAMS)
    page = page_number(url)
    if has_cursor or page is None or page <= 1:
        updates = {PER_PAGE_PARAM: str(target)}
        if page is not None and not has_cursor:
            updates[PAGE_PARAM] = "1"
        return with_query(url, updates), target
    offset = (page - 1) * per_page
    for size in range(target, min_per_page - 1, -1):
        if offset % size == 0:
            return with_query(url, {PER_PAGE_PARAM: str(size), PAGE_PARAM: str(offset // size + 1)}), size
    return None


def per_page_of(url: str, default: int = MAX_PER_PAGE) -> int:
    """Return the ``per_page`` of a page URL (GitHub's default of 30 when it has none)."""
    value = query_param(url, PER_PAGE_PARAM)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return default


class PageLike(Protocol):
    """What the paginator needs of a fetched page: its ``Link`` relations."""

    @property
    def links(self) -> Mapping[str, str]:
        """``{rel: url}`` parsed from the page's ``Link`` header."""
        ...


P = TypeVar("P", bound=PageLike)


def follow_pages(
    fetch: Callable[[str, bool], P],
    first_url: str,
    *,
    path: str = "",
    min_per_page: int = MIN_PER_PAGE,
    on_shrink: Callable[[str, int, int], None] | None = None,
) -> Iterator[P]:
    """Fetch ``first_url`` and every ``rel="next"`` after it, yielding each page.

    Args:
        fetch: ``fetch(url, shrinkable)`` returns the page; with ``shrinkable=True`` it raises
            :class:`PageTooLarge` on a 502/504 instead of retrying, so the page can be asked
            for again with a smaller ``per_page``.
        first_url: absolute URL of the first page (its ``per_page`` is the starting size).
        path: API path of the listing, for error messages.
        min_per_page: floor of the page size.
        on_shrink: called with ``(path, old_per_page, new_per_page)`` after each reduction.

    Yields:
        Each page, in order.

    Raises:
        PaginationLoopError: a ``next`` link repeated a page already fetched.
        PageTooLarge: a 502/504 persisted at the floor page size.
    """
    seen: set[str] = set()
    url: str | None = first_url
    while url is not None:
        if url in seen:
            raise PaginationLoopError(path=path, url=url)
        seen.add(url)
        request_url = url
        while True:
            per_page = per_page_of(request_url)
            smaller = shrink_page_url(request_url, per_page, min_per_page=min_per_page)
            try:
                page = fetch(request_url, smaller is not None)
                break
            except PageTooLarge:
                if smaller is None:
                    raise
                request_url, new_size = smaller
                log.warning(
                    "GET %s: %s on a page of %d items, asking again with per_page=%d",
                    path,
                    "502/504",
                    per_page,
                    new_size,
                )
                if on_shrink is not None:
                    on_shrink(path, per_page, new_size)
        seen.add(request_url)
        yield page
        url = page.links.get("next")
