"""The relay against hostile and broken clients, on a real ``github-sync-relay`` process and raw sockets.

Each case is one a public endpoint meets: a connection that sends nothing, headers trickled
one line at a time, a body sent byte by byte, more clients than the relay serves at once,
unsigned or malformed requests announcing a 25 MB body (refused before any of it is read),
and the internal routes asked for without the admin token. The relay runs with one-second
deadlines so that each case ends quickly; the deadlines' defaults are tested in test_settings.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.webhooks.airflow_stub import free_port
from tests.webhooks.helpers import ADMIN, ADMIN_TOKEN, SECRET, body_of, headers
from tests.webhooks.test_cli import relay_env, start_relay

# The relay's deadlines in this module (seconds), and how long a test waits before it calls
# the relay stuck: far above the deadlines, so a pass never depends on timing.
DEADLINE = 1
STUCK = 15.0
MAX_CONCURRENCY = 4
# What an unsigned request may announce: GitHub's cap.
ANNOUNCED_BYTES = 25 * 1024 * 1024


class Relay:
    """A running relay process and how to reach it."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=STUCK)
        return sock


def _start(tmp: Path, database_url: str, extra: dict[str, str]) -> Iterator[Relay]:
    port = free_port()
    env = relay_env(database_url, "http://127.0.0.1:9", port)  # no Airflow: forwarding fails
    env.update(extra)
    processes: list[subprocess.Popen[bytes]] = []
    relay = Relay(port, tmp / "relay.log")
    start_relay(env, relay.log_path, processes)
    try:
        yield relay
    finally:
        for process in processes:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def relay(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    """A relay with one-second deadlines and room for four clients at once."""
    yield from _start(
        tmp_path_factory.mktemp("relay"),
        pg_database,
        {
            "GITHUB_SYNC_RELAY_HEADER_TIMEOUT_SECONDS": str(DEADLINE),
            "GITHUB_SYNC_RELAY_BODY_TIMEOUT_SECONDS": str(DEADLINE),
            "GITHUB_SYNC_RELAY_IDLE_TIMEOUT_SECONDS": str(DEADLINE),
            "GITHUB_SYNC_RELAY_MAX_CONCURRENCY": str(MAX_CONCURRENCY),
        },
    )


def closed_by_relay(sock: socket.socket) -> bytes:
    """Everything the relay sends until it closes the connection (fails if it never does)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the relay kept the connection open for {STUCK:g} s (received {received[:200]!r})")
    except ConnectionResetError:
        pass
    return received


def request_head(path: str, fields: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: relay"] + [f"{k}: {v}" for k, v in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def stored(conn: psycopg.Connection, delivery_id: str) -> bool:
    conn.commit()
    return (
        conn.execute("SELECT 1 FROM webhook_deliveries WHERE delivery_id = %s", (delivery_id,)).fetchone()
        is not None
    )


def test_a_silent_connection_is_closed(relay: Relay) -> None:
    with relay.connect() as sock:
        assert closed_by_relay(sock) == b""


def test_headers_trickled_line_by_line_are_cut_off(relay: Relay) -> None:
    with relay.connect() as sock:
        sock.sendall(b"POST /webhooks/github HTTP/1.1\r\n")
        assert trickled_until_closed(sock, lambda: f"X-Filler-{uuid.uuid4().hex[:6]}: x\r\n".encode())


def test_a_body_sent_byte_by_byte_gets_408_and_is_not_stored(
    relay: Relay, pg_conn: psycopg.Connection
) -> None:
    body = body_of({"zen": "Slow is smooth."})
    delivery_id = str(uuid.uuid4())
    fields = headers(body, "ping", delivery_id) | {"Content-Length": str(len(body))}
    with relay.connect() as sock:
        sock.sendall(request_head("/webhooks/github", fields))
        answer = b""
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)
            sock.setblocking(False)
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
            if answer:
                break
        answer += closed_by_relay(sock)
    assert status_of(answer) == 408, answer
    assert b"send the whole request at once" in answer
    assert not stored(pg_conn, delivery_id)


def test_an_idle_keep_alive_connection_is_closed(relay: Relay) -> None:
    with relay.connect() as sock:
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: relay\r\n\r\n")
        answer = closed_by_relay(sock)  # the answer, then nothing until the relay hangs up
    assert status_of(answer) == 200 and answer.endswith(b'"database":"ok"}')


@pytest.mark.parametrize(
    ("case", "fields", "status"),
    [
        ("no signature", {"X-GitHub-Event": "push", "X-GitHub-Delivery": "abc-1"}, 401),
        ("sha1 only", {"X-Hub-Signature": "sha1=" + "0" * 40, "X-GitHub-Event": "push", "X-GitHub-Delivery": "abc-2"}, 401),
        ("malformed signature", {"X-Hub-Signature-256": "sha256=xyz", "X-GitHub-Event": "push", "X-GitHub-Delivery": "abc-3"}, 401),
        ("no event", {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Delivery": "abc-4"}, 400),
        ("bad delivery id", {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "push", "X-GitHub-Delivery": "../x"}, 400),
        ("over 25 MB", {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "push", "X-GitHub-Delivery": "abc-5", "Content-Length": str(ANNOUNCED_BYTES + 1)}, 413),
    ],
)  # fmt: skip
def test_a_request_that_cannot_be_valid_is_refused_before_its_body(
    relay: Relay, case: str, fields: dict[str, str], status: int
) -> None:
    fields = {"Content-Length": str(ANNOUNCED_BYTES), "Content-Type": "application/json"} | fields
    with relay.connect() as sock:
        # Only the headers: a relay that waited for the announced body would never answer.
        sock.sendall(request_head("/webhooks/github", fields))
        answer = closed_by_relay(sock)
    assert status_of(answer) == status, (case, answer[:300])
    assert b"connection: close" in answer.lower(), case


def test_a_wrongly_signed_body_is_read_through_and_refused(relay: Relay, pg_conn: psycopg.Connection) -> None:
    body = b'{"zen": "' + b"x" * (3 * 1024 * 1024) + b'"}'  # past the in-memory spool
    delivery_id = str(uuid.uuid4())
    response = httpx.post(
        f"{relay.url}/webhooks/github",
        content=body,
        headers=headers(body, "ping", delivery_id, secret="wrong"),
    )
    assert response.status_code == 401 and "does not match" in response.json()["detail"]
    assert not stored(pg_conn, delivery_id)
    signed = httpx.post(
        f"{relay.url}/webhooks/github", content=body, headers=headers(body, "ping", delivery_id)
    )
    assert signed.status_code == 202, "the same large body, signed, is stored whole"
    pg_conn.commit()
    row = pg_conn.execute(
        "SELECT length(payload->>'zen') FROM webhook_deliveries WHERE delivery_id = %s", (delivery_id,)
    ).fetchone()
    assert row == (3 * 1024 * 1024,)


def test_more_clients_than_the_cap_get_503_until_they_are_gone(
    relay: Relay, pg_conn: psycopg.Connection
) -> None:
    hogs = [relay.connect() for _ in range(MAX_CONCURRENCY)]
    try:
        time.sleep(0.2)  # let the relay accept them all (a race here can only make the 503 miss)
        body = body_of({"zen": "Crowded."})
        refused = httpx.post(f"{relay.url}/webhooks/github", content=body, headers=headers(body, "ping"))
        assert refused.status_code == 503
    finally:
        for hog in hogs:
            hog.close()
    delivery_id = str(uuid.uuid4())
    accepted = httpx.post(
        f"{relay.url}/webhooks/github", content=body, headers=headers(body, "ping", delivery_id)
    )
    assert accepted.status_code == 202 and stored(pg_conn, delivery_id)


def test_healthz_reports_failing_forwarding_without_internals(relay: Relay) -> None:
    body = body_of({"zen": "To forward."})
    assert (
        httpx.post(f"{relay.url}/webhooks/github", content=body, headers=headers(body, "ping")).status_code
        == 202
    )
    # ping is forwarded like every handled event; Airflow (port 9) refuses.
    started = time.monotonic()
    while (
        health := httpx.get(f"{relay.url}/healthz")
    ).status_code == 200 and time.monotonic() - started < STUCK:
        time.sleep(0.1)
    assert health.status_code == 503
    report = health.json()
    assert (report["status"], report["forwarding"], report["database"]) == ("degraded", "failing", "ok")
    assert report["consecutive_failures"] >= 1 and report["failing_since"]
    assert "127.0.0.1:9" not in health.text and "http" not in health.text, "no Airflow URL on a public route"
    assert httpx.get(f"{relay.url}/readyz").json() == {"status": "ready", "database": "ok"}


def test_admin_routes_need_the_admin_token(relay: Relay) -> None:
    for path in ("/stats", "/openapi.json"):
        assert httpx.get(relay.url + path).status_code == 401, path
        wrong = httpx.get(relay.url + path, headers={"Authorization": "Bearer " + "x" * len(ADMIN_TOKEN)})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer", path
        assert httpx.get(relay.url + path, headers=ADMIN).status_code == 200, path
    for path in ("/docs", "/redoc"):
        assert httpx.get(relay.url + path).status_code == 404
    stats = httpx.get(f"{relay.url}/stats", headers=ADMIN).text
    assert "127.0.0.1:9" not in stats, "the Airflow URL stays in the log"
    assert SECRET not in stats and ADMIN_TOKEN not in stats


def test_without_an_admin_token_the_admin_routes_do_not_exist(pg_database: str, tmp_path: Path) -> None:
    started = _start(tmp_path, pg_database, {"GITHUB_SYNC_RELAY_ADMIN_TOKEN": ""})
    plain = next(started)
    try:
        for path in ("/stats", "/openapi.json"):
            assert httpx.get(plain.url + path, headers=ADMIN).status_code == 404, path
    finally:
        started.close()


def _outward_address() -> str | None:
    # The address this machine would use towards another host (no packet is sent for UDP connect).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_by_default_the_relay_listens_on_loopback_only(pg_database: str, tmp_path: Path) -> None:
    address = _outward_address()
    assert address is not None, "this machine has no non-loopback IPv4 address to test with"
    started = _start(tmp_path, pg_database, {"GITHUB_SYNC_RELAY_HOST": ""})  # blank: the default
    plain = next(started)
    try:
        assert httpx.get(f"{plain.url}/readyz").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{address}:{plain.port}/readyz", timeout=5)
    finally:
        started.close()


def test_a_signed_delivery_that_can_never_be_stored_gets_400_not_503(
    relay: Relay, pg_conn: psycopg.Connection
) -> None:
    # The real process: the whole path from the socket to PostgreSQL (tests/webhooks/test_unstorable.py has every case).
    never = b'{"action": "created", "score": NaN, "repository": {"id": 1, "full_name": "acme/app"}}'
    never_id = str(uuid.uuid4())
    refused = httpx.post(
        f"{relay.url}/webhooks/github", content=never, headers=headers(never, "star", never_id)
    )
    assert refused.status_code == 400 and "can never be stored" in refused.json()["detail"]
    assert not stored(pg_conn, never_id)
    cleaned = b'{"action": "crea\\u0000ted", "repository": {"id": 1, "full_name": "acme/a\\u0000pp"}}'
    cleaned_id = str(uuid.uuid4())
    accepted = httpx.post(
        f"{relay.url}/webhooks/github", content=cleaned, headers=headers(cleaned, "star", cleaned_id)
    )
    assert accepted.status_code == 202
    row = pg_conn.execute(
        "SELECT action, repository FROM webhook_deliveries WHERE delivery_id = %s", (cleaned_id,)
    ).fetchone()
    assert row is not None and "\x00" not in row[0] + row[1]
    counts = httpx.get(f"{relay.url}/stats", headers=ADMIN).json()["requests"]
    assert counts["rejected_unstorable"] >= 1 and "store_errors" not in counts


@pytest.mark.parametrize(
    "request_line",
    [
        "GET /readyz HTTP/1.1",
        "GET /no-such-route HTTP/1.1",
        "GET /stats HTTP/1.1",
        "PUT /webhooks/github HTTP/1.1",
    ],
)
def test_a_connection_answered_before_its_body_is_closed(relay: Relay, request_line: str) -> None:
    # Each route answers without reading the announced body; a client trickling that body
    # byte by byte after the answer must not keep the connection (and a slot of the
    # concurrency cap) for ever: uvicorn's idle timer stops at the first byte.
    with relay.connect() as sock:
        sock.sendall(f"{request_line}\r\nHost: relay\r\nContent-Length: 1000\r\n\r\n".encode())
        answer = sock.recv(65536)
        assert status_of(answer) in (200, 401, 404, 405), answer[:200]
        assert trickled_until_closed(sock, lambda: b"x")


def trickled_until_closed(sock: socket.socket, piece: Callable[[], bytes]) -> bool:
    """Send a piece every 0.2 s until the relay closes the connection (True) or STUCK passes (False)."""
    sock.settimeout(0.2)
    started = time.monotonic()
    while time.monotonic() - started < STUCK:
        try:
            sock.sendall(piece())
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset or broken pipe: closed too
            return True
    return False
