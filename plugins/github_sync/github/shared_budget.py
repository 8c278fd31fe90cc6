"""The rate-limit budget of every credential in PostgreSQL, shared by every worker process.

GitHub counts a credential's primary budget and its secondary-limit pauses per account,
however many Celery workers use it. :class:`PostgresBudget` is the
:class:`~github_sync.github.budget.BudgetStore` that keeps that state in the target
database (migration 0004), so N workers together never spend below the reserve and all of
them honour a pause one of them saw:

* ``github_rate_limits``: the last window per (credential key, resource), newest wins;
* ``github_rate_limit_leases``: one row per admitted request not yet answered, counted as
  "in flight" only until it expires, so a worker killed between admission and answer does
  not hold its slot forever;
* ``github_credential_pauses``: the secondary-limit pause per credential key.

The admission rule itself is :func:`github_sync.github.ratelimit.budget_wait_until`; this
module only makes it atomic across processes (a row lock per (key, resource)). A database
failure is logged once per burst and the store answers from an :class:`InMemoryBudget` of
its own until the database is back (it reconnects on the next call): the hook keeps its
local budget and no request fails because the shared budget blipped.

It must not import Airflow, store a token (``credential_key`` is a non-secret key), send
requests, sleep for rate limits (it only polls briefly for answers in flight), or let a
database error escape.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from github_sync.github.budget import BudgetView, InMemoryBudget
from github_sync.github.lazy_connection import ConnectionFactory, LazyConnection, dsn_factory
from github_sync.github.ratelimit import (
    DEFAULT_RESERVE_FRACTION,
    IN_FLIGHT_WAIT_S,
    RateLimit,
    budget_wait_until,
)

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

T = TypeVar("T")

# A lease outlives its request by a wide margin (about 2x the hook's 60 s read timeout plus
# the retries' back-off) so a slow but live request is never forgotten, while a killed
# worker's slot comes back within a few minutes.
LEASE_S = 150.0
# Real-time interval between two looks at the budget while only requests in flight (of any
# worker) decide it: short next to a GitHub round trip, long next to one admission query.
IN_FLIGHT_POLL_S = 0.05
# A budget statement is a primary-key lookup; one that waits this long is stuck behind a
# lock and the request is better served by the local budget than held.
STATEMENT_TIMEOUT_MS = 5_000
# A worker frozen between the two round trips of an admission holds the row lock of its
# key; the server ends such a transaction after this long so the other workers go on.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000
# Connecting is on a request's path: a database that does not answer quickly is down.
CONNECT_TIMEOUT_S = 5
# How the store's connections show in pg_stat_activity (DSN connections only).
APPLICATION_NAME = "github-sync-budget"

RATE_LIMITS = "github_rate_limits"
LEASES = "github_rate_limit_leases"
PAUSES = "github_credential_pauses"

# The row every admission of a (key, resource) locks; created on first use.
_ENSURE_ROW_SQL = (
    f"INSERT INTO {RATE_LIMITS} (credential_key, resource) VALUES (%s, %s) ON CONFLICT DO NOTHING"
)
_LOCK_ROW_SQL = (
    f"SELECT window_limit, remaining, used, reset_at FROM {RATE_LIMITS}"
    " WHERE credential_key = %s AND resource = %s FOR UPDATE"
)
# Run after the lock is held: under READ COMMITTED this statement's snapshot includes the
# leases of every admission that held the lock before. Expired leases are purged on the way.
_COUNT_LEASES_SQL = f"""
WITH purged AS (
    DELETE FROM {LEASES}
     WHERE credential_key = %(key)s AND resource = %(resource)s AND expires_at <= now()
)
SELECT count(*) FROM {LEASES}
 WHERE credential_key = %(key)s AND resource = %(resource)s AND expires_at > now()
