"""A stand-in for Airflow's REST API (``/auth/token`` and ``dagRuns``), for the relay's tests only.

It behaves like Airflow where the relay depends on it: a JWT from ``/auth/token`` (201),
``401`` for a missing or revoked token, ``409`` for a ``dag_run_id`` that already exists. A
queue of scripted faults makes it fail the next requests: ``"503"``, ``"timeout"`` (the run
is created, but the answer comes too late, as when Airflow is slow), ``"expire"`` (every
token is revoked and the request answered 401).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USERNAME = "relay"
PASSWORD = "relay-password-0123"
DAG_RUNS_PATH = "/api/v2/dags/github_webhook_events/dagRuns"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _jwt(lifetime: float) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims = {"sub": USERNAME, "exp": int(time.time() + lifetime), "jti": uuid.uuid4().hex}
    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


class AirflowStub:
    """The fake API server; ``url`` is fixed at construction, ``start()`` makes it listen."""

    def __init__(self, port: int | None = None, *, timeout_sleep: float = 1.5) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.timeout_sleep = timeout_sleep
        self.faults: deque[str] = deque()
        self.lock = threading.Lock()
        self.tokens: set[str] = set()
        self.runs: dict[str, list[str]] = {}  # created runs: dag_run_id -> delivery ids
        self.requests: list[tuple[str, int, str | None]] = []  # (path, status, dag_run_id)
        self.bodies: list[dict[str, Any]] = []
        self.token_requests = 0
        self.timed_out: list[str] = []  # runs created whose answer came too late
        self._server: ThreadingHTTPServer | None = None

    @property
    def conflicts(self) -> int:
        return sum(1 for _, status, _ in self.requests if status == 409)

    def start(self) -> AirflowStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _answer(self, status: int, body: dict[str, Any], run_id: str | None = None) -> None:
                with stub.lock:
                    stub.requests.append((self.path, status, run_id))
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the "timeout" fault)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/auth/token":
                    with stub.lock:
                        stub.token_requests += 1
                    if body != {"username": USERNAME, "password": PASSWORD}:
                        self._answer(401, {"detail": "Invalid credentials"})
                        return
                    token = _jwt(3600)
                    with stub.lock:
                        stub.tokens.add(token)
                    self._answer(201, {"access_token": token})
                    return
                if self.path != DAG_RUNS_PATH:
                    self._answer(404, {"detail": "Not Found"})
                    return
                run_id = body.get("dag_run_id")
                auth = self.headers.get("Authorization", "")
                with stub.lock:
                    authorised = auth.startswith("Bearer ") and auth[7:] in stub.tokens
                    fault = stub.faults.popleft() if stub.faults and authorised else None
                if not authorised:
                    self._answer(401, {"detail": "Not authenticated"}, run_id)
                    return
                if fault == "503":
                    self._answer(503, {"detail": "Service Unavailable"}, run_id)
                    return
                if fault == "expire":
                    with stub.lock:
                        stub.tokens.clear()
                    self._answer(401, {"detail": "Token expired"}, run_id)
                    return
                with stub.lock:
                    stub.bodies.append(body)
                    exists = run_id in stub.runs
                    if not exists:
                        stub.runs[run_id] = list(body["conf"]["delivery_ids"])
                if exists:
                    self._answer(409, {"detail": f"DAG Run with run_id {run_id} already exists"}, run_id)
                    return
                if fault == "timeout":
                    with stub.lock:
                        stub.timed_out.append(run_id)
                    time.sleep(stub.timeout_sleep)
                self._answer(200, {"dag_run_id": run_id, "state": "queued"}, run_id)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
