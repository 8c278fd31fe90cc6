"""Missed-delivery recovery: ask GitHub again for the deliveries the relay never stored.

GitHub does not retry a failed delivery by itself. It keeps each hook's deliveries for 3 days
and lets the hook's owner list them and ask for a redelivery, which is sent with the same
``X-GitHub-Delivery`` GUID
(https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks,
https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries). At
start and every ``GITHUB_SYNC_RELAY_RECOVERY_INTERVAL_SECONDS``, for each hook of
``GITHUB_SYNC_RELAY_HOOKS``, the relay:

1. lists the hook's deliveries from :data:`RESCAN_OVERLAP` before the newest one it compared
   (GitHub's ``delivered_at``; the overlap catches an attempt listed late), never older than
   its first scan of the hook (what GitHub sent before the relay existed is not its business);
2. takes every GUID it has not stored whose latest attempt failed (no connection, a timeout,
   a 5xx) and asks GitHub to redeliver that attempt, unless it asked for that very attempt
   within :data:`REDELIVERY_PENDING_FOR`; each GUID at most :data:`MAX_REDELIVERY_REQUESTS`
   times, or until :data:`MAX_FAILED_REQUESTS` requests failed otherwise (a redelivery that
   fails is a new attempt, seen by the next scan);
3. if its previous scan is older than GitHub's retention, or the listing was longer than the
   client reads, deliveries may have expired or gone unread: it triggers
   ``github_incremental_sync`` of the hook's owner (or repository) through the Airflow API,
   with a run id derived from the gap (a retried trigger is a 409, not a second run), after
   the redeliveries and whatever the listing did, so that neither an Airflow outage nor a
   failing listing holds the other back.

A redelivered delivery arrives at ``POST /webhooks/github`` like any other and is stored once
(the GUID is the table's key), so recovery can never apply a delivery twice. Relays sharing a
database take a PostgreSQL advisory lock per hook, so one of them scans it at a time.

Owns the scan, its decisions (:func:`plan_redeliveries`, pure) and its state in
``webhook_recovery`` / ``webhook_redelivery_requests``. Must not: store or forward deliveries
(they come back through the app), or log a credential.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg

from github_sync.config import INCREMENTAL_SYNC_DAG_ID
from github_sync.webhooks.relay.airflow_api import ForwardError, TriggerOutcome
from github_sync.webhooks.relay.hook_deliveries import (
    DeliverySummary,
    HookDeliveriesError,
    HookDeliveriesUnavailableError,
    HookNotFoundError,
    HookTarget,
    ListingTruncatedError,
    RateLimitedError,
    RedeliveryRefusedError,
)

log = logging.getLogger(__name__)

# How long GitHub keeps a hook's deliveries (and so how long a redelivery is possible).
GITHUB_RETENTION = timedelta(days=3)
# A previous scan older than this may have missed deliveries that expired since: kept an hour
# inside GitHub's retention, for clock skew and for the length of a scan.
GAP_AFTER = GITHUB_RETENTION - timedelta(hours=1)
# The relay's answers that a redelivery of the same body would get again (a 404 or 405 comes
# from a proxy in front of it, during a deploy: worth another try).
PERMANENT_REFUSALS = frozenset({400, 413, 415, 422})
# Each scan lists again this far before the newest delivery it compared: GitHub may list an
# attempt that took long (up to its 10 s timeout) after a newer one.
RESCAN_OVERLAP = timedelta(minutes=5)
# A hook counts as failing (on /healthz) after this many failed scans in a row: one
# transient error (a GitHub 502) is not worth an alert.
FAILING_AFTER_SCANS = 2
# A GUID is asked for this many times at most (requests GitHub answered), or until this many
# requests failed otherwise; past that it is reported, not asked again.
MAX_REDELIVERY_REQUESTS = 3
MAX_FAILED_REQUESTS = 5
# An attempt asked for is not asked for again before this: GitHub makes the redelivery within
# seconds, and a failed one is a newer attempt. Past it (GitHub accepted and never sent it), asked again.
REDELIVERY_PENDING_FOR = timedelta(minutes=15)
CONNECT_TIMEOUT_SECONDS = 5
# A server that stops answering mid-scan (a partition) fails the socket instead of hanging it.
TCP_USER_TIMEOUT_MS = 10_000
# Statements of a scan are small; a stalled database must not stall the scan for ever.
STATEMENT_TIMEOUT_MS = 5_000
RECOVERY_RUN_ID_PREFIX = "recovery__"
LOCK_NAMESPACE = "github-sync-relay recovery "


class DeliveriesApi(Protocol):
    """What recovery needs of GitHub (:class:`~github_sync.webhooks.relay.hook_deliveries.HookDeliveriesClient`)."""

    def recent_deliveries(
        self, target: HookTarget, since: datetime | None = None
    ) -> Iterable[DeliverySummary]:
        """The hook's deliveries, newest first, down to ``since``."""
        ...

    def redeliver(self, target: HookTarget, delivery_id: int) -> None:
        """Ask GitHub to send delivery ``delivery_id`` again."""
        ...


