"""A stalled database gets a 503 inside GitHub's 10 s window, never a hung request (issue #18).

Real PostgreSQL and real HTTP: (a) a real relay process while another session holds an
ACCESS EXCLUSIVE lock on ``webhook_deliveries`` (what a migration or ``VACUUM FULL`` does);
(b) the relay app under uvicorn, its database URL pointing at a TCP server that accepts
connections and never answers. The failure signal is the client's timeout (beyond GitHub's
10 s), not a measured duration: the tests assert what was answered, not how fast.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import uvicorn

from github_sync.webhooks.relay.app import create_app
from github_sync.webhooks.relay.store import (
    DEFAULT_CONNECTION_WAIT_SECONDS,
    DEFAULT_POOL_SIZE,
    LOCK_TIMEOUT_SECONDS,
    REQUEST_DATABASE_BUDGET_SECONDS,
    STATEMENT_TIMEOUT_SECONDS,
    DeliveryStore,
)
from tests.polling import wait_until
from tests.webhooks.airflow_stub import AirflowStub, free_port
from tests.webhooks.helpers import ADMIN, body_of, delivery_rows, fast_forwarder, headers, relay_settings
from tests.webhooks.test_cli import processes, relay_env, start_relay

__all__ = ["processes"]  # the fixture, imported for its use here

# Beyond GitHub's 10 s: a request still unanswered then has hung, which is the bug.
CLIENT_TIMEOUT_S = 12.0
# More concurrent deliveries than the pool has connections: the hung ones must give theirs back.
CONCURRENT = 2 * DEFAULT_POOL_SIZE
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 15.0


def post_all(url: str, body: bytes, ids: list[str]) -> list[httpx.Response]:
    """Post one delivery per id at once; a request still unanswered after CLIENT_TIMEOUT_S fails the test."""

    def post(delivery_id: str) -> httpx.Response:
        try:
            return httpx.post(
                url, content=body, headers=headers(body, "issues", delivery_id), timeout=CLIENT_TIMEOUT_S
            )
        except httpx.TimeoutException:
            pytest.fail(f"delivery {delivery_id} hung: no answer within {CLIENT_TIMEOUT_S} s")

    with ThreadPoolExecutor(len(ids)) as pool:
        return list(pool.map(post, ids))


def test_the_request_budget_fits_githubs_window() -> None:
    # A request waits for a connection, then runs one statement; a lock wait fails first.
    assert DEFAULT_CONNECTION_WAIT_SECONDS + STATEMENT_TIMEOUT_SECONDS <= REQUEST_DATABASE_BUDGET_SECONDS < 10
    assert LOCK_TIMEOUT_SECONDS < STATEMENT_TIMEOUT_SECONDS


def test_a_locked_table_gets_503s_then_deliveries_are_accepted_again(
    pg_database: str,
    pg_conn: psycopg.Connection,
    github_samples: Path,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    stub = AirflowStub()
    stub.start()
    port = free_port()
    log_path = tmp_path / "relay.log"
    try:
        start_relay(relay_env(pg_database, stub.url, port), log_path, processes)
        base = f"http://127.0.0.1:{port}"
        body = (github_samples / "webhooks/issues/opened.payload.json").read_bytes()
        blocked_ids = [str(uuid.uuid4()) for _ in range(CONCURRENT)]
        with psycopg.connect(pg_database) as locker:
            locker.execute("LOCK TABLE webhook_deliveries IN ACCESS EXCLUSIVE MODE")
            try:
                blocked = post_all(f"{base}/webhooks/github", body, blocked_ids)
                # SELECT 1 needs no lock on the table: the health check answers (either way).
                health = httpx.get(f"{base}/healthz", timeout=CLIENT_TIMEOUT_S)
            finally:
                locker.rollback()  # releases the lock, also when a request hung
        assert [r.status_code for r in blocked] == [503] * CONCURRENT, [r.text for r in blocked]
        assert all("redeliver later" in r.json()["detail"] for r in blocked)
        assert health.status_code in (200, 503)

        accepted_ids = [str(uuid.uuid4()) for _ in range(CONCURRENT)]
        accepted = post_all(f"{base}/webhooks/github", body, accepted_ids)
        assert [r.status_code for r in accepted] == [202] * CONCURRENT, [r.text for r in accepted]
        assert sorted(r[0] for r in delivery_rows(pg_conn)) == sorted(accepted_ids)
        stats = httpx.get(f"{base}/stats", headers=ADMIN, timeout=CLIENT_TIMEOUT_S).json()["requests"]
        assert (stats["store_errors"], stats["stored"]) == (CONCURRENT, CONCURRENT)
        # The lock wait ran into lock_timeout (the first 8) or the wait for a connection did.
        assert "LockNotAvailable" in log_path.read_text()
        # The forwarder's queries hit the lock too; it carried on and forwards what came after.
        wait_until(
            lambda: sorted(i for ids in stub.runs.values() for i in ids) == sorted(accepted_ids),
            message="the deliveries accepted after the lock forwarded",
        )
        assert httpx.get(f"{base}/healthz", timeout=CLIENT_TIMEOUT_S).json()["forwarding"] == "ok"
    finally:
        stub.stop()


class SilentDatabase:
    """A TCP server that accepts connections and never says a word (a stalled proxy or host)."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="silent-database", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            self.accepted.append(conn)

    def close(self) -> None:
        # shutdown() wakes the accept() blocked in the thread; close() alone may not.
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(SERVER_STOP_TIMEOUT_S)
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_database() -> Iterator[SilentDatabase]:
    server = SilentDatabase()
    try:
        yield server
    finally:
        server.close()


