"""The relay's ASGI app: ``POST /webhooks/github``, ``GET /healthz``, ``GET /readyz``, and the admin routes.

Order of checks on a delivery, cheapest and least trusting first, so that a request that
cannot be valid is refused before its body is read: the declared size (413), the form of the
signature header (401), the event and delivery headers (400); then the body streams through
the signature check under a deadline (408 when too slow, 413 when too long, 401 when it does
not match, see :mod:`github_sync.webhooks.relay.body`), is decoded (400), and is committed to
PostgreSQL; the answer is 202 (503 when it cannot be stored). Nothing is stored for a
rejected request. A refusal sent before the body was read closes the connection, so the
client cannot keep streaming into it.

``/healthz`` says whether the relay works end to end (database, forwarder, forwarding to
Airflow), ``/readyz`` only whether it can accept deliveries (for a load balancer: an Airflow
outage must not take every relay out of rotation, the deliveries are stored meanwhile).
``/stats`` and ``/openapi.json`` need ``GITHUB_SYNC_RELAY_ADMIN_TOKEN`` as a bearer token and
do not exist (404) when it is unset. No route shows the Airflow URL or Airflow's answers.

Owns the HTTP contract with GitHub and the relay's lifespan (forwarder thread, pool). Must
not: wait for Airflow (forwarding happens later, in the forwarder thread, so GitHub's 10 s
window holds whatever state Airflow is in), answer 202 before the delivery is committed, or
log the secret or a payload.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import threading
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from github_sync.webhooks.relay.airflow_api import AirflowClient
from github_sync.webhooks.relay.body import BodyTimeoutError, BodyTooLargeError, read_signed_body
from github_sync.webhooks.relay.forwarder import Forwarder
from github_sync.webhooks.relay.payload import UnstorableDeliveryError, build_delivery, parse_payload
from github_sync.webhooks.relay.recovery import Recovery, RecoveryLedger
from github_sync.webhooks.relay.settings import RelaySettings
from github_sync.webhooks.relay.signature import SIGNATURE_HEADER, SignatureCheck, SignatureError
from github_sync.webhooks.relay.store import REQUEST_DATABASE_BUDGET_SECONDS, STATUS_IGNORED, DeliveryStore

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/github"
# GitHub caps payloads at 25 MB; anything larger is not from GitHub.
MAX_BODY_BYTES = 25 * 1024 * 1024
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
HOOK_ID_HEADER = "X-GitHub-Hook-ID"
HOOK_TARGET_TYPE_HEADER = "X-GitHub-Hook-Installation-Target-Type"
# organization, repository, integration, business...: a word, or the header is not kept.
HOOK_TARGET_TYPE_PATTERN = re.compile(r"^[a-z_]{1,32}$")
# GitHub's delivery ids are GUIDs; allow a little more, but nothing that is not an identifier.
DELIVERY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
EVENT_PATTERN = re.compile(r"^[a-z_]{1,64}$")
# /readyz and /healthz answer within this, whatever the database does.
HEALTH_CHECK_TIMEOUT_SECONDS = 3.0
# Sent with every refusal made before the body was read.
CLOSE_CONNECTION = {"Connection": "close"}


def _error(status: int, message: str, *, close: bool = False) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"detail": message}, headers=CLOSE_CONNECTION if close else None
    )


def _hook_target_type(header: str | None) -> str | None:
    value = (header or "").strip().lower()
    return value if HOOK_TARGET_TYPE_PATTERN.match(value) else None


class RelayCounters:
    """In-process counters since start (the durable ones come from the table)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._ignored: Counter[str] = Counter()

    def add(self, name: str, event: str | None = None) -> None:
        """Count one request outcome (and the event, for ignored deliveries)."""
        with self._lock:
            self._counts[name] += 1
            if name == "ignored" and event:
                self._ignored[event] += 1

    def snapshot(self) -> dict[str, Any]:
        """A copy for /stats."""
        with self._lock:
            return {**dict(self._counts), "ignored_by_event": dict(self._ignored)}


def build_forwarder(settings: RelaySettings, store: DeliveryStore) -> Forwarder:
    """The forwarder of a relay configured by ``settings``."""
    client = AirflowClient(
        settings.airflow_api_url, settings.airflow_username, settings.airflow_password_value()
    )
    return Forwarder(
        store, client, coalesce_seconds=settings.coalesce_seconds, max_ids_per_run=settings.max_ids_per_run
    )