"""
# Lease expiry is on the database's clock: the workers' clocks need not agree.
_TAKE_LEASE_SQL = f"""
INSERT INTO {LEASES} (lease_id, credential_key, resource, holder, expires_at)
VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))
"""
_RELEASE_SQL = f"DELETE FROM {LEASES} WHERE lease_id = %s"
# Newest wins, as RateLimitTracker._is_newer: a later reset, or the same reset with fewer (or
# as many) remaining. Written in SQL so that a record is one statement.
_RECORD_SQL = f"""
INSERT INTO {RATE_LIMITS} AS cur (credential_key, resource, window_limit, remaining, used, reset_at)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (credential_key, resource) DO UPDATE SET
    window_limit = EXCLUDED.window_limit,
    remaining = EXCLUDED.remaining,
    used = EXCLUDED.used,
    reset_at = EXCLUDED.reset_at,
    updated_at = now()
WHERE cur.reset_at IS NULL
   OR EXCLUDED.reset_at > cur.reset_at
   OR (EXCLUDED.reset_at = cur.reset_at AND EXCLUDED.remaining <= cur.remaining)
"""
# As RateLimitTracker.mark_exhausted: 0 remaining until reset, keeping the known limit.
_EXHAUSTED_SQL = f"""
INSERT INTO {RATE_LIMITS} AS cur (credential_key, resource, window_limit, remaining, used, reset_at)
VALUES (%s, %s, 0, 0, 0, %s)
ON CONFLICT (credential_key, resource) DO UPDATE SET
    window_limit = coalesce(cur.window_limit, 0),
    remaining = 0,
    used = coalesce(cur.window_limit, 0),
    reset_at = EXCLUDED.reset_at,
    updated_at = now()
"""
_PAUSE_SQL = f"""
INSERT INTO {PAUSES} AS cur (credential_key, paused_until) VALUES (%s, %s)
ON CONFLICT (credential_key) DO UPDATE SET
    paused_until = greatest(cur.paused_until, EXCLUDED.paused_until),
    updated_at = now()
"""
_PAUSED_UNTIL_SQL = f"SELECT paused_until FROM {PAUSES} WHERE credential_key = %s"
_WINDOW_SQL = (
    f"SELECT resource, window_limit, remaining, used, reset_at FROM {RATE_LIMITS}"
    " WHERE credential_key = %s AND resource = %s AND reset_at IS NOT NULL"
)
_WINDOWS_SQL = (
    f"SELECT resource, window_limit, remaining, used, reset_at FROM {RATE_LIMITS}"
    " WHERE credential_key = %s AND reset_at IS NOT NULL"
)
# Every key's window, unexpired leases and pause in one statement.
_VIEWS_SQL = f"""
SELECT k.key, r.window_limit, r.remaining, r.used, r.reset_at,
       (SELECT count(*) FROM {LEASES} l
         WHERE l.credential_key = k.key AND l.resource = %(resource)s AND l.expires_at > now()),
       p.paused_until
  FROM unnest(%(keys)s::text[]) AS k(key)
  LEFT JOIN {RATE_LIMITS} r ON r.credential_key = k.key AND r.resource = %(resource)s
  LEFT JOIN {PAUSES} p ON p.credential_key = k.key
"""
# synchronous_commit off: the store commits three times per request, and waiting for each
# WAL flush was most of its cost (about 1.6 ms of 1.7 ms per request locally). A server crash
# can lose the last fraction of a second of budget state, which is harmless: a lost lease is
# a slot given back early by one request at most, a lost window is learned again from the
# next answer, and GitHub still refuses what is really spent.
_SESSION_SETTINGS_SQL = (
    "SELECT set_config('statement_timeout', %s, false),"
    " set_config('idle_in_transaction_session_timeout', %s, false),"
    " set_config('synchronous_commit', 'off', false)"
)


@dataclass(frozen=True)
class BudgetStoreStats:
    """What a :class:`PostgresBudget` cost so far (for benchmarks and tests).

    Attributes:
        statements: SQL statements sent (``BEGIN``/``COMMIT`` included).
        round_trips: waits for the server's answers (a pipeline of statements is one).
        fallbacks: calls answered by the in-memory budget because the database failed.
    """

    statements: int
    round_trips: int
    fallbacks: int


class _Batch:
    """Statements of one pipeline (or sent one by one), counted in the store's stats."""

    def __init__(
        self, store: PostgresBudget, conn: psycopg.Connection[Any], pipeline: psycopg.Pipeline | None
    ) -> None:
        self._store = store
        self._conn = conn
        self._pipeline = pipeline
        self._pending = False

    def execute(self, sql: str, params: Any) -> psycopg.Cursor[Any]:
        """Queue one statement (without a pipeline: send it and wait for its answer)."""
        if self._pipeline is None:
            return self._store._execute(self._conn, sql, params)
        self._store._statements += 1
        self._pending = True
        return self._conn.execute(sql, params)

    def sync(self) -> None:
        """Wait for the answers of every statement queued so far (one round trip)."""
        if self._pipeline is not None and self._pending:
            self._pipeline.sync()
            self._store._round_trips += 1
            self._pending = False


