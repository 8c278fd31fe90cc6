"""One autocommit PostgreSQL connection for a store beside the hook, opened on first use.

The hook's database-backed helpers (:class:`~github_sync.github.http_cache.PostgresHttpCache`,
:class:`~github_sync.github.shared_budget.PostgresBudget`) each keep one connection that
their callers share under the store's lock, in autocommit mode (they are never part of a
sync's transaction), and replace it after a failure. :class:`LazyConnection` is that
connection; :func:`dsn_factory` turns a DSN into the factory it takes.

It must not import psycopg at module level (the hook loads without a database), lock
anything itself (the store's lock covers the connection and its statements), or show a DSN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

# Returns a new psycopg 3 connection (what PostgresHook.get_conn returns under Airflow 3).
ConnectionFactory = Callable[[], "psycopg.Connection[Any]"]


def dsn_factory(dsn: str, **connect_arguments: Any) -> ConnectionFactory:
    """A factory of autocommit connections to ``dsn`` (psycopg imported on first use)."""

    def connect() -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(dsn, autocommit=True, **connect_arguments)

    return connect


class LazyConnection:
    """The store's connection: opened on :meth:`get`, replaced after :meth:`drop`. Not thread-safe."""

    def __init__(
        self,
        connect: ConnectionFactory | str,
        *,
        name: str,
        on_open: Callable[[psycopg.Connection[Any]], None] | None = None,
    ) -> None:
        """Create it closed.

        Args:
            connect: a DSN or a zero-argument callable returning a new psycopg connection.
            name: what the connection is for, in log lines.
            on_open: runs on each new connection (session settings).
        """
        self._connect = dsn_factory(connect) if isinstance(connect, str) else connect
        self._name = name
        self._on_open = on_open
        self._conn: psycopg.Connection[Any] | None = None

    def __repr__(self) -> str:
        # The DSN may hold a database password: never show it.
        return f"{type(self).__name__}(name={self._name!r})"

    def get(self) -> psycopg.Connection[Any]:
        """The open connection (a new one, in autocommit mode, when there is none)."""
        if self._conn is None or self._conn.closed:
            conn = self._connect()
            conn.autocommit = True
            if self._on_open is not None:
                self._on_open(conn)
            self._conn = conn
        return self._conn

    def drop(self) -> None:
        """Close the connection; the next :meth:`get` opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken connection may fail in any way
                log.debug("closing the %s connection failed", self._name, exc_info=True)