def build_recovery(settings: RelaySettings) -> Recovery | None:
    """The missed-delivery recovery of a relay configured by ``settings`` (None: no hook named)."""
    github = settings.hook_deliveries_client()
    if github is None:
        return None
    # A client of its own: the forwarder's session is used from the forwarder's thread only.
    airflow = AirflowClient(
        settings.airflow_api_url, settings.airflow_username, settings.airflow_password_value()
    )
    return Recovery(
        RecoveryLedger(settings.database_url),
        github,
        airflow,
        settings.hook_targets(),
        interval_seconds=settings.recovery_interval_seconds,
    )


def create_app(
    settings: RelaySettings,
    *,
    store: DeliveryStore | None = None,
    forwarder: Forwarder | None = None,
    recovery: Recovery | None = None,
) -> FastAPI:
    """Build the relay app; the forwarder runs for the app's lifespan.

    Args:
        settings: The validated settings (the secret is used, never logged).
        store: The delivery store (one on ``settings.database_url`` when None).
        forwarder: The forwarder (one built from ``settings`` when None).
        recovery: The missed-delivery recovery (one built from ``settings`` when None; none
            runs when ``settings`` names no hook).

    Returns:
        The FastAPI app.
    """
    store = store or DeliveryStore(settings.database_url)
    forwarder = forwarder or build_forwarder(settings, store)
    recovery = recovery or build_recovery(settings)
    counters = RelayCounters()
    secret = settings.webhook_secret.get_secret_value().encode("utf-8")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        forwarder.start()
        if recovery is not None:
            recovery.start()
        log.info("Relay ready: forwarding to %s (coalescing %.1f s, at most %d ids per run)",
                 settings.airflow_api_url, settings.coalesce_seconds, settings.max_ids_per_run)  # fmt: skip
        try:
            yield
        finally:
            if recovery is not None:
                recovery.stop()
            forwarder.stop()
            store.close()

    app = FastAPI(
        title="github-sync webhook relay", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.store = store
    app.state.forwarder = forwarder
    app.state.counters = counters
    app.state.recovery = recovery

    @app.post(WEBHOOK_PATH, status_code=202)
    async def receive(request: Request) -> JSONResponse:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                counters.add("rejected_malformed")
                return _error(400, "Content-Length is not a number", close=True)
            if int(length) > MAX_BODY_BYTES:
                counters.add("rejected_too_large")
                return _error(413, f"payload larger than GitHub's cap of {MAX_BODY_BYTES} bytes", close=True)
        peer = request.client.host if request.client else "?"
        try:
            check = SignatureCheck(secret, request.headers.get(SIGNATURE_HEADER))
        except SignatureError as exc:
            counters.add("rejected_signature")
            log.warning("Rejected a delivery from %s: %s", peer, exc)
            return _error(401, str(exc), close=True)
        event = (request.headers.get(EVENT_HEADER) or "").strip()
        delivery_id = (request.headers.get(DELIVERY_HEADER) or "").strip()
        if not event or not EVENT_PATTERN.match(event):
            counters.add("rejected_malformed")
            return _error(400, f"missing or malformed {EVENT_HEADER} header", close=True)
        if not delivery_id or not DELIVERY_ID_PATTERN.match(delivery_id):
            counters.add("rejected_malformed")
            return _error(400, f"missing or malformed {DELIVERY_HEADER} header (a GUID)", close=True)
        try:
            body = await read_signed_body(
                request.stream(), check, limit=MAX_BODY_BYTES, deadline_seconds=settings.body_timeout_seconds
            )
        except BodyTooLargeError:
            counters.add("rejected_too_large")
            return _error(413, f"payload larger than GitHub's cap of {MAX_BODY_BYTES} bytes", close=True)
        except BodyTimeoutError as exc:
            counters.add("rejected_slow")
            log.warning("Rejected a delivery from %s: %s", peer, exc)
            return _error(408, f"{exc}: send the whole request at once", close=True)
        except ClientDisconnect:
            counters.add("client_disconnected")
            log.info("A client (%s) disconnected before its body was complete", peer)
            return _error(400, "client disconnected", close=True)
        except SignatureError as exc:
            counters.add("rejected_signature")
            log.warning("Rejected a delivery from %s: %s", peer, exc)
            return _error(401, str(exc))
        try:
            payload = parse_payload(body, request.headers.get("content-type"))
            delivery = build_delivery(
                delivery_id=delivery_id,
                event=event,
                hook_id=request.headers.get(HOOK_ID_HEADER),
                payload=payload,
                hook_target_type=_hook_target_type(request.headers.get(HOOK_TARGET_TYPE_HEADER)),
            )
        except UnstorableDeliveryError as exc:
            # Signed by GitHub but never storable: a redelivery cannot help, so not a 503.
            counters.add("rejected_unstorable")
            log.warning("Rejected delivery %s (%s): it can never be stored: %s", delivery_id, event, exc)
            return _error(400, f"delivery {delivery_id} can never be stored: {exc}")
        except ValueError as exc:
            counters.add("rejected_malformed")
            return _error(400, f"malformed delivery {delivery_id}: {exc}")
        try:
            # The store's own timeouts end a slow statement; this bounds what they cannot see
            # (a server that stopped answering): GitHub gets its 503 inside its 10 s either way.
            inserted = await asyncio.wait_for(
                run_in_threadpool(store.insert, delivery), timeout=REQUEST_DATABASE_BUDGET_SECONDS
            )
        except (psycopg.Error, TimeoutError) as exc:
            # Without durable storage the delivery would be lost; say so instead of a false 202
            # (TimeoutError: the database did not answer within the budget).
            counters.add("store_errors")
            log.error("Could not store delivery %s (%s): %s", delivery_id, event, type(exc).__name__)
            return _error(503, "the relay's database is unavailable; redeliver later")
        if not inserted:
            counters.add("duplicates")
            log.info("Delivery %s (%s) already stored: redelivery ignored", delivery_id, event)
            return JSONResponse(status_code=202, content={"delivery_id": delivery_id, "status": "duplicate"})
        counters.add("stored")
        if delivery.status == STATUS_IGNORED:
            counters.add("ignored", event)
            log.info("Delivery %s: event %r is not handled; stored as ignored", delivery_id, event)
        else:
            forwarder.notify()
        return JSONResponse(status_code=202, content={"delivery_id": delivery_id, "status": delivery.status})

    async def database_reachable() -> bool:
        # Bounded here too: the pool's wait does not cover a server that stopped answering.
        try:
            await asyncio.wait_for(run_in_threadpool(store.check), timeout=HEALTH_CHECK_TIMEOUT_SECONDS)
        except (psycopg.Error, TimeoutError):
            return False
        return True

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if not await database_reachable():
            return JSONResponse(status_code=503, content={"status": "unavailable", "database": "unavailable"})
        return JSONResponse(content={"status": "ready", "database": "ok"})

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        database = "ok" if await database_reachable() else "unavailable"
        stats = forwarder.stats
        if not forwarder.running:
            forwarding = "stopped"
        elif stats.consecutive_failures:
            forwarding = "failing"
        else:
            forwarding = "ok"
        if recovery is None:
            recovering = "off"
        else:
            recovering = "failing" if recovery.stats.failing else "ok"
        healthy = database == "ok" and forwarding == "ok" and recovering != "failing"
        return JSONResponse(
            status_code=200 if healthy else 503,
            content={
                "status": "ok" if healthy else "degraded",
                "database": database,
                "forwarding": forwarding,
                "consecutive_failures": stats.consecutive_failures,
                "failing_since": stats.failing_since,
                "last_error": stats.last_error if stats.consecutive_failures else None,
                "last_forwarded_at": stats.last_forwarded_at,
                "recovery": recovering,
            },
        )

    admin_token = settings.admin_token_value()

    def require_admin(request: Request) -> None:
        if admin_token is None:
            # Not configured: the admin routes do not exist.
            raise HTTPException(status_code=404, detail="Not Found")
        scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), admin_token.encode()
        ):
            raise HTTPException(
                status_code=401,
                detail="this route needs the relay's admin token (GITHUB_SYNC_RELAY_ADMIN_TOKEN) as a bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.get("/stats", dependencies=[Depends(require_admin)])
    async def stats() -> JSONResponse:
        try:
            durable = await run_in_threadpool(store.counts)
        except psycopg.Error as exc:
            return _error(503, f"database unavailable ({type(exc).__name__})")
        return JSONResponse(
            content={
                "requests": counters.snapshot(),
                "deliveries": durable,
                "forwarder": vars(forwarder.stats).copy(),
                "recovery": {name: vars(t).copy() for name, t in recovery.stats.targets.items()}
                if recovery is not None
                else None,
            }
        )

    @app.get("/openapi.json", dependencies=[Depends(require_admin)], include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    return app
