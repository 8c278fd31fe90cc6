"""What one answered GET is to the hook's callers: :class:`GitHubResponse` and listing bodies.

Owns the response value (status, decoded body, 304/cache flags, redirect target, ``Link``
relations, rate-limit window), how a body is decoded from the wire, and where a listing
page keeps its items (:func:`page_items`).

It must not send, retry or classify anything (:mod:`github_sync.github.transport`), nor
know what the items mean (the sync does).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import requests

from github_sync.github.pagination import parse_link_header
from github_sync.github.ratelimit import RateLimit

# Status of the redirect a renamed or transferred repository answers with.
MOVED_PERMANENTLY = 301


@dataclass(frozen=True)
class GitHubResponse:
    """One answered GET.

    Attributes:
        status: HTTP status of the final response (304 for a conditional hit).
        url: the URL that was asked for (the cache key; before redirects).
        headers: headers of the final response (case-insensitive mapping).
        json: decoded JSON body; on a 304 the stored body of the earlier 200.
        not_modified: GitHub answered 304: nothing changed since the stored copy.
        from_cache: the body comes from the conditional-request cache.
        moved_to: absolute URL of the ``Location`` of a 301 on the way (renamed or
            transferred repository), else ``None``.
        final_url: the URL that answered, after redirects.
        link_header: the ``Link`` header (on a 304, the stored one).
        rate_limit: the rate-limit window reported by this response, if any.
    """

    status: int
    url: str
    headers: Mapping[str, str]
    json: Any
    not_modified: bool = False
    from_cache: bool = False
    moved_to: str | None = None
    final_url: str | None = None
    link_header: str | None = None
    rate_limit: RateLimit | None = None

    @property
    def links(self) -> dict[str, str]:
        """``{rel: url}`` from the ``Link`` header (``next``, ``last``, ...)."""
        return parse_link_header(self.link_header)

    @property
    def next_url(self) -> str | None:
        """The ``rel="next"`` URL, or ``None`` on the last page."""
        return self.links.get("next")

    @property
    def moved_full_name(self) -> str | None:
        """``owner/name`` of a moved repository (from the new location's body), else ``None``."""
        if self.moved_to is None or not isinstance(self.json, Mapping):
            return None
        full_name = self.json.get("full_name")
        return str(full_name) if full_name else None

    @property
    def items(self) -> list[Any]:
        """The items of a listing page (see :func:`page_items`)."""
        return page_items(self.json)

    @property
    def server_time(self) -> datetime | None:
        """GitHub's clock when it answered (the ``Date`` header, also on a 304), else ``None``.

        The sync's watermarks use it rather than the worker's clock, so that a skewed worker
        clock cannot move them past changes GitHub stamped earlier.
        """
        value = self.headers.get("Date")
        if not value:
            return None
        try:
            stamped = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return stamped if stamped.tzinfo is not None else stamped.replace(tzinfo=UTC)


def page_items(body: Any) -> list[Any]:
    """Return the items of a listing page body.

    Most listings are JSON arrays; a few wrap them (``{"total_count": n, "items": [...]}``
    for search, ``{"repositories": [...]}`` for installations).

    Args:
        body: the decoded page body.

    Raises:
        TypeError: the body is not a listing.
    """
    if body is None:
        return []
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        lists = [value for value in body.values() if isinstance(value, list)]
        items = body.get("items")
        if isinstance(items, list):
            return items
        if len(lists) == 1:
            return lists[0]
    raise TypeError(f"not a listing body: {type(body).__name__}")


def decode_content(content: bytes, content_type: str) -> Any:
    """Decode a response body: JSON when it is (or looks like) JSON, else text; empty is ``None``.

    Args:
        content: the raw body.
        content_type: the ``Content-Type`` header ("" when absent).
    """
    if not content:
        return None
    if "json" in content_type.lower() or content[:1] in (b"{", b"["):
        try:
            return json.loads(content)
        except ValueError:
            pass
    return content.decode("utf-8", errors="replace")


def moved_to(raw: requests.Response) -> str | None:
    """The absolute ``Location`` of the first 301 ``requests`` followed for ``raw``, else ``None``."""
    for hop in raw.history:
        location = hop.headers.get("Location")
        if hop.status_code == MOVED_PERMANENTLY and location:
            return urljoin(hop.url, location)
    return None