class RunTrigger(Protocol):
    """What recovery needs of Airflow (:class:`~github_sync.webhooks.relay.airflow_api.AirflowClient`)."""

    def trigger_run(self, dag_id: str, dag_run_id: str, conf: dict[str, Any]) -> TriggerOutcome:
        """Create a DAG run (EXISTS when one with that id exists)."""
        ...


@dataclass(frozen=True)
class HookState:
    """How far a hook's deliveries have been compared (a row of ``webhook_recovery``)."""

    compare_from: datetime
    compared_through: datetime | None
    hook_id: int | None
    last_scan_at: datetime
    gap_since: datetime | None

    def listing_floor(self) -> datetime:
        """The oldest ``delivered_at`` this scan lists down to."""
        if self.compared_through is None:
            return self.compare_from
        return max(self.compare_from, self.compared_through - RESCAN_OVERLAP)


@dataclass(frozen=True)
class RedeliveryRequest:
    """What was asked for a GUID already (a row of ``webhook_redelivery_requests``)."""

    requests: int
    last_requested_id: int
    failures: int = 0
    # Whether the last request is recent (within REDELIVERY_PENDING_FOR, on the database's clock).
    pending: bool = True

    @property
    def exhausted(self) -> bool:
        """Whether the GUID may not be asked for again."""
        return self.requests >= MAX_REDELIVERY_REQUESTS or self.failures >= MAX_FAILED_REQUESTS


@dataclass(frozen=True)
class RedeliveryPlan:
    """What one scan decided for the deliveries it listed."""

    # The latest attempt of each missing GUID, to redeliver (oldest first).
    redeliver: list[DeliverySummary]
    # The latest attempts of GUIDs still missing after MAX_REDELIVERY_REQUESTS requests.
    given_up: list[DeliverySummary]
    # The newest delivered_at listed (None when nothing was).
    compared_through: datetime | None


def worth_redelivering(delivery: DeliverySummary) -> bool:
    """Whether asking for ``delivery`` again can get it stored.

    A delivery GitHub calls OK was answered 2xx, which the relay only does once the row is
    committed (a GUID GitHub delivered OK and the table lacks was stored and since pruned).
    Answers that the same body gets again (400, 413...) are not worth a redelivery either;
    everything else (no connection, a timeout, 5xx, 401 while the secret was being fixed) is.
    """
    return not delivery.ok and delivery.status_code not in PERMANENT_REFUSALS


def plan_redeliveries(
    listed: Sequence[DeliverySummary], stored: set[str], asked: Mapping[str, RedeliveryRequest]
) -> RedeliveryPlan:
    """Decide which listed deliveries to ask for again. Pure.

    Args:
        listed: The deliveries listed (any order; several attempts of a GUID).
        stored: The GUIDs among them the relay has stored.
        asked: What was asked for each GUID already.

    Returns:
        The plan: the latest attempt of every GUID that is neither stored nor delivered OK,
        unless that attempt was asked for recently (its redelivery is on its way; a failed one
        is a newer attempt) or the GUID was asked for too often (RedeliveryRequest.exhausted).
    """
    latest: dict[str, DeliverySummary] = {}
    for delivery in listed:
        current = latest.get(delivery.guid)
        if current is None or delivery.id > current.id:
            latest[delivery.guid] = delivery
    redeliver: list[DeliverySummary] = []
    given_up: list[DeliverySummary] = []
    for guid, delivery in sorted(latest.items(), key=lambda item: item[1].id):
        if guid in stored or not worth_redelivering(delivery):
            continue
        previous = asked.get(guid)
        if previous is not None and previous.last_requested_id >= delivery.id and previous.pending:
            continue
        if previous is not None and previous.exhausted:
            given_up.append(delivery)
        else:
            redeliver.append(delivery)
    newest = max((d.delivered_at for d in listed), default=None)
    return RedeliveryPlan(redeliver=redeliver, given_up=given_up, compared_through=newest)


