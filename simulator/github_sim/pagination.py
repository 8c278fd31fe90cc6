"""Page and cursor pagination with ``Link`` headers written the way GitHub writes them.

Pure functions over a listing already filtered and sorted by the API; they must not know which
operation they page (the caller passes its canonical URL and the GitHub-specific limits).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

T = TypeVar("T")

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
# Beyond this page GitHub's issue listing refuses page numbers (cursor pagination only).
MAX_ISSUE_PAGE = 100
CURSOR_PREFIX = "cursor:v2:"
DELIVERY_CURSOR_PREFIX = "v1_"  # the cursors of webhook delivery listings (paginate_id_cursor)


class PaginationError(ValueError):
    """A page or cursor parameter GitHub would answer with 422."""


@dataclass
class Page:
    """One page of a listing and the ``Link`` header that goes with it."""

    items: list[Any]
    link: str | None


def per_page_of(query: dict[str, str]) -> int:
    """Return ``per_page`` as GitHub applies it: default 30, capped at 100."""
    try:
        value = int(query.get("per_page", DEFAULT_PER_PAGE))
    except ValueError:
        return DEFAULT_PER_PAGE
    return DEFAULT_PER_PAGE if value < 1 else min(value, MAX_PER_PAGE)


def page_of(query: dict[str, str]) -> int:
    """Return the 1-based ``page`` parameter (invalid or < 1 means 1)."""
    try:
        return max(int(query.get("page", 1)), 1)
    except ValueError:
        return 1


def _url(base: str, params: list[tuple[str, str]], replace: dict[str, str | None]) -> str:
    # Keep the caller's parameters in their order, replace or drop the paging ones, append new ones.
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key, value in params:
        if key in replace:
            if key in seen:
                continue
            seen.add(key)
            new = replace[key]
            if new is not None:
                out.append((key, new))
        else:
            out.append((key, value))
    for key, new in replace.items():
        if key not in seen and new is not None:
            out.append((key, new))
    if not out:
        return base
    return base + "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe=',:')}" for k, v in out)


def paginate(items: Sequence[T], query: dict[str, str], params: list[tuple[str, str]], base: str) -> Page:
    """Cut a page out of ``items`` and build prev/next/last/first links.

    Args:
        items: the whole listing, in order.
        query: parsed query parameters.
        params: the query as an ordered list (links keep the caller's parameters).
        base: absolute URL of the listing without query (GitHub's canonical form).
    """
    per_page = per_page_of(query)
    page = page_of(query)
    total = len(items)
    last = max(math.ceil(total / per_page), 1)
    chunk = list(items[(page - 1) * per_page : page * per_page])
    links: list[str] = []
    drop = {"after": None, "before": None}
    if page > 1:
        links.append(f'<{_url(base, params, {"page": str(min(page - 1, last)), **drop})}>; rel="prev"')
    if page < last:
        links.append(f'<{_url(base, params, {"page": str(page + 1), **drop})}>; rel="next"')
        links.append(f'<{_url(base, params, {"page": str(last), **drop})}>; rel="last"')
    if page > 1:
        links.append(f'<{_url(base, params, {"page": "1", **drop})}>; rel="first"')
    return Page(chunk, ", ".join(links) or None)


def encode_cursor(key: tuple[Any, ...]) -> str:
    """Return an opaque cursor for a sort key."""
    raw = (CURSOR_PREFIX + json.dumps(list(key), separators=(",", ":"))).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, ...]:
    """Decode a cursor made by :func:`encode_cursor`; raise :class:`PaginationError` if invalid."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(CURSOR_PREFIX):
            raise ValueError(raw)
        return tuple(json.loads(raw[len(CURSOR_PREFIX) :]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PaginationError("Invalid cursor") from exc


def paginate_cursor(
    items: Sequence[T],
    key: Callable[[T], tuple[Any, ...]],
    descending: bool,
    query: dict[str, str],
    params: list[tuple[str, str]],
    base: str,
) -> Page:
    """Page ``items`` (sorted by ``key``) with ``after``/``before`` cursors, as GitHub's issue listing does.

    The links carry next/prev only: GitHub does not send ``last`` with cursors.
    """
    per_page = per_page_of(query)

    def beyond(k: tuple[Any, ...], c: tuple[Any, ...]) -> bool:
        return k < c if descending else k > c

    if query.get("after"):
        cursor = decode_cursor(query["after"])
        start = next((n for n, item in enumerate(items) if beyond(key(item), cursor)), len(items))
    elif query.get("before"):
        cursor = decode_cursor(query["before"])
        end = next((n for n, item in enumerate(items) if not beyond(cursor, key(item))), len(items))
        start = max(end - per_page, 0)
        chunk = list(items[start:end])
        return _cursor_page(items, chunk, start, start + len(chunk), key, params, base)
    else:
        start = 0
    chunk = list(items[start : start + per_page])
    return _cursor_page(items, chunk, start, start + len(chunk), key, params, base)


def _cursor_page(
    items: Sequence[T],
    chunk: list[T],
    start: int,
    end: int,
    key: Callable[[T], tuple[Any, ...]],
    params: list[tuple[str, str]],
    base: str,
) -> Page:
    links: list[str] = []
    drop = {"page": None}
    if start > 0 and chunk:
        prev = _url(base, params, {**drop, "after": None, "before": encode_cursor(key(chunk[0]))})
        links.append(f'<{prev}>; rel="prev"')
    if end < len(items) and chunk:
        nxt = _url(base, params, {**drop, "before": None, "after": encode_cursor(key(chunk[-1]))})
        links.append(f'<{nxt}>; rel="next"')
    return Page(chunk, ", ".join(links) or None)


def paginate_id_cursor(
    items: Sequence[T],
    id_of: Callable[[T], int],
    query: dict[str, str],
    params: list[tuple[str, str]],
    base: str,
) -> Page:
    """Page ``items`` (newest first, ids decreasing) with a ``cursor`` parameter, as webhook deliveries page.

    GitHub's delivery listings take ``cursor`` ("the starting delivery from which the page of
    deliveries is fetched. Refer to the ``link`` header for the next and previous page cursors",
    https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook) and
    write it as ``v1_<delivery id>``. Here the cursor names the last delivery of the previous page
    and the page starts after it; the link carries ``rel="next"`` only (choice: no ``prev``, which
    no client of this simulator follows). Raises :class:`PaginationError` for a cursor that is not
    one of these.
    """
    per_page = per_page_of(query)
    start = 0
    raw = query.get("cursor")
    if raw:
        number = raw.removeprefix(DELIVERY_CURSOR_PREFIX)
        if number == raw or not number.isdigit():
            raise PaginationError("Invalid cursor")
        after = int(number)
        start = next((n for n, item in enumerate(items) if id_of(item) < after), len(items))
    chunk = list(items[start : start + per_page])
    link = None
    if start + len(chunk) < len(items) and chunk:
        nxt = _url(base, params, {"cursor": f"{DELIVERY_CURSOR_PREFIX}{id_of(chunk[-1])}"})
        link = f'<{nxt}>; rel="next"'
    return Page(chunk, link)
