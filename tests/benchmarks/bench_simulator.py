"""Benchmark of the GitHub simulator: startup time for 180 repositories and requests per second.

A script, not a test (timings are not asserted in the test suite)::

    .venv/bin/python -m tests.benchmarks.bench_simulator [--repos 180] [--seconds 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import requests

from github_sim import Simulator, SimulatorConfig
from tests.support.simulators import ready_url

log = logging.getLogger("bench_simulator")

START_TIMEOUT_S = 120


def _paths(names: list[str]) -> list[str]:
    # A sync-like mix: repository gets, small issue/commit pages, languages.
    out: list[str] = []
    for name in names[:40]:
        out += [
            f"/repos/acme/{name}",
            f"/repos/acme/{name}/issues?state=all&per_page=10",
            f"/repos/acme/{name}/commits?per_page=10",
            f"/repos/acme/{name}/languages",
        ]
    return out


def start_in_process(repos: int) -> tuple[str, Callable[[], None]]:
    """Start a simulator in this process; return (url, stop)."""
    sim = Simulator(SimulatorConfig(owner="acme", repos=repos, seed=1, rate_limit=10**9))
    sim.start()
    return sim.url, sim.stop


def start_subprocess(repos: int) -> tuple[str, Callable[[], None]]:
    """Start ``github-sim`` in its own process (clients then do not share its GIL)."""
    cmd = [sys.executable, "-m", "github_sim.cli", "--port", "0", "--repos", str(repos)]
    cmd += ["--rate-limit", str(10**9)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        url = ready_url(proc, timeout=START_TIMEOUT_S)  # its reader keeps the pipe drained
    except BaseException:
        proc.kill()
        proc.wait(timeout=10)
        raise

    def stop() -> None:
        proc.terminate()
        proc.wait(timeout=10)

    return url, stop


def run(repos: int, seconds: float, clients: int, conditional: bool, external: bool) -> dict[str, float]:
    """Start a simulator, hammer it from ``clients`` threads, return the figures."""
    start = time.perf_counter()
    url, stop_server = (start_subprocess if external else start_in_process)(repos)
    requests.get(f"{url}/rate_limit", timeout=5)  # first answer = server is up
    startup = time.perf_counter() - start
    names = [n for n in requests.get(f"{url}/_sim/info", timeout=5).json()["repos"]]
    paths = _paths(names[2:])
    counts = [0] * clients
    stop = threading.Event()

    def client(n: int) -> None:
        # http.client keep-alive: ``requests`` costs ~1 ms of client CPU per call and would
        # measure itself rather than the server on a 2-core machine.
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        etags: dict[str, str] = {}
        for path in itertools.cycle(paths[n::clients] or paths):
            if stop.is_set():
                break
            headers = {"Authorization": f"Bearer bench-{n}"}
            if conditional and path in etags:
                headers["If-None-Match"] = etags[path]
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            etag = resp.getheader("ETag")
            if etag:
                etags[path] = etag
            counts[n] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)  # the measurement window itself: the clients run for exactly this long
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    stats = requests.get(f"{url}/_sim/stats", timeout=5).json()
    stop_server()
    return {
        "startup_s": round(startup, 3),
        "requests": sum(counts),
        "requests_per_s": round(sum(counts) / elapsed, 1),
        "not_modified": stats["not_modified"],
        # 409 is expected: empty repositories answer commits with "Git Repository is empty."
        "errors": sum(v for k, v in stats["by_status"].items() if int(k) >= 400 and int(k) != 409),
    }


def main() -> None:
    """Parse arguments, run the mixes and log the figures as JSON lines."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repos", type=int, default=180)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--clients", type=int, default=4)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    for external in (True, False):
        for conditional in (False, True):
            figures = run(args.repos, args.seconds, args.clients, conditional, external)
            where = "subprocess" if external else "in-process"
            log.info(
                "%s",
                json.dumps({"server": where, "conditional": conditional, "clients": args.clients, **figures}),
            )


if __name__ == "__main__":
    main()