def recovery_run_id(target: HookTarget, gap_since: datetime) -> str:
    """The deterministic run id of the incremental sync covering the gap after ``gap_since``."""
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:12]
    stamp = gap_since.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{RECOVERY_RUN_ID_PREFIX}{stamp}Z__{digest}"


def sync_conf(target: HookTarget) -> dict[str, Any]:
    """The incremental sync's conf for a gap in ``target``'s deliveries."""
    if target.kind == "org":
        return {"owners": [target.owner]}
    if target.kind == "repo":
        return {"owners": [target.owner], "repos": [target.repo]}
    # The App's hook covers every installation: the DAG's configured owners.
    return {}


@dataclass
class TargetStats:
    """What recovery did for one hook since the relay started (``/stats``)."""

    scans: int = 0
    # Redeliveries GitHub accepted (202), refused for good, or failed otherwise.
    redeliveries_requested: int = 0
    redeliveries_refused: int = 0
    redeliveries_failed: int = 0
    given_up: int = 0
    # The hook id being listed (None while a hook configured without one has sent nothing yet).
    hook_id: int | None = None
    syncs_triggered: int = 0
    last_scan_at: str | None = None
    consecutive_failures: int = 0
    # The kind of the last failure (no URL, no credential); None after a good scan.
    last_error: str | None = None


@dataclass
class RecoveryStats:
    """Per hook, keyed by the hook as ``GITHUB_SYNC_RELAY_HOOKS`` writes it."""

    targets: dict[str, TargetStats] = field(default_factory=dict)

    @property
    def failing(self) -> bool:
        """Whether some hook's last FAILING_AFTER_SCANS scans failed."""
        return any(stats.consecutive_failures >= FAILING_AFTER_SCANS for stats in self.targets.values())


_STATE_COLUMNS = "compare_from, compared_through, hook_id, last_scan_at, gap_since"


