"""The relay's HTTP server: uvicorn with the deadlines a public endpoint needs.

uvicorn bounds an idle keep-alive connection (``timeout_keep_alive``) and the number of
concurrent connections and requests (``limit_concurrency``, answered with 503), but it
starts no clock before a request's headers are complete: a client that connects and sends
nothing, or sends a header line every minute, holds its connection for ever. The protocol
here arms a deadline whenever the connection waits for a request's headers and closes the
connection when they are not complete in time. The body's deadline is the app's (it answers
408, see :mod:`github_sync.webhooks.relay.body`).

Owns the server's configuration (timeouts, concurrency, header size) and the protocol.
Must not: know about deliveries or the database.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from github_sync.webhooks.relay.settings import RelaySettings

log = logging.getLogger(__name__)

# GitHub's request headers are a few kilobytes; anything much larger is not GitHub.
MAX_HEADER_BYTES = 64 * 1024


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers do not arrive in time.

    The deadline is armed when the connection opens and after every response (when it
    waits for the next request) and disarmed once the headers of a request are complete.
    """

    # Set on the subclass made by :func:`protocol_with_header_deadline`.
    header_timeout_seconds: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            # The request line and headers are complete (or the connection failed): the
            # body has the app's deadline from here.
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            # Answered before the request's body was read (a refusal, a 404, a GET with a
            # body): nothing would bound the rest of that body, byte by byte, so the
            # connection ends here, whatever the route's response said.
            super().on_response_complete()
            self.transport.close()
            return
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(
            self.header_timeout_seconds, self._header_deadline_passed
        )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        log.info(
            "Closed a connection from %s: no complete request headers within %.1f s",
            self.client[0] if self.client else "?",
            self.header_timeout_seconds,
        )
        # Nothing to answer: the client has not asked anything yet.
        self.transport.close()


def protocol_with_header_deadline(header_timeout_seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class uvicorn instantiates per connection, with this header deadline."""
    return type(
        "HeaderDeadlineProtocol",
        (HeaderDeadlineProtocol,),
        {"header_timeout_seconds": header_timeout_seconds},
    )


def server_config(
    app: Any, settings: RelaySettings, *, host: str, port: int, log_level: str
) -> uvicorn.Config:
    """The uvicorn configuration of a relay with ``settings``' timeouts and concurrency cap."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        # Logging is configured by the CLI; keep uvicorn's access log on it.
        log_config=None,
        http=protocol_with_header_deadline(settings.header_timeout_seconds),
        timeout_keep_alive=settings.idle_timeout_seconds,
        limit_concurrency=settings.max_concurrency,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        # A proxy in front may add X-Forwarded-For; the relay logs the peer it sees.
        proxy_headers=False,
    )


def serve(app: Any, settings: RelaySettings, *, host: str, port: int, log_level: str) -> None:
    """Run the relay's server until interrupted."""
    uvicorn.Server(server_config(app, settings, host=host, port=port, log_level=log_level)).run()
