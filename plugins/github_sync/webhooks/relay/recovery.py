"""Missed-delivery recovery: ask GitHub again for the deliveries the relay never stored.

GitHub does not retry a failed delivery by itself. It keeps each hook's deliveries for 3 days
and lets the hook's owner list them and ask for a redelivery, which is sent with the same
``X-GitHub-Delivery`` GUID
(https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks,
https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries). At
start and every ``GITHUB_SYNC_RELAY_RECOVERY_INTERVAL_SECONDS``, for each hook of
``GITHUB_SYNC_RELAY_HOOKS``, the relay:

1. lists the hook's deliveries newer than the last one it compared (GitHub's delivery ids
   increase, so "newer" needs no clock agreement), never older than its first scan of the hook
   (what GitHub sent before the relay existed is not its business);
2. takes every GUID it has not stored (a failed attempt, or a "successful" one whose answer was
   a 503) and asks GitHub to redeliver its latest attempt, at most
   :data:`MAX_REDELIVERY_REQUESTS` times per GUID (a delivery that fails again is seen again,
   as its redelivery is a new attempt);
3. if its previous scan is older than GitHub's retention, deliveries may have expired unseen:
   it triggers ``github_incremental_sync`` of the hook's owner (or repository) through the
   Airflow API, with a run id derived from the gap, so a retried trigger is a 409, not a
   second run.

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
    HookNotFoundError,
    HookTarget,
    RateLimitedError,
    RedeliveryRefusedError,
)

log = logging.getLogger(__name__)

# How long GitHub keeps a hook's deliveries (and so how long a redelivery is possible).
GITHUB_RETENTION = timedelta(days=3)
# A previous scan older than this may have missed deliveries that expired since: kept an hour
# inside GitHub's retention, for clock skew and for the length of a scan.
GAP_AFTER = GITHUB_RETENTION - timedelta(hours=1)
# The relay's answers that a redelivery of the same body would get again.
PERMANENT_REFUSALS = frozenset({400, 404, 405, 413, 415, 422})
# A GUID is asked for this many times at most; past that it is reported, not asked again.
MAX_REDELIVERY_REQUESTS = 3
CONNECT_TIMEOUT_SECONDS = 5
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
    compared_through_id: int
    last_scan_at: datetime


@dataclass(frozen=True)
class RedeliveryPlan:
    """What one scan decided for the deliveries it listed."""

    # The latest attempt of each missing GUID, to redeliver (oldest first).
    redeliver: list[DeliverySummary]
    # GUIDs still missing after MAX_REDELIVERY_REQUESTS requests.
    given_up: list[str]
    # Every delivery up to this id has been compared.
    compared_through_id: int


def worth_redelivering(delivery: DeliverySummary) -> bool:
    """Whether asking for ``delivery`` again can get it stored.

    A delivery GitHub calls OK was answered 2xx, which the relay only does once the row is
    committed (a GUID GitHub delivered OK and the table lacks was stored and since pruned).
    Answers that the same body gets again (400, 413...) are not worth a redelivery either;
    everything else (no connection, a timeout, 5xx, 401 while the secret was being fixed) is.
    """
    return not delivery.ok and delivery.status_code not in PERMANENT_REFUSALS


def plan_redeliveries(
    listed: Sequence[DeliverySummary],
    stored: set[str],
    requests: Mapping[str, int],
    *,
    compared_through_id: int,
) -> RedeliveryPlan:
    """Decide which listed deliveries to ask for again. Pure.

    Args:
        listed: The deliveries listed since the last scan (any order; several attempts of a GUID).
        stored: The GUIDs among them the relay has stored.
        requests: How many times each GUID was asked for already.
        compared_through_id: The previous scan's high-water mark.

    Returns:
        The plan: the latest attempt of every GUID that is neither stored nor delivered OK.
    """
    latest: dict[str, DeliverySummary] = {}
    for delivery in listed:
        current = latest.get(delivery.guid)
        if current is None or delivery.id > current.id:
            latest[delivery.guid] = delivery
    redeliver: list[DeliverySummary] = []
    given_up: list[str] = []
    for guid, delivery in sorted(latest.items(), key=lambda item: item[1].id):
        if guid in stored or not worth_redelivering(delivery):
            continue
        if requests.get(guid, 0) >= MAX_REDELIVERY_REQUESTS:
            given_up.append(guid)
        else:
            redeliver.append(delivery)
    high_water = max([compared_through_id, *(d.id for d in listed)])
    return RedeliveryPlan(redeliver=redeliver, given_up=given_up, compared_through_id=high_water)


def recovery_run_id(target: HookTarget, last_scan_at: datetime) -> str:
    """The deterministic run id of the incremental sync covering the gap after ``last_scan_at``."""
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:12]
    stamp = last_scan_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
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
    redeliveries_requested: int = 0
    given_up: int = 0
    syncs_triggered: int = 0
    last_scan_at: str | None = None
    # The kind of the last failure (no URL, no credential); None after a good scan.
    last_error: str | None = None


@dataclass
class RecoveryStats:
    """Per hook, keyed by the hook as ``GITHUB_SYNC_RELAY_HOOKS`` writes it."""

    targets: dict[str, TargetStats] = field(default_factory=dict)

    @property
    def failing(self) -> bool:
        """Whether the last scan of some hook failed."""
        return any(stats.last_error for stats in self.targets.values())


class RecoveryLedger:
    """The recovery's SQL: its state tables, and which GUIDs ``webhook_deliveries`` holds.

    One connection per scan (not the request pool: a scan holds its advisory lock while it
    talks to GitHub, which may take a while).
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
        )

    @staticmethod
    def try_lock(conn: psycopg.Connection[Any], target: HookTarget) -> bool:
        """Take the hook's advisory lock for this session; False when another relay has it."""
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (LOCK_NAMESPACE + str(target),)
        ).fetchone()
        return bool(row and row[0])

    @staticmethod
    def state(conn: psycopg.Connection[Any], target: HookTarget) -> HookState | None:
        """The hook's state, or None before its first scan."""
        row = conn.execute(
            "SELECT compare_from, compared_through_id, last_scan_at FROM webhook_recovery WHERE target = %s",
            (str(target),),
        ).fetchone()
        return HookState(row[0], int(row[1]), row[2]) if row else None

    @staticmethod
    def start(conn: psycopg.Connection[Any], target: HookTarget) -> HookState:
        """Record the first scan of a hook: compare what GitHub sends from now on."""
        row = conn.execute(
            "INSERT INTO webhook_recovery (target, compare_from, last_scan_at) VALUES (%s, now(), now()) "
            "ON CONFLICT (target) DO UPDATE SET target = EXCLUDED.target "
            "RETURNING compare_from, compared_through_id, last_scan_at",
            (str(target),),
        ).fetchone()
        assert row is not None
        return HookState(row[0], int(row[1]), row[2])

    @staticmethod
    def database_now(conn: psycopg.Connection[Any]) -> datetime:
        """The database's clock (every stored time is on it)."""
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]

    @staticmethod
    def hook_id_seen(conn: psycopg.Connection[Any], target: HookTarget) -> int | None:
        """The ``X-GitHub-Hook-ID`` of the latest stored delivery from ``target``'s hook, if any."""
        if target.kind == "org":
            where, name = "lower(payload->'organization'->>'login') = lower(%s)", target.owner
        else:
            where, name = "lower(repository) = lower(%s)", f"{target.owner}/{target.repo}"
        row = conn.execute(
            "SELECT hook_id FROM webhook_deliveries WHERE hook_target_type = %s AND hook_id ~ '^[0-9]{1,18}$' "
            f"AND {where} ORDER BY received_at DESC LIMIT 1",
            (target.installation_target_type, name),
        ).fetchone()
        return int(row[0]) if row and int(row[0]) > 0 else None

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
    ) -> dict[str, int]:
        """How many times each of ``guids`` was asked for already."""
        if not guids:
            return {}
        rows = conn.execute(
            "SELECT delivery_guid, requests FROM webhook_redelivery_requests "
            "WHERE target = %s AND delivery_guid = ANY(%s)",
            (str(target), list(guids)),
        ).fetchall()
        return {row[0]: int(row[1]) for row in rows}

    @staticmethod
    def record_request(conn: psycopg.Connection[Any], target: HookTarget, guid: str) -> None:
        """Count one redelivery request of ``guid`` (committed before the next one is made)."""
        conn.execute(
            "INSERT INTO webhook_redelivery_requests (target, delivery_guid) VALUES (%s, %s) "
            "ON CONFLICT (target, delivery_guid) DO UPDATE SET "
            "requests = webhook_redelivery_requests.requests + 1, requested_at = now()",
            (str(target), guid),
        )
        conn.execute(
            "UPDATE webhook_recovery SET redeliveries_requested = redeliveries_requested + 1 WHERE target = %s",
            (str(target),),
        )

    @staticmethod
    def finish(
        conn: psycopg.Connection[Any], target: HookTarget, compared_through_id: int, *, sync_triggered: bool
    ) -> None:
        """Record a completed scan."""
        conn.execute(
            "UPDATE webhook_recovery SET compared_through_id = greatest(compared_through_id, %s), "
            "last_scan_at = now(), last_error = NULL, syncs_triggered = syncs_triggered + %s WHERE target = %s",
            (compared_through_id, 1 if sync_triggered else 0, str(target)),
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
                except (HookDeliveriesError, ForwardError) as exc:
                    stats.last_error = self._describe(target, exc)
                    self._ledger.fail(conn, target, str(exc))
        except psycopg.Error as exc:
            stats.last_error = f"database unavailable ({type(exc).__name__})"
            log.warning("Recovery of %s skipped: database unavailable (%s)", target, type(exc).__name__)

    def _scan_locked(self, conn: psycopg.Connection[Any], configured: HookTarget, stats: TargetStats) -> None:
        # The state is the configured hook's ("org:acme" when its id comes from the deliveries),
        # started at the first scan even before the id is known: what fails after it is recovered.
        state = self._ledger.state(conn, configured)
        sync_triggered = False
        if state is None:
            state = self._ledger.start(conn, configured)
            log.info("Recovery of %s: first scan, comparing deliveries from now on", configured)
        elif self._ledger.database_now(conn) - state.last_scan_at > GAP_AFTER:
            # Deliveries may have expired at GitHub before any scan saw them: sync instead.
            sync_triggered = self._trigger_sync(configured, state)
        target = configured
        if target.kind != "app" and not target.hook_id:
            hook_id = self._ledger.hook_id_seen(conn, configured)
            if hook_id is None:
                log.info(
                    "Recovery of %s: no delivery from this hook stored yet, so no hook id to list", configured
                )
                self._ledger.finish(
                    conn, configured, state.compared_through_id, sync_triggered=sync_triggered
                )
                stats.last_error = None
                return
            target = replace(configured, hook_id=hook_id)
        listed: list[DeliverySummary] = []
        for delivery in self._github.recent_deliveries(target, since=state.compare_from):
            if delivery.id <= state.compared_through_id:
                break  # compared by an earlier scan (the listing is newest first)
            listed.append(delivery)
        guids = sorted({d.guid for d in listed})
        plan = plan_redeliveries(
            listed,
            self._ledger.stored_guids(conn, guids),
            self._ledger.requests_made(conn, configured, guids),
            compared_through_id=state.compared_through_id,
        )
        for delivery in plan.redeliver:
            # Counted before the request: a crash in between asks once more, never unboundedly.
            self._ledger.record_request(conn, configured, delivery.guid)
            try:
                self._github.redeliver(target, delivery.id)
            except RedeliveryRefusedError as exc:
                log.warning("Recovery of %s: GitHub refused to redeliver %s: %s", target, delivery.guid, exc)
                continue
            stats.redeliveries_requested += 1
        for guid in plan.given_up:
            log.error(
                "Recovery of %s: delivery %s is still missing after %d redeliveries; it is left to the "
                "scheduled incremental sync",
                target, guid, MAX_REDELIVERY_REQUESTS,
            )  # fmt: skip
        stats.given_up += len(plan.given_up)
        self._ledger.finish(conn, configured, plan.compared_through_id, sync_triggered=sync_triggered)
        stats.scans += 1
        stats.last_error = None
        stats.last_scan_at = datetime.now(UTC).isoformat()
        if plan.redeliver or listed:
            log.info(
                "Recovery of %s: %d deliveries listed, %d missing asked for again, %d given up",
                target, len(listed), len(plan.redeliver), len(plan.given_up),
            )  # fmt: skip

    def _trigger_sync(self, target: HookTarget, state: HookState) -> bool:
        run_id = recovery_run_id(target, state.last_scan_at)
        outcome = self._airflow.trigger_run(INCREMENTAL_SYNC_DAG_ID, run_id, sync_conf(target))
        log.warning(
            "Recovery of %s: last scan %s is older than GitHub keeps deliveries; triggered %s run %s (%s)",
            target, state.last_scan_at.isoformat(), INCREMENTAL_SYNC_DAG_ID, run_id, outcome.value,
        )  # fmt: skip
        created = outcome is TriggerOutcome.CREATED
        if created:
            self.stats.targets[str(target)].syncs_triggered += 1
        return created

    @staticmethod
    def _describe(target: HookTarget, exc: Exception) -> str:
        if isinstance(exc, HookNotFoundError):
            log.error(
                "Recovery of %s: GitHub answered 404: check the hook id and that the credential may "
                "administer the hook (a token with admin:org_hook / repository administration, or the App)",
                target,
            )
            return "hook not found or not administrable (404)"
        if isinstance(exc, RateLimitedError):
            log.warning("Recovery of %s: rate limited until %s; next scan then", target, exc.reset_at)
            return f"rate limited ({exc.status})"
        if isinstance(exc, ForwardError):
            log.warning("Recovery of %s: could not trigger the gap's sync: %s", target, exc)
            return exc.summary
        log.warning("Recovery of %s failed: %s", target, exc)
        status = getattr(exc, "status", None)
        return f"GitHub request failed ({status})" if status else f"GitHub unavailable ({type(exc).__name__})"
