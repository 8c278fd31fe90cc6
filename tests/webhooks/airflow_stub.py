"""A stand-in for Airflow's REST API (``/auth/token`` and ``dagRuns``), for the relay's tests only.

It behaves like Airflow where the relay depends on it: a JWT from ``/auth/token`` (201),
``401`` for a missing or revoked token, ``409`` for a ``dag_run_id`` that already exists. A
queue of scripted faults makes it fail the next requests: ``"503"``, ``"timeout"`` (the run
is created, but the answer comes too late, as when Airflow is slow), ``"expire"`` (every
token is revoked and the request answered 401).

Optionally (:meth:`AirflowStub.play_dag`) it also plays the webhook DAG's part in the
relay's protocol: the runs it created are "run" one at a time in creation order
(``max_active_runs=1``), each taking ``run_seconds``, and then their deliveries are marked
``processed`` in ``webhook_deliveries``, which is what the relay's in-flight check reads. A
run can be held in flight (``hold_runs``) to model a slow or never-finishing run. ``events``
records what happened in order, so tests can assert on order rather than on wall time.

More listeners (``listeners=2``) share one state, so several relays can each be given their
own URL (``urls``) and ``answers`` tells which one sent a request; a listener in
``hang_ports`` creates the run and then holds the answer (a relay stuck between "assigned"
and "confirmed", to be killed there).
"""

from __future__ import annotations

import base64
import json
import queue
import re
import socket
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

USERNAME = "relay"
PASSWORD = "relay-password-0123"
DAG_RUNS_PATH = "/api/v2/dags/github_webhook_events/dagRuns"
OTHER_DAG_RUNS_PATH = re.compile(r"/api/v2/dags/(?P<dag_id>(?!github_webhook_events/)[a-z_]+)/dagRuns")


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

    def __init__(self, port: int | None = None, *, timeout_sleep: float = 1.5, listeners: int = 1) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ports = [self.port, *(free_port() for _ in range(listeners - 1))]
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        # (listener port, status, dag_run_id) of every answer, in order.
        self.answers: list[tuple[int, int, str | None]] = []
        # Listeners whose dagRuns requests create the run and then never get their answer.
        self.hang_ports: set[int] = set()
        self.hung: list[tuple[int, str]] = []  # (listener port, dag_run_id) of held answers
        self._release_hung = threading.Event()
        self.timeout_sleep = timeout_sleep
        self.faults: deque[str] = deque()
        self.lock = threading.Lock()
        self.tokens: set[str] = set()
        self.runs: dict[str, list[str]] = {}  # created runs: dag_run_id -> delivery ids
        # Runs of other DAGs: dag_run_id -> (dag_id, conf).
        self.other_runs: dict[str, tuple[str, dict[str, Any]]] = {}
        self.requests: list[tuple[str, int, str | None]] = []  # (path, status, dag_run_id)
        self.bodies: list[dict[str, Any]] = []
        self.token_requests = 0
        self.timed_out: list[str] = []  # runs created whose answer came too late
        # ("created" | "processed", dag_run_id), in the order it happened (see play_dag).
        self.events: list[tuple[str, str]] = []
        # Set: a run being "run" by play_dag stays in flight until this is cleared.
        self.hold_runs = threading.Event()
        self._created: queue.Queue[str | None] | None = None
        self._dag_thread: threading.Thread | None = None
        self._server: ThreadingHTTPServer | None = None
        self._servers: list[ThreadingHTTPServer] = []

    def play_dag(self, database_url: str, *, run_seconds: float = 0.0) -> AirflowStub:
        """Also play the webhook DAG: mark each created run's deliveries processed, one run at a time.

        Args:
            database_url: The relay's database (the test database).
            run_seconds: How long each run takes before its deliveries are marked (a real
                webhook run takes a second or more: scheduling, task start, apply).
        """
        created: queue.Queue[str | None] = queue.Queue()
        self._created = created

        def run_dag() -> None:
            with psycopg.connect(database_url, autocommit=True) as conn:
                while (run_id := created.get()) is not None:
                    time.sleep(run_seconds)
                    while self.hold_runs.is_set():
                        time.sleep(0.02)
                    with self.lock:
                        ids = list(self.runs[run_id])
                    conn.execute(
                        "UPDATE webhook_deliveries SET status = 'processed', processed_at = now() "
                        "WHERE delivery_id = ANY(%s) AND status IN ('pending', 'forwarded')",
                        (ids,),
                    )
                    with self.lock:
                        self.events.append(("processed", run_id))

        self._dag_thread = threading.Thread(target=run_dag, name="airflow-stub-dag", daemon=True)
        self._dag_thread.start()
        return self

    def processed_runs(self) -> list[str]:
        """The runs play_dag has finished, in order."""
        with self.lock:
            return [run_id for kind, run_id in self.events if kind == "processed"]

    def created_runs(self) -> list[str]:
        """The runs created, in order."""
        with self.lock:
            return [run_id for kind, run_id in self.events if kind == "created"]

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
                    stub.answers.append((self.server.server_address[1], status, run_id))
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
                run_id = body.get("dag_run_id")
                auth = self.headers.get("Authorization", "")
                other = OTHER_DAG_RUNS_PATH.fullmatch(self.path)
                if other is not None and auth.startswith("Bearer ") and auth[7:] in stub.tokens:
                    # Another DAG (the relay's recovery triggers github_incremental_sync).
                    with stub.lock:
                        exists = run_id in stub.other_runs
                        if not exists:
                            stub.other_runs[run_id] = (other["dag_id"], body.get("conf") or {})
                    self._answer(409 if exists else 200, {"dag_run_id": run_id}, run_id)
                    return
                if self.path != DAG_RUNS_PATH:
                    self._answer(404, {"detail": "Not Found"})
                    return
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
                        stub.events.append(("created", run_id))
                        if stub._created is not None:
                            stub._created.put(run_id)
                if exists:
                    self._answer(409, {"detail": f"DAG Run with run_id {run_id} already exists"}, run_id)
                    return
                if fault == "timeout":
                    with stub.lock:
                        stub.timed_out.append(run_id)
                    time.sleep(stub.timeout_sleep)
                listener = self.server.server_address[1]
                if listener in stub.hang_ports:
                    with stub.lock:
                        stub.hung.append((listener, run_id))
                    stub._release_hung.wait()
                    return  # no answer at all: the client was killed or gave up
                self._answer(200, {"dag_run_id": run_id, "state": "queued"}, run_id)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._servers = [self._server]
        for extra in self.ports[1:]:
            self._servers.append(ThreadingHTTPServer(("127.0.0.1", extra), Handler))
        for server in self._servers:
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.hold_runs.clear()
        if self._created is not None and self._dag_thread is not None:
            self._created.put(None)
            self._dag_thread.join(10)
            self._created = None
        self._release_hung.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []
        self._server = None
