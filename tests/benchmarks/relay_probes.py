"""``python -m tests.benchmarks.relay_probes``: the relay against slow and hostile clients, measured.

Starts a real ``github-sync-relay`` (its defaults, on a scratch database, no Airflow) and
measures, each probe on its own:

* **silent connections**: how long the relay keeps a connection that sends nothing (the
  header deadline, default 10 s; target: closed within it);
* **20 parallel unsigned 25 MB posts**: refused from their headers; the relay's peak
  resident memory (``VmHWM``) before and after;
* **20 parallel wrongly signed 25 MB posts**: each body is read through the HMAC into the
  disk spool and refused; peak resident memory (target: under 150 MB);
* **small signed deliveries**: the relay's answer time, sequentially (median, p95).

Prints a Markdown table and writes ``tests/benchmarks/results/relay_probes.json``. Not a
test: nothing here asserts, the figures go into the README and closing notes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from github_sync.webhooks.relay.signature import compute_signature
from tests.benchmarks.common import free_port, percentile, scratch_database
from tests.polling import wait_until

log = logging.getLogger(__name__)

RESULTS = Path(__file__).with_name("results") / "relay_probes.json"
SECRET = "relay-probe-secret"
BIG_BYTES = 25 * 1024 * 1024
PARALLEL_POSTS = 20
SILENT_CONNECTIONS = 5
SMALL_DELIVERIES = 200
# Far past the default header deadline (10 s): a probe that reaches it has found a hang.
STUCK_S = 60.0
CHUNK = b"x" * (256 * 1024)


def _memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def _silent_connection_lifetime(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=STUCK_S) as sock:
        started = time.monotonic()
        try:
            while sock.recv(1024):
                pass
        except TimeoutError:
            return float("inf")
        except ConnectionResetError:
            pass
        return time.monotonic() - started


def _big_post(port: int, fields: dict[str, str], send_body: bool) -> int:
    head = [
        "POST /webhooks/github HTTP/1.1",
        "Host: relay",
        "Content-Type: application/json",
        f"Content-Length: {BIG_BYTES}",
        "X-GitHub-Event: push",
        f"X-GitHub-Delivery: {uuid.uuid4()}",
        *(f"{k}: {v}" for k, v in fields.items()),
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=STUCK_S) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0
        try:
            while send_body and sent < BIG_BYTES:
                piece = CHUNK[: BIG_BYTES - sent]
                sock.sendall(piece)
                sent += len(piece)
        except OSError:
            pass  # refused early: the relay closed the connection while we were sending
        answer = sock.recv(4096)
    return int(answer.split(b" ", 2)[1]) if answer else 0


def _parallel(port: int, fields: dict[str, str], send_body: bool) -> dict[str, Any]:
    started = time.monotonic()
    with ThreadPoolExecutor(PARALLEL_POSTS) as pool:
        statuses = list(pool.map(lambda _: _big_post(port, fields, send_body), range(PARALLEL_POSTS)))
    return {"statuses": sorted(set(statuses)), "wall_s": round(time.monotonic() - started, 2)}


def _small_delivery_times(port: int) -> list[float]:
    session = requests.Session()
    body = json.dumps({"action": "created", "repository": {"id": 1, "full_name": "acme/app"}}).encode()
    times = []
    for _ in range(SMALL_DELIVERIES):
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "star",  # stored as ignored: nothing to forward
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": compute_signature(SECRET, body),
        }
        started = time.perf_counter()
        response = session.post(
            f"http://127.0.0.1:{port}/webhooks/github", data=body, headers=headers, timeout=10
        )
        times.append(time.perf_counter() - started)
        if response.status_code != 202:
            raise RuntimeError(f"a signed delivery got {response.status_code}: {response.text[:200]}")
    return times


def run(workdir: Path) -> dict[str, Any]:
    """Start a relay and run every probe; return the figures."""
    port = free_port()
    with scratch_database("bench_relay") as database_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "GITHUB_"))}
        env |= {
            "GITHUB_WEBHOOK_SECRET": SECRET,
            "GITHUB_SYNC_DATABASE_URL": database_url,
            "AIRFLOW_API_URL": "http://127.0.0.1:9",
            "GITHUB_SYNC_RELAY_PORT": str(port),
        }
        workdir.mkdir(parents=True, exist_ok=True)
        log_file = (workdir / "relay_probes.log").open("ab")
        relay = subprocess.Popen(
            [str(Path(sys.executable).with_name("github-sync-relay"))],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:

            def ready() -> bool:
                try:
                    return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
                except requests.RequestException:
                    return False

            wait_until(ready, timeout=60, interval=0.1, message="relay ready")
            figures: dict[str, Any] = {"rss_at_start_mb": round(_memory_mb(relay.pid, "VmRSS"), 1)}
            with ThreadPoolExecutor(SILENT_CONNECTIONS) as pool:
                lifetimes = list(
                    pool.map(lambda _: _silent_connection_lifetime(port), range(SILENT_CONNECTIONS))
                )
            figures["silent_connection_closed_after_s"] = round(statistics.median(lifetimes), 2)
            figures["unsigned_25mb_x20"] = _parallel(port, {}, send_body=True)
            figures["unsigned_25mb_x20"]["peak_rss_mb"] = round(_memory_mb(relay.pid, "VmHWM"), 1)
            wrong = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
            figures["wrong_signature_25mb_x20"] = _parallel(port, wrong, send_body=True)
            figures["wrong_signature_25mb_x20"]["peak_rss_mb"] = round(_memory_mb(relay.pid, "VmHWM"), 1)
            small = _small_delivery_times(port)
            figures["small_delivery_ms"] = {
                "median": round(statistics.median(small) * 1000, 1),
                "p95": round(percentile(small, 95) * 1000, 1),
                "n": len(small),
            }
            return figures
        finally:
            relay.terminate()
            relay.wait(30)
            log_file.close()


def main(argv: list[str] | None = None) -> int:
    """Run the probes, print the table, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.relay_probes", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    figures = run(args.results.parent / "tmp")
    args.results.write_text(json.dumps(figures, indent=2) + "\n")
    rows = [
        ("silent connection closed after (median of 5)", f"{figures['silent_connection_closed_after_s']} s", "within the header timeout (10 s)"),
        ("20 parallel unsigned 25 MB posts", f"{figures['unsigned_25mb_x20']['statuses']} in {figures['unsigned_25mb_x20']['wall_s']} s, peak RSS {figures['unsigned_25mb_x20']['peak_rss_mb']} MB", "< 150 MB"),
        ("20 parallel wrongly signed 25 MB posts", f"{figures['wrong_signature_25mb_x20']['statuses']} in {figures['wrong_signature_25mb_x20']['wall_s']} s, peak RSS {figures['wrong_signature_25mb_x20']['peak_rss_mb']} MB", "< 150 MB"),
        ("small signed delivery answered", f"median {figures['small_delivery_ms']['median']} ms, p95 {figures['small_delivery_ms']['p95']} ms", ""),
    ]  # fmt: skip
    sys.stdout.write(
        f"relay at start: {figures['rss_at_start_mb']} MB resident\n\n| probe | measured | target |\n|---|---|---|\n"
    )
    for probe, value, target in rows:
        sys.stdout.write(f"| {probe} | {value} | {target} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
