"""Shared machinery of the benchmark suite: the simulator process, scratch databases, measured children.

Every measured sync runs in a child process (``python -m tests.benchmarks.worker``) so that
its peak memory is its own ``ru_maxrss`` (read with ``os.wait4``) and its wall time includes
nothing of the suite. The simulator runs as its own process too (``github-sim``), so it does
not share a GIL with the client it serves.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from tests.support.simulators import ready_url

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent
PG_SERVER_DSN = os.environ.get("GITHUB_SYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
OWNER = "acme"
TOKEN = "ghp_benchmark_token_0123456789abcdef"
LOG_DIR = BENCH_DIR / "results" / "tmp"  # gitignored
# Generating a large organisation takes a while on a busy machine.
SIM_START_TIMEOUT_S = 120


@dataclass
class SimProcess:
    """A ``github-sim`` server in its own process, driven over its ``/_sim`` control API."""

    repos: int
    latency_ms: int
    seed: int = 1
    url: str = ""
    process: subprocess.Popen[str] | None = None
    session: requests.Session = field(default_factory=requests.Session)

    def start(self) -> SimProcess:
        """Start the server and wait for its ready line (it carries the chosen port)."""
        cmd = [
            sys.executable, "-m", "github_sim.cli", "--port", "0", "--owner", OWNER,
            "--repos", str(self.repos), "--seed", str(self.seed), "--latency-ms", str(self.latency_ms),
            "--log-level", "INFO",
        ]  # fmt: skip
        # INFO: the ready line (with the chosen port) is logged at INFO; the rest is drained.
        self.process = subprocess.Popen(
            cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True
        )
        try:
            self.url = ready_url(self.process, timeout=SIM_START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        log.info("Simulator: %d repositories, %d ms latency, at %s", self.repos, self.latency_ms, self.url)
        return self

    def stop(self) -> None:
        """Stop the server (its own process group)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def stats(self) -> dict[str, Any]:
        """``/_sim/stats``: requests_total, budget_spent, not_modified, by_endpoint, by_status..."""
        return dict(self.session.get(f"{self.url}/_sim/stats", timeout=10).json())

    def reset_stats(self) -> None:
        """Zero the simulator's counters before a measured run."""
        self.session.post(f"{self.url}/_sim/reset-stats", timeout=10).raise_for_status()

    def mutate(self, mutation: str, **kwargs: Any) -> Any:
        """Call ``POST /_sim/state/{mutation}`` (create_issue, push_commits, ...)."""
        response = self.session.post(f"{self.url}/_sim/state/{mutation}", json=kwargs, timeout=30)
        response.raise_for_status()
        return response.json()["result"]

    def info(self) -> dict[str, Any]:
        return dict(self.session.get(f"{self.url}/_sim/info", timeout=10).json())

    def set_webhook(self, url: str | None, secret: str = "") -> None:
        self.session.post(
            f"{self.url}/_sim/webhook", json={"url": url, "secret": secret}, timeout=10
        ).raise_for_status()


# ---------------------------------------------------------------------------------- databases


def database_url(name: str) -> str:
    return PG_SERVER_DSN.rsplit("/", 1)[0] + f"/{name}"


def create_database(prefix: str, *, migrate: bool = True) -> str:
    """Create a fresh (migrated) scratch database; return its URL."""
    from github_sync.store.migrations import apply_migrations

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_SERVER_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    if migrate:
        with psycopg.connect(url, autocommit=True) as conn:
            apply_migrations(conn)
    return url


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_SERVER_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database(prefix: str, *, migrate: bool = True) -> Iterator[str]:
    url = create_database(prefix, migrate=migrate)
    try:
        yield url
    finally:
        drop_database(url)


# The product's tables, emptied between measured full syncs so that each starts cold.
PRODUCT_TABLES = (
    "webhook_deliveries", "github_http_cache", "sync_cursors", "import_logs", "project_metrics",
    "commits", "pull_requests", "bugs", "projects", "sync_repository_runs", "sync_runs",
)  # fmt: skip


