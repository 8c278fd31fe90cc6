"""Durable storage of webhook deliveries in PostgreSQL (``webhook_deliveries``).

The relay answers GitHub only after the delivery is committed here, so a crash or an
Airflow outage loses nothing: the forwarder works from this table alone. The delivery id
(``X-GitHub-Delivery``, the same on a redelivery) is the primary key, so a redelivery is a
no-op insert.

Forwarding state lives in the same rows: a ``pending`` delivery first gets a
``dag_run_id`` (committed *before* the trigger request, so a retry after a timeout asks for
the same run and Airflow answers 409 instead of creating a second one), then becomes
``forwarded`` once Airflow has the run. The DAG marks it ``processed`` or ``failed``.

Owns the relay's SQL on that table and its connection pool (psycopg_pool). Must not: talk
to Airflow, decide when to forward (the forwarder does), or apply deliveries to the synced
tables (:mod:`github_sync.webhooks.apply` does, inside the DAG).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

import psycopg
from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

STATUS_PENDING = "pending"
STATUS_IGNORED = "ignored"
STATUS_FORWARDED = "forwarded"
STATUS_FAILED = "failed"
# Enough for the request threads plus the forwarder; the relay is not a heavy writer.
DEFAULT_POOL_SIZE = 8
# One connection stays open between bursts, so the first delivery after a quiet hour does
# not pay for a new connection.
MIN_POOL_SIZE = 1
# What a request may spend on the database. GitHub gives a delivery 10 s, then terminates the
# connection and counts it failed (https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks#respond-within-10-seconds);
# 9 s leaves the rest for HTTP. A request waits at most DEFAULT_CONNECTION_WAIT_SECONDS for a
# connection, then runs one statement (the INSERT) bounded by STATEMENT_TIMEOUT_SECONDS:
# 3 + 4 = 7 s. So a stalled database gets an honest 503 instead of a timeout, and a hung
# request gives its connection back instead of holding it until the pool is exhausted.
REQUEST_DATABASE_BUDGET_SECONDS = 9.0
# How long a request waits for a connection before the relay answers 503. (The pool keeps
# trying to reconnect in the background, so it never fails faster than this while the
# database is down.) Connecting happens in the pool's workers, so CONNECT_TIMEOUT_SECONDS is
# not added to a request's time; it keeps a worker from hanging on a server that accepts
# TCP and never answers. libpq counts anything under 2 s as 2 s.
DEFAULT_CONNECTION_WAIT_SECONDS = 3.0
CONNECT_TIMEOUT_SECONDS = 3
# Server-side bounds on every statement of the relay's sessions (set when a connection is
# made). A lock wait (a migration, a VACUUM FULL, an operator's LOCK TABLE) fails first, with
# its own error (LockNotAvailable); anything else slow is cancelled at STATEMENT_TIMEOUT_SECONDS.
LOCK_TIMEOUT_SECONDS = 3.0
STATEMENT_TIMEOUT_SECONDS = 4.0
# The statement timeouts are the server's: a server that stops answering altogether (a network
# partition, a frozen host) never sends the cancellation. The kernel's TCP settings bound that
# case instead: unacknowledged data fails the socket after TCP_USER_TIMEOUT_MS, and an idle
# connection is probed after KEEPALIVE_IDLE_SECONDS, every KEEPALIVE_INTERVAL_SECONDS, given up
# after KEEPALIVE_COUNT probes (libpq's keepalives_* and tcp_user_timeout parameters,
# https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS).
TCP_USER_TIMEOUT_MS = 5_000
KEEPALIVE_IDLE_SECONDS = 10
KEEPALIVE_INTERVAL_SECONDS = 2
KEEPALIVE_COUNT = 3
# /healthz: a load balancer's probe wants a quick answer; an exhausted pool is "degraded".
HEALTH_CHECK_WAIT_SECONDS = 2.0
POOL_NAME = "github-sync-relay"
DAG_RUN_ID_PREFIX = "webhook__"
# Hex characters of the batch digest in a dag_run_id: 64 bits, collisions are not a concern.
DAG_RUN_DIGEST_LENGTH = 16
# Error texts stored in the table are cut to this length (an HTML error page is not useful).
MAX_ERROR_LENGTH = 2_000


@dataclass(frozen=True)
class IncomingDelivery:
    """A verified delivery, ready to be stored.

    Attributes:
        delivery_id: ``X-GitHub-Delivery``.
        event: ``X-GitHub-Event``.
        action: The payload's ``action`` (None for ping and push).
        hook_id: ``X-GitHub-Hook-ID``.
        hook_target_type: ``X-GitHub-Hook-Installation-Target-Type`` (organization, repository...).
        repository_id: The payload's ``repository.id``, when it has one.
        repository: The payload's ``repository.full_name``, when it has one.
        payload: The payload, already made storable in ``jsonb``.
        status: ``pending`` (to forward) or ``ignored`` (an event the product does not handle).
    """

    delivery_id: str
    event: str
    action: str | None
    hook_id: str | None
    repository_id: int | None
    repository: str | None
    payload: Mapping[str, Any]
    status: str
    hook_target_type: str | None = None


@dataclass(frozen=True)
class ForwardBatch:
    """Deliveries that go to Airflow together, as one DAG run."""

    dag_run_id: str
    delivery_ids: tuple[str, ...]


def dag_run_id_for(delivery_ids: tuple[str, ...], first_received_at: datetime) -> str:
    """The deterministic DAG run id of a batch.

    ``webhook__<first delivery's received_at, UTC, microseconds>__<sha256 of the ids>[:16]``:
    readable (sorts by time in the Airflow UI), and the same for the same batch, which is what
    makes a retried trigger idempotent. Matches Airflow's default ``allowed_run_id_pattern``.

    Args:
        delivery_ids: The batch's delivery ids in order.
        first_received_at: When the oldest delivery of the batch was received (aware).

    Returns:
        The run id.
    """
    digest = hashlib.sha256("\n".join(delivery_ids).encode("utf-8")).hexdigest()[:DAG_RUN_DIGEST_LENGTH]
    if first_received_at.tzinfo is None:
        # timestamptz comes back aware; a naive value can only be UTC here.
        first_received_at = first_received_at.replace(tzinfo=UTC)
    stamp = first_received_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{DAG_RUN_ID_PREFIX}{stamp}Z__{digest}"


def _configure_session(conn: psycopg.Connection[Any]) -> None:
    # set_config, not SET: SET takes no bind parameters. Session-wide (is_local false), so
    # every transaction on the connection is bounded; committed so the pool gets it idle.
    conn.execute(
        "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
        (f"{round(STATEMENT_TIMEOUT_SECONDS * 1000)}ms", f"{round(LOCK_TIMEOUT_SECONDS * 1000)}ms"),
    )
    conn.commit()


class DeliveryCounts(TypedDict):
    """Durable counts of ``webhook_deliveries`` (``/stats``)."""

    by_status: dict[str, int]
    ignored_by_event: dict[str, int]
    pending_unassigned: int
    pending_assigned: int


class DeliveryStore:
    """The relay's view of ``webhook_deliveries``, on a pool of connections.

    Each method is one transaction on a connection lent by :class:`psycopg_pool.ConnectionPool`
    (committed on success, rolled back on error). A database that is down makes a method raise
    a :class:`psycopg.Error` (``PoolTimeout`` after ``connection_wait_seconds``), which the app
    turns into a 503; so does a stalled one (``LockNotAvailable`` after ``LOCK_TIMEOUT_SECONDS``,
    ``QueryCanceled`` after ``STATEMENT_TIMEOUT_SECONDS``).
    """

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        connection_wait_seconds: float = DEFAULT_CONNECTION_WAIT_SECONDS,
    ) -> None:
        self._pool = ConnectionPool(
            database_url,
            min_size=min(MIN_POOL_SIZE, pool_size),
            max_size=pool_size,
            kwargs={
                "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
                "keepalives": 1,
                "keepalives_idle": KEEPALIVE_IDLE_SECONDS,
                "keepalives_interval": KEEPALIVE_INTERVAL_SECONDS,
                "keepalives_count": KEEPALIVE_COUNT,
            },
            configure=_configure_session,
            # A connection broken while idle (a database restart) is replaced before it is
            # lent, instead of failing the request that gets it.
            check=ConnectionPool.check_connection,
            timeout=connection_wait_seconds,
            name=POOL_NAME,
            # Opened now without waiting for the database: a store made while the database
            # is down answers with errors (503) until it is reachable, then works.
            open=True,
        )

    def close(self) -> None:
        """Release the database connections (lent ones are closed when they come back)."""
        self._pool.close()

    def check(self) -> None:
        """Raise if the database cannot be reached (health check)."""
        with self._pool.connection(timeout=HEALTH_CHECK_WAIT_SECONDS) as conn:
            conn.execute("SELECT 1")

    def insert(self, delivery: IncomingDelivery) -> bool:
        """Store a delivery; return False when it was already stored (a redelivery).

        Raises:
            psycopg.Error: The database refused or could not be reached.
        """
        with self._pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO webhook_deliveries "
                "(delivery_id, event, action, hook_id, repository_id, repository, payload, status, hook_target_type) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s) "
                "ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id",
                (
                    delivery.delivery_id,
                    delivery.event,
                    delivery.action,
                    delivery.hook_id,
                    delivery.repository_id,
                    delivery.repository,
                    json.dumps(delivery.payload, ensure_ascii=False),
                    delivery.status,
                    delivery.hook_target_type,
                ),
            ).fetchone()
        return row is not None

    def unforwarded_batches(self) -> list[ForwardBatch]:
        """Batches that have a dag_run_id but were not confirmed by Airflow (oldest first).

        These are retried with their original run id and ids, so Airflow sees the same request.
        """
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT dag_run_id, array_agg(delivery_id ORDER BY received_at, delivery_id) "
                "FROM webhook_deliveries WHERE dag_run_id IN ("
                "  SELECT DISTINCT dag_run_id FROM webhook_deliveries "
                "  WHERE status = %s AND dag_run_id IS NOT NULL) "
                "GROUP BY dag_run_id ORDER BY min(received_at), dag_run_id",
                (STATUS_PENDING,),
            ).fetchall()
        return [ForwardBatch(dag_run_id=run_id, delivery_ids=tuple(ids)) for run_id, ids in rows]

    def database_time(self) -> datetime:
        """The database's clock (``received_at`` is set by it, so cut-offs must use it too)."""
        with self._pool.connection() as conn:
            row = conn.execute("SELECT clock_timestamp()").fetchone()
        if row is None:
            raise RuntimeError("SELECT clock_timestamp() returned no row")
        timestamp: datetime = row[0]
        return timestamp

    def assign_batch(self, max_ids: int, received_until: datetime | None = None) -> ForwardBatch | None:
        """Give the oldest unassigned pending deliveries (at most ``max_ids``) a dag_run_id.

        The assignment is committed before it is returned, i.e. before the trigger request.
        ``SKIP LOCKED`` lets two relays share the table without assigning a delivery twice.

        Args:
            max_ids: The most deliveries one batch takes.
            received_until: Only deliveries received up to then (database time); None for all.

        Returns:
            The new batch, or None when nothing is waiting.
        """
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT delivery_id, received_at FROM webhook_deliveries "
                "WHERE status = %s AND dag_run_id IS NULL AND (%s::timestamptz IS NULL OR received_at <= %s) "
                "ORDER BY received_at, delivery_id LIMIT %s FOR UPDATE SKIP LOCKED",
                (STATUS_PENDING, received_until, received_until, max_ids),
            ).fetchall()
            if not rows:
                return None
            ids = tuple(r[0] for r in rows)
            run_id = dag_run_id_for(ids, rows[0][1])
            conn.execute(
                "UPDATE webhook_deliveries SET dag_run_id = %s WHERE delivery_id = ANY(%s)",
                (run_id, list(ids)),
            )
        log.info("Assigned %d deliveries to DAG run %s", len(ids), run_id)
        return ForwardBatch(dag_run_id=run_id, delivery_ids=ids)

    def record_attempt(self, batch: ForwardBatch, error: str | None) -> None:
        """Count one trigger attempt of a batch and remember its error (None on success)."""
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, error = %s "
                "WHERE dag_run_id = %s AND status = %s",
                (error[:MAX_ERROR_LENGTH] if error else None, batch.dag_run_id, STATUS_PENDING),
            )

    def mark_forwarded(self, batch: ForwardBatch) -> int:
        """Mark a batch forwarded (only rows still pending: the DAG may already have processed them)."""
        with self._pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE webhook_deliveries SET status = %s, forwarded_at = now(), error = NULL "
                "WHERE dag_run_id = %s AND status = %s",
                (STATUS_FORWARDED, batch.dag_run_id, STATUS_PENDING),
            )
            return max(cursor.rowcount, 0)

    def mark_rejected(self, batch: ForwardBatch, error: str) -> None:
        """Fail a batch Airflow refused for good (so it does not block the ones behind it)."""
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET status = %s, error = %s WHERE dag_run_id = %s AND status = %s",
                (STATUS_FAILED, error[:MAX_ERROR_LENGTH], batch.dag_run_id, STATUS_PENDING),
            )

    def counts(self) -> DeliveryCounts:
        """Durable counts: deliveries per status, and ignored deliveries per event."""
        with self._pool.connection() as conn:
            by_status: dict[str, int] = {
                status: count
                for status, count in conn.execute(
                    "SELECT status, count(*) FROM webhook_deliveries GROUP BY status"
                ).fetchall()
            }
            ignored: dict[str, int] = {
                event: count
                for event, count in conn.execute(
                    "SELECT event, count(*) FROM webhook_deliveries WHERE status = %s GROUP BY event",
                    (STATUS_IGNORED,),
                ).fetchall()
            }
            waiting = conn.execute(
                "SELECT count(*) FILTER (WHERE dag_run_id IS NULL), "
                "count(*) FILTER (WHERE dag_run_id IS NOT NULL) "
                "FROM webhook_deliveries WHERE status = %s",
                (STATUS_PENDING,),
            ).fetchone()
        return {
            "by_status": by_status,
            "ignored_by_event": ignored,
            "pending_unassigned": waiting[0] if waiting else 0,
            "pending_assigned": waiting[1] if waiting else 0,
        }

    def in_flight_wait_left(self, max_wait_seconds: float) -> float:
        """Seconds until no webhook run counts as in flight any more; 0 when none does.

        A run is in flight while rows it was forwarded with are still ``forwarded`` (the DAG
        marks each one ``processed`` or ``failed``). Rows forwarded more than ``max_wait_seconds``
        ago no longer count: a run that never finishes (crashed, cleared, deleted) must not hold
        forwarding back. Read from the table alone, so every relay on the database gets the same
        answer, before and after a restart. Database time throughout (``forwarded_at`` is set by it).

        Args:
            max_wait_seconds: The ceiling; 0 or less means nothing is ever in flight.
        """
        if max_wait_seconds <= 0:
            return 0.0
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM max(forwarded_at) + make_interval(secs => %s) - clock_timestamp()) "
                "FROM webhook_deliveries WHERE status = %s AND forwarded_at > clock_timestamp() - make_interval(secs => %s)",
                (max_wait_seconds, STATUS_FORWARDED, max_wait_seconds),
            ).fetchone()
        if row is None or row[0] is None:
            return 0.0
        return max(float(row[0]), 0.0)