class RecoveryLedger:
    """The recovery's SQL: its state tables, and which GUIDs ``webhook_deliveries`` holds.

    One connection per scan (not the request pool: a scan holds its advisory lock while it
    talks to GitHub, which may take a while). Autocommit: each write stands on its own, so a
    scan cut short keeps what it did.
    """

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url

    def connect(self) -> psycopg.Connection[Any]:
        """A connection for one scan, autocommit, with bounded connect and statement times."""
        return psycopg.connect(
            self._database_url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            tcp_user_timeout=TCP_USER_TIMEOUT_MS,
            keepalives=1,
        )

    @staticmethod
    def try_lock(conn: psycopg.Connection[Any], target: HookTarget) -> bool:
        """Take the hook's advisory lock for this session; False when another relay has it."""
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (LOCK_NAMESPACE + str(target),)
        ).fetchone()
        return bool(row and row[0])

    @staticmethod
    def state(conn: psycopg.Connection[Any], target: HookTarget) -> HookState:
        """The hook's state; the first scan records it (compare what GitHub sends from now on)."""
        row = conn.execute(
            f"SELECT {_STATE_COLUMNS} FROM webhook_recovery WHERE target = %s", (str(target),)
        ).fetchone()
        if row is None:
            row = conn.execute(
                # compare_from a little in the past: GitHub's clock and the database's may differ.
                "INSERT INTO webhook_recovery (target, compare_from, last_scan_at) "
                "VALUES (%s, now() - make_interval(secs => %s), now()) "
                f"ON CONFLICT (target) DO UPDATE SET target = EXCLUDED.target RETURNING {_STATE_COLUMNS}",
                (str(target), RESCAN_OVERLAP.total_seconds()),
            ).fetchone()
            assert row is not None
            log.info("Recovery of %s: first scan, comparing deliveries from now on", target)
        return HookState(row[0], row[1], None if row[2] is None else int(row[2]), row[3], row[4])

    @staticmethod
    def gap_found(conn: psycopg.Connection[Any], target: HookTarget, since: datetime) -> None:
        """Record that deliveries after ``since`` may be lost (until the gap's sync is triggered)."""
        conn.execute(
            "UPDATE webhook_recovery SET gap_since = coalesce(gap_since, %s) WHERE target = %s",
            (since, str(target)),
        )

    @staticmethod
    def gap_closed(conn: psycopg.Connection[Any], target: HookTarget, *, triggered: bool) -> None:
        """Forget the gap: its sync is triggered (or was, by an earlier attempt: 409); it covers until now."""
        conn.execute(
            "UPDATE webhook_recovery SET gap_since = NULL, last_scan_at = now(), "
            "syncs_triggered = syncs_triggered + %s WHERE target = %s",
            (1 if triggered else 0, str(target)),
        )

    @staticmethod
    def database_now(conn: psycopg.Connection[Any]) -> datetime:
        """The database's clock (the relay's own times are on it)."""
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]

    @staticmethod
    def discover_hook_id(conn: psycopg.Connection[Any], target: HookTarget) -> int | None:
        """The ``X-GitHub-Hook-ID`` of the latest stored delivery from ``target``'s kind of hook, kept from now on.

        Kept (``webhook_recovery.hook_id``) so that a later delivery with another id, a second
        hook or a replayed body with a forged header, cannot move the recovery elsewhere.
        """
        if target.kind == "org":
            where, name = "lower(payload->'organization'->>'login') = lower(%s)", target.owner
        else:
            where, name = "lower(repository) = lower(%s)", f"{target.owner}/{target.repo}"
        row = conn.execute(
            "SELECT hook_id FROM webhook_deliveries WHERE hook_target_type = %s AND hook_id ~ '^[0-9]{1,18}$' "
            f"AND {where} ORDER BY received_at DESC LIMIT 1",
            (target.installation_target_type, name),
        ).fetchone()
        if row is None or int(row[0]) <= 0:
            return None
        hook_id = int(row[0])
        conn.execute("UPDATE webhook_recovery SET hook_id = %s WHERE target = %s", (hook_id, str(target)))
        log.info("Recovery of %s: the hook's id is %d (from its deliveries)", target, hook_id)
        return hook_id

    @staticmethod
    def forget_hook_id(conn: psycopg.Connection[Any], target: HookTarget) -> None:
        """Drop a discovered hook id GitHub no longer knows (the hook was recreated): found again later."""
        conn.execute("UPDATE webhook_recovery SET hook_id = NULL WHERE target = %s", (str(target),))

    @staticmethod
    def stored_guids(conn: psycopg.Connection[Any], guids: Sequence[str]) -> set[str]:
        """The GUIDs among ``guids`` that ``webhook_deliveries`` holds."""
        if not guids:
            return set()
        rows = conn.execute(
            "SELECT delivery_id FROM webhook_deliveries WHERE delivery_id = ANY(%s)", (list(guids),)
        ).fetchall()
        return {row[0] for row in rows}

    @staticmethod
    def requests_made(
        conn: psycopg.Connection[Any], target: HookTarget, guids: Sequence[str]
    ) -> dict[str, RedeliveryRequest]:
        """What was asked for each of ``guids`` already."""
        if not guids:
            return {}
        rows = conn.execute(
            "SELECT delivery_guid, requests, last_requested_id, failures, "
            "requested_at > now() - make_interval(secs => %s) FROM webhook_redelivery_requests "
            "WHERE target = %s AND delivery_guid = ANY(%s)",
            (REDELIVERY_PENDING_FOR.total_seconds(), str(target), list(guids)),
        ).fetchall()
        return {
            row[0]: RedeliveryRequest(int(row[1]), int(row[2]), int(row[3]), bool(row[4])) for row in rows
        }

    @staticmethod
    def record_request(conn: psycopg.Connection[Any], target: HookTarget, delivery: DeliverySummary) -> None:
        """Count one redelivery request of ``delivery``'s GUID (made, and accepted or refused by GitHub)."""
        conn.execute(
            "INSERT INTO webhook_redelivery_requests (target, delivery_guid, requests, last_requested_id) "
            "VALUES (%s, %s, 1, %s) "
            "ON CONFLICT (target, delivery_guid) DO UPDATE SET requests = webhook_redelivery_requests.requests + 1, "
            "last_requested_id = EXCLUDED.last_requested_id, requested_at = now()",
            (str(target), delivery.guid, delivery.id),
        )
        conn.execute(
            "UPDATE webhook_recovery SET redeliveries_requested = redeliveries_requested + 1 WHERE target = %s",
            (str(target),),
        )

    @staticmethod
    def record_failure(conn: psycopg.Connection[Any], target: HookTarget, delivery: DeliverySummary) -> None:
        """Count one redelivery request of ``delivery``'s GUID that failed (the same attempt is asked for again)."""
        conn.execute(
            "INSERT INTO webhook_redelivery_requests (target, delivery_guid, failures) VALUES (%s, %s, 1) "
            "ON CONFLICT (target, delivery_guid) DO UPDATE SET failures = webhook_redelivery_requests.failures + 1",
            (str(target), delivery.guid),
        )

    @staticmethod
    def mark_given_up(conn: psycopg.Connection[Any], target: HookTarget, delivery: DeliverySummary) -> None:
        """Remember that ``delivery``'s GUID was given up at this attempt (reported once, not per scan)."""
        conn.execute(
            "UPDATE webhook_redelivery_requests SET last_requested_id = %s, requested_at = 'infinity' "
            "WHERE target = %s AND delivery_guid = %s",
            (delivery.id, str(target), delivery.guid),
        )

    @staticmethod
    def finish(conn: psycopg.Connection[Any], target: HookTarget, compared_through: datetime | None) -> None:
        """Record a completed scan."""
        conn.execute(
            "UPDATE webhook_recovery SET compared_through = greatest(compared_through, %s), "
            "last_scan_at = now(), last_error = NULL WHERE target = %s",
            (compared_through, str(target)),
        )

    @staticmethod
    def fail(conn: psycopg.Connection[Any], target: HookTarget, error: str) -> None:
        """Record why a scan failed (its state stays, so the next scan resumes from it)."""
        conn.execute("UPDATE webhook_recovery SET last_error = %s WHERE target = %s", (error, str(target)))