def reset_product_database(url: str) -> None:
    """Empty every product table (a cold start: no rows, no cursors, no ETags)."""
    with psycopg.connect(url, autocommit=True) as conn:
        existing = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
                (list(PRODUCT_TABLES),),
            )
        }
        tables = [t for t in PRODUCT_TABLES if t in existing]
        conn.execute("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE")


def table_counts(url: str, tables: Sequence[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # type: ignore[index]


# ---------------------------------------------------------------------------------- measured children


@dataclass
class ChildResult:
    """What one measured child process reported, plus what the parent measured."""

    wall_s: float
    peak_rss_mb: float
    result: dict[str, Any]


def run_child(
    task: str, args: Mapping[str, Any], *, timeout: float = 3600, env: Mapping[str, str] | None = None
) -> ChildResult:
    """Run ``tests.benchmarks.worker <task>`` in a child process; time it and read its ``ru_maxrss``.

    The child writes its JSON result to a file (not stdout: a full pipe would block it
    while the parent sits in ``wait4``).
    """
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = out.name
    cmd = [sys.executable, "-m", "tests.benchmarks.worker", task, json.dumps(dict(args)), out_path]
    child_env = {**os.environ, **(env or {})}
    child_env.setdefault("PYTHONPATH", f"{REPO_ROOT / 'plugins'}:{REPO_ROOT}")
    # The children's logs (PostgresHook logs every insert_rows call) go to a gitignored file.
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_file = (LOG_DIR / "workers.log").open("ab")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=child_env, stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    timer = threading.Timer(timeout, lambda: proc.kill())
    timer.start()
    try:
        # wait4 gives the child's own resource usage (ru_maxrss in KiB on Linux).
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    try:
        text = Path(out_path).read_text()
        result = json.loads(text) if text else {}
    finally:
        Path(out_path).unlink(missing_ok=True)
    if proc.returncode != 0 or "error" in result:
        raise RuntimeError(
            f"benchmark worker {task} failed (exit {proc.returncode}): {result.get('error')}; see {LOG_DIR}/workers.log"
        )
    return ChildResult(wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024, result=result)


# ---------------------------------------------------------------------------------- figures


@dataclass
class Figure:
    """A measured quantity over several runs: median, min, max (and every sample)."""

    samples: list[float]

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples)) if self.samples else float("nan")

    def as_dict(self) -> dict[str, Any]:
        if not self.samples:
            return {"median": None, "min": None, "max": None, "n": 0, "samples": []}
        return {
            "median": round(self.median, 3),
            "min": round(min(self.samples), 3),
            "max": round(max(self.samples), 3),
            "n": len(self.samples),
            "samples": [round(s, 3) for s in self.samples],
        }


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 50 samples = the 48th smallest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return float(ordered[rank - 1])


@dataclass
class Measurement:
    """One run of one scenario on one system."""

    budget: int | None = None
    requests: int | None = None
    not_modified: int | None = None
    wall_s: float | None = None
    peak_rss_mb: float | None = None
    rows: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


FIGURES = ("budget", "requests", "not_modified", "wall_s", "peak_rss_mb", "rows")


def measured(child: ChildResult, sim_stats: Mapping[str, Any] | None, rows: int | None) -> Measurement:
    """A measurement from a child run and the simulator counters of the same run."""
    return Measurement(
        budget=int(sim_stats["budget_spent"]) if sim_stats else None,
        requests=int(sim_stats["requests_total"]) if sim_stats else None,
        not_modified=int(sim_stats["not_modified"]) if sim_stats else None,
        wall_s=child.wall_s,
        peak_rss_mb=child.peak_rss_mb,
        rows=rows,
        extra={
            **{k: v for k, v in child.result.items() if k not in ("rows",)},
            **({"by_endpoint": sim_stats.get("by_endpoint", {})} if sim_stats else {}),
        },
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    from github_sync.devtools.local_airflow import free_port as _free_port

    return _free_port()
