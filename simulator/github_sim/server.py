"""The HTTP layer: authentication, rate limits, faults, conditional requests and headers.

A stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive, so a ``requests``
session reuses its connection like it would against api.github.com. It must not know any
GitHub route or body (the API does); it owns what happens around every request, in GitHub's
order: authentication, secondary then primary limits, faults, then ETag/304 and the headers.
Authentication tells three kinds of credentials apart: an App's JWT (verified by
:mod:`github_sim.apps`; it spends no budget), an installation access token the simulator issued
(valid until it expires) and any other token; the budget a request spends is the one
:meth:`~github_sim.access.AccessPolicy.budget_key` names (per user, installation or token), and
so is the key of the secondary burst limit.

One piece (>300 lines) because that order is the behaviour: which check answers first decides
what a client sees (a secondary limit spends no budget, a 304 costs nothing), and one pipeline
method keeps the order in one place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import struct
import threading
import time
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from github_sim.api import Request, Response, error
from github_sim.apps import TOKEN_PREFIX, AppAuthError, looks_like_jwt
from github_sim.faults import SECONDARY_BURST_WINDOW_S, failing_status
from github_sim.ratelimit import ANONYMOUS, RESOURCE_CORE, Bucket

if TYPE_CHECKING:
    from github_sim.app import Simulator
    from github_sim.config import AppConfig

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_sim/"
API_VERSION = "2022-11-28"
RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
SECONDARY_DOCS = (
    "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api"
    "#about-secondary-rate-limits"
)
REQUEST_QUEUE_SIZE = 256  # listen backlog: concurrency tests open many sockets at once
# Key of an App's own window (JWT requests): shown in the headers, never spent.
APP_KEY_PREFIX = "app:"
# Other resources listed by GET /rate_limit, with GitHub's documented limits.
OTHER_RESOURCES = {"search": 30, "graphql": 5000, "integration_manifest": 5000, "code_search": 10}


def app_key(app_id: int) -> str:
    """Budget key of an App authenticating with its JWT."""
    return f"{APP_KEY_PREFIX}{app_id}"


class SimHTTPServer(ThreadingHTTPServer):
    """Threaded server that remembers its open connections so ``stop()`` can close them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = REQUEST_QUEUE_SIZE

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        """Bind ``address`` and serve ``sim``."""
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, SimRequestHandler)

    def close_connections(self) -> None:
        """Shut every open keep-alive connection (their threads then exit)."""
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SimRequestHandler(BaseHTTPRequestHandler):
    """Handles one connection; every request goes through :meth:`_handle`."""

    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""
    server: SimHTTPServer

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, on the simulator's clock (not the host's), as GitHub's answers carry theirs.

        An origin server with a clock must send it (https://www.rfc-editor.org/rfc/rfc9110#section-6.6.1).
        """
        return format_datetime(self.server.sim.clock.now(), usegmt=True)

    def setup(self) -> None:
        """Register the connection and disable Nagle (small JSON answers, keep-alive)."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        """Unregister the connection."""
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Route the stdlib access log to ``logging`` at debug level."""
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        """Serve a GET."""
        self._handle("GET")

    def do_POST(self) -> None:
        """Serve a POST (control API, installation access tokens; other GitHub writes are not simulated)."""
        self._handle("POST")

    def do_PATCH(self) -> None:
        """Serve a PATCH."""
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        """Serve a DELETE."""
        self._handle("DELETE")

    def do_PUT(self) -> None:
        """Serve a PUT."""
        self._handle("PUT")

    # -- pipeline --------------------------------------------------------------------------------
    def _handle(self, method: str) -> None:
        sim = self.server.sim
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        params = parse_qsl(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        if path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX.rstrip("/"):
            status, body = sim.control.handle(method, path, dict(params), raw_body)
            self._send(status, json.dumps(body).encode() if body is not None else b"", {})
            return
        secondary = sim.secondary
        concurrency = secondary.enter()
        try:
            self._api(method, path, params, concurrency, raw_body)
        except Exception:  # answer 500 like GitHub rather than dropping the connection
            log.exception("simulator failed on %s %s", method, self.path)
            self._send(500, json.dumps({"message": "Server Error"}).encode(), {})
        finally:
            secondary.leave()

    def _api(
        self, method: str, path: str, params: list[tuple[str, str]], concurrency: int, raw_body: bytes
    ) -> None:
        sim = self.server.sim
        faults = sim.faults
        if sim.dice.hit(faults.reset_connection_rate):
            self._reset_connection()
            sim.stats_counter.record("(connection reset)", 0, spent=False)
            return
        delay_ms = sim.config.latency_ms + (
            faults.slow_ms if faults.slow_ms and sim.dice.hit(faults.slow_rate) else 0
        )
        if delay_ms:
            time.sleep(delay_ms / 1000)

        token, bad_auth = self._token()
        limiter = sim.limiter
        app: AppConfig | None = None
        refused = "Bad credentials" if bad_auth else None
        if token is not None and not bad_auth and looks_like_jwt(token):
            # An App authenticates with a JWT it signs:
            # https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
            try:
                app = sim.apps.verify_jwt(token)
            except AppAuthError as exc:
                refused = str(exc)
        elif token is not None and not bad_auth:
            issued = sim.apps.lookup(token)
            if issued is not None:
                # "Using an expired token produces a status code of 401 - Unauthorized":
                # https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app
                if issued.expired(sim.clock.now()):
                    refused = "Bad credentials"
            elif (sim.config.tokens is not None and token not in sim.config.tokens) or (
                sim.apps.configured and token.startswith(TOKEN_PREFIX)
            ):
                refused = "Bad credentials"
        if refused is not None:
            resp = error(401, refused, "https://docs.github.com/rest")
            self._finish("(auth)", resp, limiter.peek(ANONYMOUS), token, spent=False)
            return
        # A JWT spends no installation's or user's budget; its own window is shown, never spent.
        key = app_key(app.app_id) if app is not None else sim.access.budget_key(token)

        # Secondary limits are checked before the primary budget and do not spend it.
        burst_hit = sim.secondary.burst_exceeded(key, faults.secondary_limit_burst, SECONDARY_BURST_WINDOW_S)
        limit_c = faults.secondary_limit_concurrency
        if burst_hit or (limit_c is not None and concurrency > limit_c):
            status = faults.secondary_status
            resp = error(
                status,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
                "If you reach out to GitHub Support for help, please include the request ID "
                f"{self._request_id()}.",
                SECONDARY_DOCS,
            )
            if faults.secondary_retry_after is not None:
                resp.headers["Retry-After"] = str(faults.secondary_retry_after)
            self._finish("(secondary limit)", resp, limiter.peek(key), token, spent=False)
            return

        is_rate_limit = path == "/rate_limit"
        bucket = limiter.peek(key)
        if not is_rate_limit and bucket.remaining <= 0:
            installation = sim.access.installation_token(token)
            if installation is not None:
                who = f"installation ID {installation.installation_id}"
            elif token is not None:
                who = f"user ID {sim.access.account(token).id}"
            else:
                who = self.client_address[0]
            message = f"API rate limit exceeded for {who}."
            if token is None:
                message += (
                    " (But here's the good news: Authenticated requests get a higher rate limit. "
                    "Check out the documentation for more details.)"
                )
            else:
                message += (
                    " If you reach out to GitHub Support for help, please include the request ID "
                    f"{self._request_id()}."
                )
            resp = error(429 if faults.status_429_for_primary else 403, message, RATE_LIMIT_DOCS)
            self._finish("(rate limited)", resp, bucket, token, spent=False)
            return

        injected = failing_status(faults.fail_paths, path) if faults.fail_paths else None
        if injected is None and sim.dice.hit(faults.random_5xx_rate):
            injected = sim.dice.choice_5xx()
        if injected is not None:
            self._finish(
                "(injected fault)",
                Response(injected, {"message": "Server Error"}),
                bucket,
                token,
                spent=False,
            )
            return

        user = sim.access.account(token) if token is not None and app is None else None
        req = Request(method, path, dict(params), params, token, user, app=app, body=raw_body)
        endpoint, resp = sim.api.route(req)
        if is_rate_limit and resp.status == 200:
            resp.body = self._rate_limit_body(bucket)
        spend = resp.spend and not is_rate_limit and app is None
        body_bytes = json.dumps(resp.body, separators=(",", ":")).encode() if resp.body is not None else b""
        if resp.status == 200 and resp.body is not None:
            etag = '"' + hashlib.md5((token or "").encode() + b"\0" + body_bytes).hexdigest() + '"'
            resp.headers["ETag"] = etag
            if resp.last_modified is not None:
                resp.headers["Last-Modified"] = format_datetime(resp.last_modified, usegmt=True)
            if self._not_modified(etag, resp):
                # A conditional hit costs nothing (GitHub: "304 does not count against the limit").
                self._finish(endpoint, Response(304, None, {"ETag": etag}), bucket, token, spent=False)
                return
        if spend:
            bucket = limiter.spend(key)
        self._finish(endpoint, resp, bucket, token, spent=spend, body_bytes=body_bytes)

    def _not_modified(self, etag: str, resp: Response) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm:
            candidates = {c.strip().removeprefix("W/") for c in inm.split(",")}
            return etag in candidates or "*" in candidates
        ims = self.headers.get("If-Modified-Since")
        if ims and resp.last_modified is not None:
            try:
                return resp.last_modified.replace(microsecond=0) <= parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
        return False

    def _token(self) -> tuple[str | None, bool]:
        header = self.headers.get("Authorization")
        if not header:
            return None, False
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() not in ("bearer", "token") or not value:
            return None, True
        return value, False

    def _rate_limit_body(self, bucket: Bucket) -> dict[str, Any]:
        core = {
            "limit": bucket.limit,
            "used": bucket.used,
            "remaining": bucket.remaining,
            "reset": bucket.reset,
        }
        resources: dict[str, Any] = {"core": core}
        for name, limit in OTHER_RESOURCES.items():
            resources[name] = {"limit": limit, "used": 0, "remaining": limit, "reset": bucket.reset}
        return {"resources": resources, "rate": dict(core)}

    def _request_id(self) -> str:
        return hashlib.md5(f"{id(self)}:{time.monotonic_ns()}".encode()).hexdigest()[:16].upper()

    def _finish(
        self,
        endpoint: str,
        resp: Response,
        bucket: Bucket,
        token: str | None,
        spent: bool,
        body_bytes: bytes | None = None,
    ) -> None:
        sim = self.server.sim
        if body_bytes is None:
            body_bytes = (
                json.dumps(resp.body, separators=(",", ":")).encode() if resp.body is not None else b""
            )
        remaining = 0 if resp.status in (403, 429) and endpoint == "(rate limited)" else bucket.remaining
        headers = {
            "x-ratelimit-limit": str(bucket.limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-used": str(bucket.used),
            "x-ratelimit-reset": str(bucket.reset),
            "x-ratelimit-resource": RESOURCE_CORE,
            "x-github-api-version-selected": API_VERSION,
            "x-github-media-type": "github.v3; format=json",
            "x-github-request-id": self._request_id(),
            "Cache-Control": "private, max-age=60, s-maxage=60",
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
            **resp.headers,
        }
        sim.stats_counter.record(endpoint, resp.status, spent)
        self._send(resp.status, body_bytes if resp.status != 304 else b"", headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and status != 304:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _reset_connection(self) -> None:
        # SO_LINGER 0 makes close() send an RST: the client sees "connection reset by peer".
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
