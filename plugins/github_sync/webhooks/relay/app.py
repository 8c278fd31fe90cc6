"""The relay's ASGI app: ``POST /webhooks/github``, ``GET /healthz``, ``GET /stats``.

Order of checks on a delivery, cheapest and least trusting first: size (413), signature
(401), headers (400), body (400); then the delivery is committed to PostgreSQL and the
answer is 202 (503 when it cannot be stored). Nothing is stored for a rejected request.

Owns the HTTP contract with GitHub and the relay's lifespan (forwarder thread, pool). Must
not: wait for Airflow (forwarding happens later, in the forwarder thread, so GitHub's 10 s
window holds whatever state Airflow is in), answer 202 before the delivery is committed, or
log the secret or a payload.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from github_sync.webhooks.relay.airflow_api import AirflowClient
from github_sync.webhooks.relay.forwarder import Forwarder
from github_sync.webhooks.relay.payload import UnstorableDeliveryError, build_delivery, parse_payload
from github_sync.webhooks.relay.settings import RelaySettings
from github_sync.webhooks.relay.signature import SIGNATURE_HEADER, SignatureError, verify_signature
from github_sync.webhooks.relay.store import STATUS_IGNORED, DeliveryStore

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/github"
# GitHub caps payloads at 25 MB; anything larger is not from GitHub.
MAX_BODY_BYTES = 25 * 1024 * 1024
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
HOOK_ID_HEADER = "X-GitHub-Hook-ID"
# GitHub's delivery ids are GUIDs; allow a little more, but nothing that is not an identifier.
DELIVERY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
EVENT_PATTERN = re.compile(r"^[a-z_]{1,64}$")


class PayloadTooLargeError(ValueError):
    """The body exceeds GitHub's 25 MB cap."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message})


async def _read_capped(request: Request, limit: int) -> bytes:
    # The Content-Length check catches honest clients; this catches chunked or lying ones.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


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


def create_app(
    settings: RelaySettings,
    *,
    store: DeliveryStore | None = None,
    forwarder: Forwarder | None = None,
) -> FastAPI:
    """Build the relay app; the forwarder runs for the app's lifespan.

    Args:
        settings: The validated settings (the secret is used, never logged).
        store: The delivery store (one on ``settings.database_url`` when None).
        forwarder: The forwarder (one built from ``settings`` when None).

    Returns:
        The FastAPI app.
    """
    store = store or DeliveryStore(settings.database_url)
    forwarder = forwarder or build_forwarder(settings, store)
    counters = RelayCounters()
    secret = settings.webhook_secret.get_secret_value().encode("utf-8")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        forwarder.start()
        log.info("Relay ready: forwarding to %s (coalescing %.1f s, at most %d ids per run)",
                 settings.airflow_api_url, settings.coalesce_seconds, settings.max_ids_per_run)  # fmt: skip
        try:
            yield
        finally:
            forwarder.stop()
            store.close()

    app = FastAPI(title="github-sync webhook relay", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.store = store
    app.state.forwarder = forwarder
    app.state.counters = counters

    @app.post(WEBHOOK_PATH, status_code=202)
    async def receive(request: Request) -> JSONResponse:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                counters.add("rejected_malformed")
                return _error(400, "Content-Length is not a number")
            if int(length) > MAX_BODY_BYTES:
                counters.add("rejected_too_large")
                return _error(413, f"payload larger than GitHub's cap of {MAX_BODY_BYTES} bytes")
        try:
            body = await _read_capped(request, MAX_BODY_BYTES)
        except PayloadTooLargeError:
            counters.add("rejected_too_large")
            return _error(413, f"payload larger than GitHub's cap of {MAX_BODY_BYTES} bytes")
        try:
            verify_signature(secret, body, request.headers.get(SIGNATURE_HEADER))
        except SignatureError as exc:
            counters.add("rejected_signature")
            log.warning(
                "Rejected a delivery from %s: %s", request.client.host if request.client else "?", exc
            )
            return _error(401, str(exc))
        event = (request.headers.get(EVENT_HEADER) or "").strip()
        delivery_id = (request.headers.get(DELIVERY_HEADER) or "").strip()
        if not event or not EVENT_PATTERN.match(event):
            counters.add("rejected_malformed")
            return _error(400, f"missing or malformed {EVENT_HEADER} header")
        if not delivery_id or not DELIVERY_ID_PATTERN.match(delivery_id):
            counters.add("rejected_malformed")
            return _error(400, f"missing or malformed {DELIVERY_HEADER} header (a GUID)")
        try:
            payload = parse_payload(body, request.headers.get("content-type"))
            delivery = build_delivery(
                delivery_id=delivery_id,
                event=event,
                hook_id=request.headers.get(HOOK_ID_HEADER),
                payload=payload,
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
            inserted = await run_in_threadpool(store.insert, delivery)
        except psycopg.Error as exc:
            # Without durable storage the delivery would be lost; say so instead of a false 202.
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

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        try:
            await run_in_threadpool(store.check)
            database = "ok"
        except psycopg.Error as exc:
            database = f"unavailable ({type(exc).__name__})"
        healthy = database == "ok" and forwarder.running
        return JSONResponse(
            status_code=200 if healthy else 503,
            content={
                "status": "ok" if healthy else "degraded",
                "database": database,
                "forwarder": "running" if forwarder.running else "stopped",
                "airflow_last_error": forwarder.stats.last_error
                if forwarder.stats.consecutive_failures
                else None,
                "counts": counters.snapshot(),
            },
        )

    @app.get("/stats")
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
            }
        )

    return app