class Recovery:
    """Scans the configured hooks at start and then every ``interval_seconds``, on a thread of its own."""

    def __init__(
        self,
        ledger: RecoveryLedger,
        github: DeliveriesApi,
        airflow: RunTrigger,
        targets: Sequence[HookTarget],
        *,
        interval_seconds: float,
    ) -> None:
        """Scan ``targets`` through ``github``; a gap's sync goes through ``airflow``; state in ``ledger``."""
        self._ledger = ledger
        self._github = github
        self._airflow = airflow
        self._targets = list(targets)
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = RecoveryStats({str(t): TargetStats() for t in self._targets})

    def start(self) -> None:
        """Start the thread; its first scan is at once."""
        if self._thread is not None or not self._targets:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="github-sync-relay-recovery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (a scan in progress finishes its current request first)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def scan_now(self) -> None:
        """Wake the thread for a scan (tests, and an operator's nudge)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.scan_all()
            self._wake.wait(self._interval)
            self._wake.clear()

    def scan_all(self) -> None:
        """Scan every hook once; a failing hook does not keep the others from their scan."""
        for target in self._targets:
            if self._stop.is_set():
                return
            self.scan(target)

    def scan(self, target: HookTarget) -> None:
        """Scan one hook: compare, redeliver, fall back to a sync for a gap. Never raises."""
        stats = self.stats.targets.setdefault(str(target), TargetStats())
        try:
            with self._ledger.connect() as conn:
                if not self._ledger.try_lock(conn, target):
                    log.info("Recovery of %s: another relay is scanning it", target)
                    return
                try:
                    self._scan_locked(conn, target, stats)
                except psycopg.Error:
                    raise
                except Exception as exc:  # the thread must outlive any one scan
                    self._failed(stats, self._describe(target, exc))
                    self._record_scan_error(conn, target, exc)
                    return
        except psycopg.Error as exc:
            self._failed(stats, f"database unavailable ({type(exc).__name__})")
            log.warning("Recovery of %s skipped: database unavailable (%s)", target, type(exc).__name__)
        except Exception as exc:  # the thread must outlive any one scan
            self._failed(stats, f"unexpected {type(exc).__name__}")
            log.error("Recovery of %s failed unexpectedly", target, exc_info=exc)

    def _record_scan_error(self, conn: psycopg.Connection[Any], target: HookTarget, exc: Exception) -> None:
        # The scan's failure is counted already: a database error here only loses its record.
        try:
            if isinstance(exc, HookNotFoundError) and not target.hook_id:
                self._ledger.forget_hook_id(conn, target)  # a recreated hook: found again later
            self._ledger.fail(conn, target, str(exc))
        except psycopg.Error as db_exc:
            log.warning(
                "Recovery of %s: could not record the scan's failure (%s)", target, type(db_exc).__name__
            )

    @staticmethod
    def _failed(stats: TargetStats, summary: str) -> None:
        stats.consecutive_failures += 1
        stats.last_error = summary

    def _scan_locked(self, conn: psycopg.Connection[Any], target: HookTarget, stats: TargetStats) -> None:
        # The state is the configured hook's ("org:acme" when its id comes from the deliveries),
        # recorded at the first scan even before the id is known: what fails after it is recovered.
        state = self._ledger.state(conn, target)
        if state.gap_since is None and self._ledger.database_now(conn) - state.last_scan_at > GAP_AFTER:
            # Deliveries may have expired at GitHub before any scan saw them: a sync covers them.
            self._ledger.gap_found(conn, target, state.last_scan_at)
            state = replace(state, gap_since=state.last_scan_at)
        error: Exception | None = None
        try:
            if self._compare_and_redeliver(conn, target, state, stats) and state.gap_since is None:
                self._ledger.gap_found(conn, target, state.last_scan_at)
                state = replace(state, gap_since=state.last_scan_at)
        except psycopg.Error:
            raise
        except Exception as exc:  # re-raised below, after the gap's sync
            error = exc
        if state.gap_since is not None:
            # Whatever happened to the listing (a revoked token, a 404 for days is exactly when
            # the fallback matters), and after the redeliveries (an Airflow outage must not hold
            # them back). A failure leaves the gap recorded: the next scan tries again.
            try:
                self._trigger_sync(conn, target, state.gap_since, stats)
            except ForwardError as exc:
                error = error or exc
        if error is not None:
            raise error
        stats.scans += 1
        stats.consecutive_failures = 0
        stats.last_error = None
        stats.last_scan_at = datetime.now(UTC).isoformat()

    def _compare_and_redeliver(
        self, conn: psycopg.Connection[Any], target: HookTarget, state: HookState, stats: TargetStats
    ) -> bool:
        """List, compare and redeliver; True when the listing was cut short (a sync covers the rest)."""
        listing = self._listing_target(conn, target, state)
        stats.hook_id = listing.hook_id if listing is not None and listing.kind != "app" else None
        if listing is None:
            # Not finished: last_scan_at stays, so a hook that never delivers for 3 days gets its sync.
            return False
        listed: list[DeliverySummary] = []
        truncated = False
        try:
            listed.extend(self._github.recent_deliveries(listing, since=state.listing_floor()))
        except ListingTruncatedError as exc:
            # The newest deliveries were read and are compared; what is older goes to a sync.
            log.warning("Recovery of %s: %s; an incremental sync covers the rest", target, exc)
            truncated = True
        guids = sorted({d.guid for d in listed})
        plan = plan_redeliveries(
            listed, self._ledger.stored_guids(conn, guids), self._ledger.requests_made(conn, target, guids)
        )
        for delivery in plan.redeliver:
            self._redeliver(conn, target, listing, delivery, stats)
        for delivery in plan.given_up:
            log.error(
                "Recovery of %s: delivery %s is still missing after %d redeliveries; it is left to the "
                "scheduled incremental sync",
                target, delivery.guid, MAX_REDELIVERY_REQUESTS,
            )  # fmt: skip
            self._ledger.mark_given_up(conn, target, delivery)
        stats.given_up += len(plan.given_up)
        self._ledger.finish(conn, target, plan.compared_through)
        if listed:
            log.info(
                "Recovery of %s: %d deliveries listed, %d missing asked for again, %d given up",
                target, len(listed), len(plan.redeliver), len(plan.given_up),
            )  # fmt: skip
        return truncated

    def _redeliver(
        self,
        conn: psycopg.Connection[Any],
        target: HookTarget,
        listing: HookTarget,
        delivery: DeliverySummary,
        stats: TargetStats,
    ) -> None:
        """Ask for one delivery again; only a rate limit, an outage or a credential problem stops the scan."""
        try:
            self._github.redeliver(listing, delivery.id)
        except RedeliveryRefusedError as exc:
            # Answered for good (gone, refused): counted, and this attempt is not asked for again.
            log.warning("Recovery of %s: GitHub refused to redeliver %s: %s", target, delivery.guid, exc)
            stats.redeliveries_refused += 1
            self._ledger.record_request(conn, target, delivery)
        except RateLimitedError:
            raise  # costs the delivery nothing: asked for on the next scan
        except HookDeliveriesUnavailableError:
            # GitHub is failing: stop here, but count it, so one delivery cannot block the rest for ever.
            stats.redeliveries_failed += 1
            self._ledger.record_failure(conn, target, delivery)
            raise
        except HookDeliveriesError as exc:
            if exc.status in (401, 403):
                raise  # the credential: every other request would fail the same way
            log.warning("Recovery of %s: redelivery of %s failed: %s", target, delivery.guid, exc)
            stats.redeliveries_failed += 1
            self._ledger.record_failure(conn, target, delivery)
        else:
            stats.redeliveries_requested += 1
            self._ledger.record_request(conn, target, delivery)

    def _listing_target(
        self, conn: psycopg.Connection[Any], target: HookTarget, state: HookState
    ) -> HookTarget | None:
        """``target`` with its hook id (configured, kept, or discovered); None while it is unknown."""
        if target.kind == "app" or target.hook_id:
            return target
        hook_id = state.hook_id or self._ledger.discover_hook_id(conn, target)
        if hook_id is None:
            log.info("Recovery of %s: no delivery from this hook stored yet, so no hook id to list", target)
            return None
        return replace(target, hook_id=hook_id)

    def _trigger_sync(
        self, conn: psycopg.Connection[Any], target: HookTarget, gap_since: datetime, stats: TargetStats
    ) -> None:
        run_id = recovery_run_id(target, gap_since)
        outcome = self._airflow.trigger_run(INCREMENTAL_SYNC_DAG_ID, run_id, sync_conf(target))
        created = outcome is TriggerOutcome.CREATED
        self._ledger.gap_closed(conn, target, triggered=created)
        if created:
            stats.syncs_triggered += 1
        log.warning(
            "Recovery of %s: deliveries since %s may be lost (GitHub keeps them 3 days); triggered %s run %s (%s)",
            target, gap_since.isoformat(), INCREMENTAL_SYNC_DAG_ID, run_id, outcome.value,
        )  # fmt: skip

    @staticmethod
    def _describe(target: HookTarget, exc: Exception) -> str:
        if isinstance(exc, HookNotFoundError):
            log.error(
                "Recovery of %s: GitHub answered 404: check the hook id and that the credential may "
                "administer the hook (a token with admin:org_hook / admin:repo_hook, or the App)",
                target,
            )
            return "hook not found or not administrable (404)"
        if isinstance(exc, RateLimitedError):
            log.warning("Recovery of %s: rate limited until %s; next scan then", target, exc.reset_at)
            return f"rate limited ({exc.status})"
        if isinstance(exc, ForwardError):
            log.warning("Recovery of %s: could not trigger the gap's sync: %s", target, exc)
            return exc.summary
        if isinstance(exc, HookDeliveriesError):
            log.warning("Recovery of %s failed: %s", target, exc)
            return f"GitHub request failed ({exc.status})" if exc.status else "GitHub unavailable"
        log.error("Recovery of %s failed unexpectedly", target, exc_info=exc)
        return f"unexpected {type(exc).__name__}"