@contextmanager
def served_relay(database_url: str) -> Iterator[str]:
    """A relay app on the database at ``database_url``, served by uvicorn in a thread; yields its URL.

    The relay's own store defaults (connection wait, connect and statement timeouts): those are what is under test.
    """
    stub = AirflowStub()
    stub.start()
    settings = relay_settings(database_url, stub.url)
    store = DeliveryStore(settings.database_url)
    app = create_app(settings, store=store, forwarder=fast_forwarder(store, settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-relay", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=SERVER_START_TIMEOUT_S,
                   message="uvicorn did not start")  # fmt: skip
        assert server.started, "uvicorn stopped while starting"
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(SERVER_STOP_TIMEOUT_S)
        stub.stop()


def test_a_database_that_never_answers_gets_503_not_a_hang(silent_database: SilentDatabase) -> None:
    with served_relay(f"postgresql://postgres@127.0.0.1:{silent_database.port}/github_sync") as base:
        body = body_of({"action": "opened", "repository": {"id": 1, "full_name": "o/r"}})
        with ThreadPoolExecutor(1) as prober:  # at the same time as the deliveries
            probe = prober.submit(httpx.get, f"{base}/healthz", timeout=CLIENT_TIMEOUT_S)
            answers = post_all(f"{base}/webhooks/github", body, [str(uuid.uuid4()) for _ in range(3)])
            health = probe.result()
        assert [r.status_code for r in answers] == [503, 503, 503], [r.text for r in answers]
        assert health.status_code == 503 and health.json()["database"].startswith("unavailable")
        assert silent_database.accepted, "the relay never reached the silent server"


class FreezingProxy:
    """A TCP proxy to PostgreSQL that can stop relaying bytes (a partition, a frozen host): the
    server never sees the query, so no server-side timeout can end it."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.frozen = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="freezing-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._target_port))
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            while self.frozen.is_set() and not self._closed.is_set():
                self._closed.wait(0.05)  # hold the bytes: nothing reaches the other side
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._closed.set()
        for sock in [self._sock, *self._sockets]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def test_a_database_that_stops_answering_mid_connection_gets_503_within_the_budget(
    pg_database: str, pg_conn: psycopg.Connection
) -> None:
    database = urlsplit(pg_database)
    proxy = FreezingProxy(database.port or 5432)
    through_proxy = database._replace(
        netloc=f"{database.netloc.rsplit('@', 1)[0]}@127.0.0.1:{proxy.port}"
    ).geturl()
    try:
        with served_relay(through_proxy) as base:
            body = body_of({"action": "opened", "repository": {"id": 1, "full_name": "o/r"}})
            assert post_all(f"{base}/webhooks/github", body, [str(uuid.uuid4())])[0].status_code == 202
            proxy.frozen.set()
            answers = post_all(f"{base}/webhooks/github", body, [str(uuid.uuid4()) for _ in range(2)])
            assert [r.status_code for r in answers] == [503, 503], [r.text for r in answers]
    finally:
        proxy.close()
