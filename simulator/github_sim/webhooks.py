"""Signed webhook deliveries of mutations, shaped like GitHub's (``X-Hub-Signature-256`` etc.), and their log.

Owns the delivery thread, the headers, the signature and the record of every delivery attempt
(:class:`HookDelivery`, kept :data:`RETENTION` on the simulated clock, as GitHub keeps them); the
payloads come from the state's mutations. A mutation must never wait on a delivery, and nothing
is retried by itself (GitHub does not: "GitHub does not automatically redeliver failed
deliveries", https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries);
a redelivery happens only when asked for (:meth:`WebhookEmitter.redeliver`). It must not know the
REST routes that list deliveries (:mod:`github_sim.api_hooks` does).

Which hook: the simulator has one webhook, id :data:`HOOK_ID`. For an organisation owner it is an
organisation webhook (``X-GitHub-Hook-Installation-Target-Type: organization``); for a user
owner, who has no organisation hooks, it is a repository webhook on each repository (target type
``repository``, target id the repository's), the same hook id on all of them. When a GitHub App is
installed it is also the App's webhook: a delivery records the installation covering its
repository (``installation_id``), and ``GET /app/hook/deliveries`` lists those.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import http.client
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from github_sim.clock import SimClock

log = logging.getLogger(__name__)

HOOK_ID = 424242
USER_AGENT = "GitHub-Hookshot/sim"
# GitHub records a delivery as failed when the server "takes longer than 10 seconds to respond":
# https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries
DELIVERY_TIMEOUT_S = 10
# "You can redeliver webhook deliveries that occurred in the past 3 days", and "All deliveries
# from the past 3 days will be listed":
# https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks
RETENTION = timedelta(days=3)
# The ``status`` of a delivery: "OK", or what went wrong (GitHub's examples in the ``hook-delivery``
# schema, https://docs.github.com/en/rest/repos/webhooks#get-a-delivery-for-a-repository-webhook).
STATUS_OK = "OK"
STATUS_FAILED_TO_CONNECT = "failed to connect"
STATUS_TIMED_OUT = "timed out"
INVALID_RESPONSE = "Invalid HTTP Response: {code}"
SUCCESS_CODES = range(200, 300)
DURATION_DIGITS = 2
RESPONSE_BODY_KEPT = 10_000  # characters of a receiver's answer kept for the single-delivery GET

# (target type, target id, installation id) of a delivery of a payload; the Simulator knows them.
HookContext = Callable[[dict[str, Any]], tuple[str, int, int | None]]


def signature(secret: str, body: bytes) -> str:
    """Return the ``X-Hub-Signature-256`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class HookDelivery:
    """One delivery attempt, with what ``GET .../deliveries/{delivery_id}`` shows of it."""

    id: int
    guid: str
    delivered_at: datetime
    redelivery: bool
    duration: float
    status: str
    status_code: int  # 0 when no HTTP answer came (connection refused, timeout)
    event: str
    action: str | None
    installation_id: int | None
    repository_id: int | None
    url: str
    request_headers: dict[str, str]
    body: bytes
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str | None = None

    @property
    def payload(self) -> dict[str, Any]:
        """The delivered payload, decoded."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass(frozen=True)
class _Job:
    event: str
    body: bytes
    guid: str
    redelivery: bool
    target_type: str
    target_id: int
    installation_id: int | None
    repository_id: int | None
    action: str | None


@dataclass(frozen=True)
class _Answer:
    status: str
    status_code: int
    headers: dict[str, str]
    body: str | None


def _post(url: str, body: bytes, headers: dict[str, str]) -> _Answer:
    # http.client keeps the header names' case (urllib would send "X-github-event").
    parts = urlsplit(url)
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=DELIVERY_TIMEOUT_S)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")[:RESPONSE_BODY_KEPT]
        status = STATUS_OK if resp.status in SUCCESS_CODES else INVALID_RESPONSE.format(code=resp.status)
        return _Answer(status, resp.status, dict(resp.getheaders()), text)
    finally:
        conn.close()


class WebhookEmitter:
    """Delivers events in order from one background thread (mutations never wait on HTTP) and logs each attempt.

    GitHub does not retry failed deliveries by itself, so neither does this.
    """

    def __init__(self, clock: SimClock | None = None, context: HookContext | None = None) -> None:
        """Create an emitter with no target.

        Args:
            clock: the simulated clock of ``delivered_at`` and the retention (``None``: real time).
            context: the hook's target type and id and the installation of a payload
                (``None``: an organisation hook, target id 0, no installation).
        """
        self.target: tuple[str, str] | None = None
        self.clock = clock or SimClock()
        self._context: HookContext = context or (lambda payload: ("organization", 0, None))
        self._log: list[HookDelivery] = []  # oldest first; ids increase with delivered_at
        self._next_id = 1
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the log ---------------------------------------------------------------------------------
    def deliveries(self) -> list[HookDelivery]:
        """The retained delivery attempts (the past :data:`RETENTION` on the clock), newest first."""
        cutoff = self.clock.now() - RETENTION
        with self._lock:
            return [d for d in reversed(self._log) if d.delivered_at >= cutoff]

    def delivery(self, delivery_id: int) -> HookDelivery | None:
        """The retained attempt ``delivery_id``, or ``None`` (unknown or older than the retention)."""
        return next((d for d in self.deliveries() if d.id == delivery_id), None)

    def _record(self, make: Callable[[int], HookDelivery]) -> HookDelivery:
        with self._lock:
            delivery = make(self._next_id)
            self._next_id += 1
            self._log.append(delivery)
            # Forget what no listing may show any more, so a long-running simulator stays small.
            cutoff = delivery.delivered_at - RETENTION
            while self._log and self._log[0].delivered_at < cutoff:
                self._log.pop(0)
        return delivery

    # -- delivering ------------------------------------------------------------------------------
    def on_event(self, event: str, payload: dict[str, Any]) -> None:
        """Queue a delivery of ``payload`` as ``event`` if a target is set."""
        if self.target is None:
            return
        target_type, target_id, installation_id = self._context(payload)
        repository = payload.get("repository")
        action = payload.get("action")
        self._submit(
            _Job(
                event=event,
                body=json.dumps(payload, separators=(",", ":")).encode(),
                guid=str(uuid.uuid4()),
                redelivery=False,
                target_type=target_type,
                target_id=target_id,
                installation_id=installation_id,
                repository_id=repository.get("id") if isinstance(repository, dict) else None,
                action=action if isinstance(action, str) else None,
            )
        )

    def redeliver(self, delivery_id: int) -> bool:
        """Queue a new attempt of delivery ``delivery_id``: same body, same ``X-GitHub-Delivery`` GUID.

        "Redeliver a delivery for a repository webhook"
        (https://docs.github.com/en/rest/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook)
        sends it again to the hook's current URL; the new attempt is a delivery of its own with
        ``redelivery: true``. Returns ``False`` (nothing queued) for an unknown or expired
        delivery, or when no target is set.
        """
        original = self.delivery(delivery_id)
        if original is None or self.target is None:
            return False
        self._submit(
            _Job(
                event=original.event,
                body=original.body,
                guid=original.guid,
                redelivery=True,
                target_type=original.request_headers.get("X-GitHub-Hook-Installation-Target-Type", ""),
                target_id=int(original.request_headers.get("X-GitHub-Hook-Installation-Target-ID", 0)),
                installation_id=original.installation_id,
                repository_id=original.repository_id,
                action=original.action,
            )
        )
        return True

    def _submit(self, job: _Job) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="github-sim-webhooks", daemon=True)
                self._thread.start()
        self._queue.put(job)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                self._queue.task_done()
                return
            try:
                self._deliver(job)
            except Exception:  # one broken delivery must not stop the thread (and every later one)
                log.exception("webhook delivery %s failed unexpectedly", job.guid)
            finally:
                self._queue.task_done()

    def _deliver(self, job: _Job) -> None:
        target = self.target
        if target is None:
            return  # the hook went away while this delivery was queued
        url, secret = target
        # The headers GitHub sends ("Delivery headers"):
        # https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-GitHub-Event": job.event,
            "X-GitHub-Delivery": job.guid,
            "X-GitHub-Hook-ID": str(HOOK_ID),
            "X-GitHub-Hook-Installation-Target-Type": job.target_type,
            "X-GitHub-Hook-Installation-Target-ID": str(job.target_id),
            "X-Hub-Signature-256": signature(secret, job.body),
        }
        delivered_at = self.clock.now()
        started = time.perf_counter()
        try:
            answer = _post(url, job.body, headers)
        except TimeoutError as exc:
            log.warning("webhook delivery %s to %s timed out: %s", job.guid, url, exc)
            answer = _Answer(STATUS_TIMED_OUT, 0, {}, None)
        except OSError as exc:
            log.warning("webhook delivery %s to %s failed: %s", job.guid, url, exc)
            answer = _Answer(STATUS_FAILED_TO_CONNECT, 0, {}, None)
        duration = round(time.perf_counter() - started, DURATION_DIGITS)
        self._record(
            lambda delivery_id: HookDelivery(
                id=delivery_id,
                guid=job.guid,
                delivered_at=delivered_at,
                redelivery=job.redelivery,
                duration=duration,
                status=answer.status,
                status_code=answer.status_code,
                event=job.event,
                action=job.action,
                installation_id=job.installation_id,
                repository_id=job.repository_id,
                url=url,
                request_headers=copy.copy(headers),
                body=job.body,
                response_headers=answer.headers,
                response_body=answer.body,
            )
        )

    def drain(self) -> None:
        """Return once every queued delivery has been attempted (and recorded)."""
        self._queue.join()

    def close(self) -> None:
        """Stop the delivery thread after the queued deliveries."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(timeout=DELIVERY_TIMEOUT_S)
                self._thread = None
