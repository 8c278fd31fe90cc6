"""Signed webhook deliveries of mutations, shaped like GitHub's (``X-Hub-Signature-256`` etc.).

Owns the delivery thread, the headers and the signature; the payloads come from the state's
mutations. A mutation must never wait on a delivery, and nothing is retried (GitHub does not).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import queue
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

HOOK_ID = 424242
USER_AGENT = "GitHub-Hookshot/sim"
DELIVERY_TIMEOUT_S = 10


def signature(secret: str, body: bytes) -> str:
    """Return the ``X-Hub-Signature-256`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    # http.client keeps the header names' case (urllib would send "X-github-event").
    parts = urlsplit(url)
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=DELIVERY_TIMEOUT_S)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


class WebhookEmitter:
    """Delivers events in order from one background thread (mutations never wait on HTTP).

    GitHub does not retry failed deliveries by itself, so neither does this.
    """

    def __init__(self) -> None:
        """Create an emitter with no target."""
        self.target: tuple[str, str] | None = None
        self.delivered: list[dict[str, Any]] = []  # headers + status of each delivery, for tests
        self._queue: queue.Queue[tuple[str, str, str, bytes] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def on_event(self, event: str, payload: dict[str, Any]) -> None:
        """Queue a delivery of ``payload`` as ``event`` if a target is set."""
        target = self.target
        if target is None:
            return
        url, secret = target
        body = json.dumps(payload, separators=(",", ":")).encode()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="github-sim-webhooks", daemon=True)
                self._thread.start()
        self._queue.put((url, secret, event, body))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            url, secret, event, body = item
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-GitHub-Hook-ID": str(HOOK_ID),
                "X-GitHub-Hook-Installation-Target-Type": "organization",
                "X-Hub-Signature-256": signature(secret, body),
            }
            status = 0
            try:
                status = _post(url, body, headers)
            except OSError as exc:
                log.warning("webhook delivery %s to %s failed: %s", headers["X-GitHub-Delivery"], url, exc)
            self.delivered.append({"event": event, "status": status, "headers": headers})
            self._queue.task_done()

    def close(self) -> None:
        """Stop the delivery thread after the queued deliveries."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(timeout=DELIVERY_TIMEOUT_S)
                self._thread = None
