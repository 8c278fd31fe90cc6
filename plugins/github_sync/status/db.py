"""How the status API (running inside Airflow's api-server) reaches the target database.

The api-server is not a task: there is no Task SDK supervisor to ask for connections, so
the ``github_sync_db`` connection is resolved the server-side way
(``Connection.get_connection_from_secrets``: environment ``AIRFLOW_CONN_*``, secrets
backends, then the metadata database). Without that connection the documented
environment shortcut ``GITHUB_SYNC_DATABASE_URL`` is used.

Must not: hand out a connection that can write (sessions are read-only), or log a DSN
(it may hold a password).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import make_conninfo

from github_sync.config import DATABASE_CONN_ID, ENV_DATABASE_URL, ConfigError, validate_database_url

if TYPE_CHECKING:
    from airflow.models.connection import Connection

log = logging.getLogger(__name__)

# Where a connection without host or port points (libpq's own defaults, but explicit).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5432
# Connections can be edited in the UI; re-resolve now and then rather than once per process.
DSN_CACHE_TTL_S = 60.0
CONNECT_TIMEOUT_S = 5
# The status API only reads: a read-only session makes a bug here unable to write, and a
# statement timeout keeps a slow query from holding an api-server worker.
SESSION_OPTIONS = "-c default_transaction_read_only=on -c statement_timeout=15000"
APPLICATION_NAME = "github-sync-status"
# Extras of a Postgres connection that are libpq parameters worth passing on.
LIBPQ_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "target_session_attrs")


class DatabaseNotConfigured(RuntimeError):
    """Neither the Airflow connection nor the environment variable names a database."""


def _dsn_from_connection(conn: Connection) -> str:
    extras: Mapping[str, Any] = getattr(conn, "extra_dejson", None) or {}
    params: dict[str, Any] = {
        "host": conn.host or DEFAULT_HOST,
        "port": conn.port or DEFAULT_PORT,
        "user": conn.login or None,
        "password": conn.password or None,
        # Airflow's Postgres connection keeps the database name in ``schema``.
        "dbname": conn.schema or None,
    }
    params.update({key: extras[key] for key in LIBPQ_EXTRAS if extras.get(key)})
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def _airflow_connection(conn_id: str) -> Connection | None:
    try:
        from airflow.exceptions import AirflowNotFoundException
        from airflow.models.connection import Connection
    except ImportError:  # pragma: no cover - the plugin always runs inside Airflow
        return None
    try:
        return Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None


def resolve_dsn(conn_id: str = DATABASE_CONN_ID, environ: Mapping[str, str] | None = None) -> str:
    """The libpq connection string of the target database.

    Args:
        conn_id: the Airflow connection to look up first.
        environ: environment for the fallback (tests); defaults to ``os.environ``.

    Raises:
        DatabaseNotConfigured: neither source names a database.
    """
    connection = _airflow_connection(conn_id)
    if connection is not None:
        return _dsn_from_connection(connection)
    url = (environ if environ is not None else os.environ).get(ENV_DATABASE_URL, "").strip()
    if url:
        # The one database-URL rule (config.py), which also turns postgresql+psycopg:// into libpq's form.
        try:
            libpq_url = validate_database_url(ENV_DATABASE_URL, url)
        except ConfigError as exc:
            raise DatabaseNotConfigured(str(exc)) from None
        return make_conninfo(libpq_url)
    raise DatabaseNotConfigured(
        f"no Airflow connection {conn_id!r} and {ENV_DATABASE_URL} is not set: "
        "the status page cannot reach the github-sync database"
    )


class DatabaseProvider:
    """Opens read-only connections to the target database, re-resolving its DSN every minute."""

    def __init__(
        self,
        resolve: Callable[[], str] = resolve_dsn,
        *,
        ttl_s: float = DSN_CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create the provider.

        Args:
            resolve: returns the DSN (called at most once per ``ttl_s``).
            ttl_s: how long a resolved DSN is reused.
            clock: monotonic clock (tests).
        """
        self._resolve = resolve
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._dsn: str | None = None
        self._resolved_at = 0.0

    def dsn(self) -> str:
        """The current DSN (cached)."""
        with self._lock:
            if self._dsn is None or self._clock() - self._resolved_at > self._ttl_s:
                self._dsn = self._resolve()
                self._resolved_at = self._clock()
            return self._dsn

    def forget_dsn(self) -> None:
        """Resolve the DSN again on the next connection (e.g. after the connection was edited)."""
        with self._lock:
            self._dsn = None

    def connect(self) -> psycopg.Connection[Any]:
        """A new autocommit, read-only connection; the caller closes it."""
        return psycopg.connect(
            self.dsn(),
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=APPLICATION_NAME,
            options=SESSION_OPTIONS,
        )
