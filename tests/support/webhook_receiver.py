"""A real HTTP endpoint that receives the simulator's webhook deliveries, for tests.

:class:`WebhookReceiver` listens on a free port of 127.0.0.1, keeps every POST it gets (headers
and body) and answers ``status``; :meth:`WebhookReceiver.stop` closes the port, so later
deliveries meet a refused connection, as they would a relay that is down. It checks nothing about
the deliveries (tests do) and must not import the simulator or the product.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCEPTED = 202


@dataclass(frozen=True)
class Received:
    """One delivery as the receiver got it."""

    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1; use as a context manager or call :meth:`stop`."""

    def __init__(self, status: int = ACCEPTED) -> None:
        """Start listening; every POST is answered ``status``."""
        self.status = status
        self.received: list[Received] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    receiver.received.append(Received(dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()

    def guids(self) -> list[str]:
        """The ``X-GitHub-Delivery`` of every delivery received, in order."""
        return [r.headers["X-GitHub-Delivery"] for r in list(self.received)]

    def stop(self) -> None:
        """Stop listening (the port then refuses connections)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        """The started receiver."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop it."""
        self.stop()
