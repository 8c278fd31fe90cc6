"""Benchmark of the per-request overhead of a BudgetStore: in memory vs shared in PostgreSQL.

A script, not a test (timings are not asserted in the test suite)::

    .venv/bin/python -m tests.benchmarks.bench_shared_budget [--requests 2000] [--threads 8]

Each request is what the hook does around one GitHub call: ``try_acquire`` -> ``record`` ->
``release``, timed together, with no GitHub call in between (the overhead alone). Every thread
uses the same credential and resource, the worst case: every admission locks one row. The
PostgreSQL variants run on a scratch database of their own:

* ``postgres (shared)``: one ``PostgresBudget`` (one connection) for every thread, as a process uses it;
* ``postgres (one per thread)``: one instance per thread, i.e. what a connection pool would give at best.

Prints a Markdown table and writes ``tests/benchmarks/results/shared_budget.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import platform
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from github_sync.github.budget import BudgetStore, InMemoryBudget
from github_sync.github.ratelimit import RESOURCE_CORE, RateLimit
from github_sync.github.shared_budget import PostgresBudget
from tests.benchmarks.common import scratch_database

log = logging.getLogger("bench_shared_budget")

RESULTS = Path(__file__).resolve().parent / "results" / "shared_budget.json"
KEY = "bench-credential"
# A window that never reaches its reserve during the run: every acquire is admitted (the fast path).
LIMIT = 10**9
# Requests before the timed ones (connection, plans, caches), per thread.
WARMUP = 50


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(stores: list[BudgetStore], threads: int, requests: int) -> dict[str, Any]:
    """Time ``requests`` acquire+record+release per thread; thread ``n`` uses ``stores[n % len]``."""
    reset = datetime.now(UTC) + timedelta(hours=1)
    remaining = itertools.count(LIMIT - 1, -1)  # GitHub's remaining only goes down
    counter_lock = threading.Lock()
    samples: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def one_request(store: BudgetStore) -> float:
        with counter_lock:
            left = next(remaining)
        t0 = time.perf_counter()
        admitted = store.try_acquire(KEY, RESOURCE_CORE, now=datetime.now(UTC))
        assert admitted is None, admitted
        store.record(KEY, RateLimit(limit=LIMIT, remaining=left, used=LIMIT - left, reset=reset))
        store.release(KEY, RESOURCE_CORE)
        return time.perf_counter() - t0

    def worker(n: int) -> None:
        store = stores[n % len(stores)]
        for _ in range(WARMUP):
            one_request(store)
        start.wait()
        samples[n] = [one_request(store) for _ in range(requests)]

    stats_before = [_stats(store) for store in stores]
    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - t0
    stats_after = [_stats(store) for store in stores]
    flat = [s for per_thread in samples for s in per_thread]
    total = threads * (requests + WARMUP)
    statements = sum(a[0] - b[0] for a, b in zip(stats_after, stats_before, strict=True))
    round_trips = sum(a[1] - b[1] for a, b in zip(stats_after, stats_before, strict=True))
    return {
        "threads": threads,
        "requests": len(flat),
        "median_us": round(statistics.median(flat) * 1e6, 1),
        "p95_us": round(_percentile(flat, 0.95) * 1e6, 1),
        "requests_per_s": round(total / wall, 0),
        "statements_per_request": round(statements / total, 2),
        "round_trips_per_request": round(round_trips / total, 2),
    }


def _stats(store: BudgetStore) -> tuple[int, int]:
    if isinstance(store, PostgresBudget):
        stats = store.stats
        return stats.statements, stats.round_trips
    return 0, 0


def _reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE github_rate_limits, github_rate_limit_leases, github_credential_pauses")


def main() -> None:
    """Run every variant side by side; print the table and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000, help="timed requests per thread")
    p.add_argument("--threads", type=int, default=8, help="threads of the concurrent runs")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    rows: list[dict[str, Any]] = []
    with scratch_database("bench_budget") as url:
        variants: list[tuple[str, int, Callable[[int], list[BudgetStore]]]] = [
            ("in memory", 1, lambda n: [InMemoryBudget()]),
            ("postgres (shared)", 1, lambda n: [PostgresBudget(url)]),
            ("in memory", args.threads, lambda n: [InMemoryBudget()]),
            ("postgres (shared)", args.threads, lambda n: [PostgresBudget(url)]),
            ("postgres (one per thread)", args.threads, lambda n: [PostgresBudget(url) for _ in range(n)]),
        ]
        for name, threads, make in variants:
            _reset(url)
            stores = make(threads)
            figures = run(stores, threads, args.requests // threads if threads > 1 else args.requests)
            for store in stores:
                if isinstance(store, PostgresBudget):
                    assert store.stats.fallbacks == 0, "the database failed during the run"
                    store.close()
            rows.append({"store": name, **figures})
            log.info("%s", json.dumps(rows[-1]))
    header = (
        "| store | threads | median µs | p95 µs | requests/s | statements/request | round trips/request |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['threads']} | {r['median_us']:.0f} | {r['p95_us']:.0f} "
            f"| {r['requests_per_s']:.0f} | {r['statements_per_request']} | {r['round_trips_per_request']} |"
        )
    table = "\n".join(lines)
    print(table)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "requests_per_run": args.requests,
        "warmup_per_thread": WARMUP,
        "note": "acquire+record+release per request, one credential and resource, PostgreSQL on 127.0.0.1",
    }
    args.results.write_text(json.dumps({"meta": meta, "results": rows, "markdown": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