class _Failed(Exception):
    """The database part of a call failed (already logged); answer from the fallback."""


def _window(resource: str, limit: Any, remaining: Any, used: Any, reset: Any) -> RateLimit | None:
    if reset is None:
        return None
    return RateLimit(
        limit=int(limit),
        remaining=int(remaining),
        used=int(used),
        reset=reset.astimezone(UTC),
        resource=resource,
    )


def _apply_session_settings(conn: psycopg.Connection[Any]) -> None:
    conn.execute(_SESSION_SETTINGS_SQL, (f"{STATEMENT_TIMEOUT_MS}ms", f"{IDLE_IN_TRANSACTION_TIMEOUT_MS}ms"))


class PostgresBudget:
    """:class:`~github_sync.github.budget.BudgetStore` shared by every worker, in PostgreSQL.

    Thread-safe; one per process is enough (every hook of the process may share it). It uses
    one connection, opened lazily and used under a lock, in autocommit mode: an admission
    is one short transaction of its own (two round trips, pipelined), every other call one
    statement. Never part of the sync's transactions.

    On a database failure the call is answered by an :class:`InMemoryBudget` the store
    holds (a warning is logged once per burst of failures) and the next call reconnects.
    Windows, exhaustions and pauses are written to that fallback as well, so it knows what
    this process last saw when it takes over.
    """

    def __init__(
        self,
        connect: ConnectionFactory | str,
        *,
        lease_s: float = LEASE_S,
        fallback: InMemoryBudget | None = None,
    ) -> None:
        """Create the store; nothing is opened until the first call.

        Args:
            connect: a PostgreSQL DSN/URL, or a zero-argument callable returning a new
                psycopg connection (e.g. ``PostgresHook("postgres_default").get_conn``).
            lease_s: how long an admitted request counts as in flight without an answer.
            fallback: the budget used while the database fails (default: a new one).
        """
        self._connection = LazyConnection(
            dsn_factory(connect, connect_timeout=CONNECT_TIMEOUT_S, application_name=APPLICATION_NAME)
            if isinstance(connect, str)
            else connect,
            name="shared budget",
            on_open=_apply_session_settings,
        )
        self.lease_s = lease_s
        self._fallback = fallback if fallback is not None else InMemoryBudget()
        self._instance = uuid.uuid4().hex[:12]
        self._host = socket.gethostname()
        self._lock = threading.Lock()
        self._failing = False
        self._statements = 0
        self._round_trips = 0
        self._fallbacks = 0
        # The slots this instance holds, oldest first, per (key, resource): a lease id, or
        # None for a slot the fallback gave while the database failed. Any thread may give
        # back any slot of its (key, resource): they are interchangeable.
        self._slots_lock = threading.Lock()
        self._slots: dict[tuple[str, str], deque[uuid.UUID | None]] = {}

    def __repr__(self) -> str:
        # The DSN may hold a database password: never show it.
        return f"{type(self).__name__}()"

    @property
    def fallback(self) -> InMemoryBudget:
        """The in-memory budget that answers while the database fails."""
        return self._fallback

    @property
    def stats(self) -> BudgetStoreStats:
        """Statements and round trips sent so far, and calls that fell back."""
        with self._lock:
            return BudgetStoreStats(self._statements, self._round_trips, self._fallbacks)

    # ------------------------------------------------------------------ connection

    def _db(self, operation: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``operation`` on the connection under the lock; raise :class:`_Failed` on any error."""
        with self._lock:
            try:
                result = operation(self._connection.get())
            except Exception as exc:  # the shared budget must never fail a request
                self._fallbacks += 1
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "Shared rate-limit budget unavailable (%s: %s); using this process's own"
                        " budget until the database answers again",
                        type(exc).__name__,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                    )
                self._connection.drop()
                raise _Failed from exc
            if self._failing:
                self._failing = False
                log.info("Shared rate-limit budget available again")
            return result

    def _execute(self, conn: psycopg.Connection[Any], sql: str, params: Any) -> psycopg.Cursor[Any]:
        # Caller holds the lock: one statement on its own round trip.
        self._statements += 1
        self._round_trips += 1
        return conn.execute(sql, params)

    @contextmanager
    def _pipeline(self, conn: psycopg.Connection[Any]) -> Iterator[_Batch]:
        """Statements sent together, answered in one round trip per :meth:`_Batch.sync`.

        Without libpq pipeline support (libpq < 14) each statement is its own round trip.
        """
        import psycopg

        if not psycopg.Pipeline.is_supported():
            yield _Batch(self, conn, None)
            return
        with conn.pipeline() as pipeline:
            batch = _Batch(self, conn, pipeline)
            yield batch
            batch.sync()  # the pipeline would sync on exit anyway: count it

    # ------------------------------------------------------------------ slots

    def _push_slot(self, key: str, resource: str, slot: uuid.UUID | None) -> None:
        with self._slots_lock:
            self._slots.setdefault((key, resource), deque()).append(slot)

    def _pop_slot(self, key: str, resource: str) -> tuple[bool, uuid.UUID | None]:
        with self._slots_lock:
            slots = self._slots.get((key, resource))
            if not slots:
                return False, None
            return True, slots.popleft()

    # ------------------------------------------------------------------ BudgetStore

    def try_acquire(
        self,
        key: str,
        resource: str,
        *,
        now: datetime,
        reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
        in_flight_timeout_s: float = IN_FLIGHT_WAIT_S,
    ) -> datetime | None:
        """See :meth:`~github_sync.github.budget.BudgetStore.try_acquire`.

        Atomic across processes: the (key, resource) row is locked while the unexpired leases
        are counted and one is taken. ``now`` decides the window; lease expiry uses the
        database's clock. Polls every :data:`IN_FLIGHT_POLL_S` (real time) while only
        leases in flight stand between the budget and the reserve.
        """
        deadline = time.monotonic() + in_flight_timeout_s
        while True:
            try:
                wait_until, undecided = self._db(
                    lambda conn: self._acquire_once(conn, key, resource, now, reserve_fraction)
                )
            except _Failed:
                wait_until = self._fallback.try_acquire(
                    key,
                    resource,
                    now=now,
                    reserve_fraction=reserve_fraction,
                    in_flight_timeout_s=in_flight_timeout_s,
                )
                if wait_until is None:
                    self._push_slot(key, resource, None)
                return wait_until
            if wait_until is None or not undecided:
                return wait_until
            left = deadline - time.monotonic()
            if left <= 0:
                return wait_until
            # Undecided until answers in flight (of any worker) report the exact remaining count.
            time.sleep(min(IN_FLIGHT_POLL_S, left))

    def _acquire_once(
        self, conn: psycopg.Connection[Any], key: str, resource: str, now: datetime, reserve_fraction: float
    ) -> tuple[datetime | None, bool]:
        """One locked look at the budget; take a lease if it allows. Returns (wait_until, undecided)."""
        with self._pipeline(conn) as batch:
            batch.execute("BEGIN", None)
            batch.execute(_ENSURE_ROW_SQL, (key, resource))
            locked = batch.execute(_LOCK_ROW_SQL, (key, resource))
            counted = batch.execute(_COUNT_LEASES_SQL, {"key": key, "resource": resource})
            batch.sync()
            row = locked.fetchone()
            count_row = counted.fetchone()
            known = _window(resource, *row) if row is not None else None
            in_flight = int(count_row[0]) if count_row is not None else 0
            wait_until = budget_wait_until(
                known, now=now, reserve_fraction=reserve_fraction, in_flight=in_flight
            )
            lease_id: uuid.UUID | None = None
            if wait_until is None:
                lease_id = uuid.uuid4()
                holder = f"{self._host}:{os.getpid()}:{self._instance}"
                batch.execute(_TAKE_LEASE_SQL, (lease_id, key, resource, holder, self.lease_s))
            batch.execute("COMMIT", None)
        if lease_id is not None:
            self._push_slot(key, resource, lease_id)
            return None, False
        undecided = (
            in_flight > 0 and budget_wait_until(known, now=now, reserve_fraction=reserve_fraction) is None
        )
        return wait_until, undecided

    def record(self, key: str, rate_limit: RateLimit) -> None:
        """See :meth:`~github_sync.github.budget.BudgetStore.record` (one statement)."""
        self._fallback.record(key, rate_limit)
        params = (
            key,
            rate_limit.resource,
            rate_limit.limit,
            rate_limit.remaining,
            rate_limit.used,
            rate_limit.reset,
        )
        try:
            self._db(lambda conn: self._execute(conn, _RECORD_SQL, params))
        except _Failed:
            pass  # the fallback has it already

    def release(self, key: str, resource: str) -> None:
        """See :meth:`~github_sync.github.budget.BudgetStore.release` (one statement).

        Gives back the oldest slot this instance holds of ``key``'s ``resource``; a lease the
        database cannot delete now expires on its own.
        """
        held, slot = self._pop_slot(key, resource)
        if not held:
            return
        if slot is None:
            self._fallback.release(key, resource)
            return
        try:
            self._db(lambda conn: self._execute(conn, _RELEASE_SQL, (slot,)))
        except _Failed:
            pass  # the lease expires after lease_s

    def mark_exhausted(self, key: str, resource: str, reset: datetime) -> None:
        """See :meth:`~github_sync.github.budget.BudgetStore.mark_exhausted` (one statement)."""
        self._fallback.mark_exhausted(key, resource, reset)
        try:
            self._db(lambda conn: self._execute(conn, _EXHAUSTED_SQL, (key, resource, reset)))
        except _Failed:
            pass  # the fallback has it already

    def pause(self, key: str, until: datetime) -> None:
        """See :meth:`~github_sync.github.budget.BudgetStore.pause` (one statement; the later pause wins)."""
        self._fallback.pause(key, until)
        try:
            self._db(lambda conn: self._execute(conn, _PAUSE_SQL, (key, until)))
        except _Failed:
            pass  # the fallback has it already

    def paused_until(self, key: str) -> datetime | None:
        """See :meth:`~github_sync.github.budget.BudgetStore.paused_until`."""
        try:
            row = self._db(lambda conn: self._execute(conn, _PAUSED_UNTIL_SQL, (key,)).fetchone())
        except _Failed:
            return self._fallback.paused_until(key)
        return None if row is None else row[0].astimezone(UTC)

    def window(self, key: str, resource: str) -> RateLimit | None:
        """See :meth:`~github_sync.github.budget.BudgetStore.window`."""
        try:
            row = self._db(lambda conn: self._execute(conn, _WINDOW_SQL, (key, resource)).fetchone())
        except _Failed:
            return self._fallback.window(key, resource)
        return None if row is None else _window(*row)

    def windows(self, key: str) -> dict[str, RateLimit]:
        """See :meth:`~github_sync.github.budget.BudgetStore.windows`."""
        try:
            rows = self._db(lambda conn: self._execute(conn, _WINDOWS_SQL, (key,)).fetchall())
        except _Failed:
            return self._fallback.windows(key)
        return {window.resource: window for window in (_window(*row) for row in rows) if window is not None}

    def views(self, keys: Iterable[str], resource: str) -> dict[str, BudgetView]:
        """See :meth:`~github_sync.github.budget.BudgetStore.views` (one statement for every key)."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        params = {"keys": wanted, "resource": resource}
        try:
            rows = self._db(lambda conn: self._execute(conn, _VIEWS_SQL, params).fetchall())
        except _Failed:
            return self._fallback.views(wanted, resource)
        views: dict[str, BudgetView] = {}
        for key, limit, remaining, used, reset, in_flight, paused in rows:
            views[key] = BudgetView(
                window=_window(resource, limit, remaining, used, reset),
                in_flight=int(in_flight),
                paused_until=None if paused is None else paused.astimezone(UTC),
            )
        return views

    def close(self) -> None:
        """Close the connection (a later call opens a new one)."""
        with self._lock:
            self._connection.drop()
