"""Conditional-request cache: the ETag, Link header and body of every cached GET, per token.

GitHub answers ``If-None-Match: <etag>`` with ``304 Not Modified`` when nothing changed,
and a 304 does not count against the primary rate limit. To use that, the hook keeps, per
(token, URL), the ETag of the last 200 and its body; on a 304 it returns the stored body.
ETags are tied to the token that obtained them, so entries are keyed by a SHA-256 of the
token (the token itself is never stored).

Two implementations of :class:`HttpCache`:

* :class:`InMemoryHttpCache` for tests and one-off scripts;
* :class:`PostgresHttpCache` in the ``github_http_cache`` table (migration 0001), so a new
  task (a new hook) still gets 304s. It takes a DSN or a connection factory
  (``lambda: PostgresHook("pg").get_conn()``) and uses short autocommit statements: it is
  a cache, never part of the sync's transactions. A database failure is logged and
  treated as a miss, never as a failed request.

It must not import Airflow (the hook uses it inside and outside Airflow), store a token
(only its hash) or let a database error fail a request.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from github_sync.github.lazy_connection import ConnectionFactory, LazyConnection
from github_sync.github.session import without_user_info

log = logging.getLogger(__name__)

# gzip level: GitHub JSON compresses ~10x at level 6 and costs little CPU.
GZIP_LEVEL = 6
TABLE = "github_http_cache"

_SELECT_SQL = (
    f"SELECT etag, last_modified, link, body, stored_at FROM {TABLE} WHERE token_hash = %s AND url = %s"
)
_UPSERT_SQL = f"""
INSERT INTO {TABLE} (token_hash, url, etag, last_modified, link, body, stored_at)
VALUES (%s, %s, %s, %s, %s, %s, now())
ON CONFLICT (token_hash, url) DO UPDATE SET
    etag = EXCLUDED.etag,
    last_modified = EXCLUDED.last_modified,
    link = EXCLUDED.link,
    body = EXCLUDED.body,
    stored_at = EXCLUDED.stored_at
"""
_DELETE_SQL = f"DELETE FROM {TABLE} WHERE token_hash = %s AND url = %s"
# Retention keys on stored_at; an entry that keeps answering 304s is in use and must survive it.
_TOUCH_SQL = f"UPDATE {TABLE} SET stored_at = now() WHERE token_hash = %s AND url = %s"
# A 304 refreshes stored_at only when it is older than this, so a hot entry costs one write a day.
TOUCH_AFTER = timedelta(days=1)


def token_hash(token: str) -> str:
    """Return the hex SHA-256 of ``token``: the cache key part that identifies a token.

    Args:
        token: the GitHub token.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def encode_body(body: Any) -> bytes:
    """Serialise a decoded JSON body to gzip'd JSON bytes (the stored form)."""
    return gzip.compress(json.dumps(body, separators=(",", ":")).encode("utf-8"), compresslevel=GZIP_LEVEL)


def decode_body(data: bytes | memoryview) -> Any:
    """Inverse of :func:`encode_body`; accepts ``memoryview`` (psycopg2 returns bytea as one)."""
    return json.loads(gzip.decompress(bytes(data)).decode("utf-8"))


@dataclass(frozen=True)
class CachedResponse:
    """One cached 200 response.

    Attributes:
        etag: the ``ETag`` header (sent back as ``If-None-Match``).
        last_modified: the ``Last-Modified`` header, if any.
        link: the ``Link`` header, so a 304 page can still be paginated.
        body: the decoded JSON body.
        stored_at: when it was stored.
    """

    etag: str | None
    last_modified: str | None
    link: str | None
    body: Any
    stored_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class HttpCache(Protocol):
    """Storage of conditional-request entries, keyed by (token hash, absolute URL)."""

    def get(self, token_hash: str, url: str) -> CachedResponse | None:
        """Return the entry for the token and URL, or ``None``."""
        ...

    def put(self, token_hash: str, url: str, entry: CachedResponse) -> None:
        """Store (replace) the entry for the token and URL."""
        ...

    def delete(self, token_hash: str, url: str) -> None:
        """Forget the entry for the token and URL."""
        ...

    def touch(self, token_hash: str, url: str) -> None:
        """Mark the entry as still in use (it just answered a 304), so retention keeps it."""
        ...


class InMemoryHttpCache:
    """Thread-safe dict-backed :class:`HttpCache` (lives as long as the object)."""

    def __init__(self) -> None:
        """Create an empty cache."""
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], CachedResponse] = {}

    def get(self, token_hash: str, url: str) -> CachedResponse | None:
        """Return the entry for the token and URL, or ``None``."""
        with self._lock:
            return self._entries.get((token_hash, url))

    def put(self, token_hash: str, url: str, entry: CachedResponse) -> None:
        """Store (replace) the entry for the token and URL."""
        with self._lock:
            self._entries[(token_hash, url)] = entry

    def delete(self, token_hash: str, url: str) -> None:
        """Forget the entry for the token and URL."""
        with self._lock:
            self._entries.pop((token_hash, url), None)

    def touch(self, token_hash: str, url: str) -> None:
        """Mark the entry as still in use."""
        with self._lock:
            entry = self._entries.get((token_hash, url))
            if entry is not None:
                self._entries[(token_hash, url)] = replace(entry, stored_at=datetime.now(UTC))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# One stored entry: etag, last_modified, link, gzip'd body, stored_at.
_Row = tuple[Any, ...]


class PostgresHttpCache:
    """:class:`HttpCache` in PostgreSQL's ``github_http_cache`` table.

    One connection is opened lazily and reused under a lock (the hook's threads share it);
    it runs in autocommit mode so every get/put is its own short statement. Only DB-API
    calls are used on it.
    """

    def __init__(self, connect: ConnectionFactory | str) -> None:
        """Create the store.

        Args:
            connect: a PostgreSQL DSN/URL, or a zero-argument callable returning a new
                psycopg connection (e.g. ``PostgresHook("postgres_default").get_conn``).
        """
        self._connection = LazyConnection(connect, name="HTTP cache")
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        # The DSN may hold a database password: never show it.
        return f"{type(self).__name__}()"

    def _execute(self, sql: str, params: tuple[Any, ...], fetch: bool) -> _Row | None:
        with self._lock:
            try:
                conn = self._connection.get()
                cur = conn.cursor()
                try:
                    cur.execute(sql, params)
                    row = cur.fetchone() if fetch else None
                    return None if row is None else tuple(row)
                finally:
                    cur.close()
            except Exception as exc:  # a cache failure must not fail the sync
                log.warning("HTTP cache unavailable (%s); continuing without it", type(exc).__name__)
                self._connection.drop()
                return None

    def get(self, token_hash: str, url: str) -> CachedResponse | None:
        """Return the entry for the token and URL, or ``None`` (also when the database fails)."""
        row = self._execute(_SELECT_SQL, (token_hash, url), fetch=True)
        if row is None:
            return None
        etag, last_modified, link, body, stored_at = row
        try:
            decoded = decode_body(body)
        except (OSError, ValueError):
            log.warning("HTTP cache entry for %s is unreadable; ignoring it", without_user_info(url))
            return None
        return CachedResponse(
            etag=etag, last_modified=last_modified, link=link, body=decoded, stored_at=stored_at
        )

    def put(self, token_hash: str, url: str, entry: CachedResponse) -> None:
        """Store (replace) the entry for the token and URL."""
        self._execute(
            _UPSERT_SQL,
            (token_hash, url, entry.etag, entry.last_modified, entry.link, encode_body(entry.body)),
            fetch=False,
        )

    def delete(self, token_hash: str, url: str) -> None:
        """Forget the entry for the token and URL."""
        self._execute(_DELETE_SQL, (token_hash, url), fetch=False)

    def touch(self, token_hash: str, url: str) -> None:
        """Mark the entry as still in use."""
        self._execute(_TOUCH_SQL, (token_hash, url), fetch=False)

    def close(self) -> None:
        """Close the connection (a later call opens a new one)."""
        with self._lock:
            self._connection.drop()
