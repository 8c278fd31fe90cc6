"""Scenarios 1-5 through a real Airflow 3 (LocalExecutor, metadata in PostgreSQL): what a user sees.

Airflow is started once with :func:`github_sync.devtools.local_airflow.start_local_airflow` (its own
AIRFLOW_HOME, metadata database and target database, scheduled runs switched off) and the
DAG runs are triggered over the REST API. Wall time is trigger -> run state ``success``
(polled every 0.25 s with ``tests.polling.wait_until``). Peak memory is the peak RSS of the largest process of the deployment
(api-server, scheduler and its LocalExecutor workers and task processes, dag-processor,
triggerer), sampled every 0.25 s (Airflow's task processes are not children of this
process, so ``ru_maxrss`` cannot be used); the peak of the summed RSS of all of them is kept
as ``deployment_rss_sum_mb`` (it over-counts the pages forked processes share).

Scenario 5 adds the webhook relay (``github-sync-relay``) and sends one simulator mutation
at a time (a new issue), timing mutation -> row visible in ``bugs``, split into relay,
Airflow scheduling and task time from ``webhook_deliveries`` and the task instance.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import psycopg
import requests

from tests.benchmarks.common import (
    OWNER,
    TOKEN,
    Measurement,
    SimProcess,
    create_database,
    drop_database,
    free_port,
    percentile,
    reset_product_database,
)
from tests.benchmarks.results import Results
from tests.benchmarks.scenarios import CHANGED, FULL, NOOP, ONE_REPO, PRODUCT_AIRFLOW, apply_changes
from tests.polling import wait_until

log = logging.getLogger(__name__)

POLL_S = 0.25
FINAL_RUN_STATES = ("success", "failed")
RUN_TIMEOUT_S = 1800  # a full sync of a big organisation on a busy machine
WEBHOOK_RUN_TIMEOUT_S = 120
CALLBACK_TIMEOUT_S = 15  # the success callback lands a moment after the run's state
CALLBACK_POLL_S = 0.2
RELAY_START_TIMEOUT_S = 60
RELAY_POLL_S = 0.5
DELIVERY_TIMEOUT_S = 300
# The burst case of scenario 5: this many issues created as fast as the simulator takes them.
WEBHOOK_BURST = 500
# Parallel mutation requests of the burst: enough to keep the simulator's delivery queue full.
BURST_SENDERS = 8
# Generous: 500 deliveries in a handful of runs take well under a minute on a small machine.
BURST_TIMEOUT_S = 600
# How often the burst's row count is read while waiting for the last row.
BURST_POLL_S = 0.1
# A delivery's row is looked for this often: the resolution of the measured latency.
ROW_POLL_S = 0.02
DAGS = ("github_full_sync", "github_incremental_sync", "github_repo_sync", "github_webhook_events")


class RssSampler:
    """Peak RSS of the largest process, and of the sum, of a set of process trees, sampled in a thread.

    The sum over-counts: LocalExecutor workers and task processes are forked and share pages.
    """

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.peak_mb = 0.0
        self.peak_sum_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> tuple[float, float]:
        total, largest = 0, 0
        for pid in self.roots:
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                largest = max(largest, rss)
        return largest / 2**20, total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            largest, total = self._sample()
            self.peak_mb = max(self.peak_mb, largest)
            self.peak_sum_mb = max(self.peak_sum_mb, total)
            self._stop.wait(POLL_S)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _conn_env(sim_url: str, dsn: str) -> dict[str, str]:
    db = urlsplit(dsn)
    return {
        "GITHUB_OWNER": OWNER,
        "GITHUB_SYNC_DATABASE_URL": dsn,
        # No scheduled runs: unpausing would otherwise create one at once.
        "GITHUB_SYNC_FULL_SCHEDULE": "none",
        "GITHUB_SYNC_INCREMENTAL_SCHEDULE": "none",
        "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps(
            {"conn_type": "github", "host": sim_url, "password": f"{TOKEN}_airflow"}
        ),
        "AIRFLOW_CONN_GITHUB_SYNC_DB": json.dumps(
            {
                "conn_type": "postgres",
                "host": db.hostname or "127.0.0.1",
                "port": db.port or 5432,
                "login": db.username or "postgres",
                "password": db.password or "",
                "schema": db.path.lstrip("/"),
            }
        ),
    }


class AirflowBench:
    """A local Airflow deployment for the benchmarks and the helpers to time DAG runs on it."""

    def __init__(self, sim: SimProcess) -> None:
        from github_sync.devtools.local_airflow import start_local_airflow

        self.sim = sim
        self.target = create_database("bench_af_target")
        self.metadata = create_database("bench_af_meta", migrate=False)
        self.home = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
        log.info("Starting Airflow (home %s) ...", self.home)
        self.airflow = start_local_airflow(
            home=self.home,
            metadata_url=self.metadata.replace("postgresql://", "postgresql+psycopg2://", 1),
            extra_env=_conn_env(sim.url, self.target),
        )
        self.airflow.wait_for_dags(DAGS)
        self.session = self.airflow.api()
        for dag_id in DAGS:
            self.session.patch(
                f"{self.airflow.api_url}/api/v2/dags/{dag_id}", json={"is_paused": False}, timeout=10
            ).raise_for_status()

    def close(self) -> None:
        self.airflow.stop()
        for url in (self.target, self.metadata):
            try:
                drop_database(url)
            except psycopg.Error as exc:
                log.warning("Could not drop %s: %s", url, exc)

    def run_state(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The DAG run as the REST API returns it (a fresh JWT if the old one expired)."""
        response = self.session.get(
            f"{self.airflow.api_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}", timeout=10
        )
        if response.status_code == 401:  # the JWT expired during a long suite
            self.session = self.airflow.api()
            return self.run_state(dag_id, run_id)
        response.raise_for_status()
        return dict(response.json())

    def timed_run(self, dag_id: str, conf: dict[str, Any]) -> Measurement:
        """Trigger ``dag_id``, wait for it; return its simulator counters, wall time and peak RSS."""
        self.sim.reset_stats()
        roots = [p.pid for p in self.airflow.processes.values()]
        with RssSampler(roots) as sampler:
            started = time.perf_counter()
            run_id = self.airflow.trigger(dag_id, conf)
            state = self.wait_for_final_state(dag_id, run_id, timeout=RUN_TIMEOUT_S)
            wall = time.perf_counter() - started
        if state != "success":
            raise RuntimeError(f"{dag_id} run {run_id} ended {state}; logs under {self.home}")
        stats = self.sim.stats()
        return Measurement(
            budget=int(stats["budget_spent"]),
            requests=int(stats["requests_total"]),
            not_modified=int(stats["not_modified"]),
            wall_s=wall,
            peak_rss_mb=sampler.peak_mb,
            rows=self._records(run_id),
            extra={
                "run_id": run_id,
                "deployment_rss_sum_mb": round(sampler.peak_sum_mb),
                "by_endpoint": stats.get("by_endpoint", {}),
            },
        )

    def wait_for_final_state(self, dag_id: str, run_id: str, *, timeout: float) -> str:
        """Poll the run until it is ``success`` or ``failed``; return that state."""

        def final_state() -> str | None:
            state = str(self.run_state(dag_id, run_id)["state"])
            return state if state in FINAL_RUN_STATES else None

        return wait_until(
            final_state, timeout=timeout, interval=POLL_S, message=f"{dag_id} run {run_id} finishing"
        )

    def _records(self, run_id: str) -> int | None:
        # import_logs is written by the DAG's success callback, which may land just after the state.
        # A figure, not a check: without the row the run is recorded with rows=None rather than
        # failing the whole benchmark, which is why this is not tests.polling.wait_until.
        deadline = time.monotonic() + CALLBACK_TIMEOUT_S
        with psycopg.connect(self.target, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT records_imported FROM import_logs WHERE metadata->>'run_id' = %s", (run_id,)
                ).fetchone()
                if row is not None:
                    return int(row[0])
                time.sleep(CALLBACK_POLL_S)
        return None


def run_airflow_syncs(
    bench: AirflowBench, results: Results, *, runs: int, changed: list[str], repository: str
) -> None:
    """Scenarios 1-4 on real Airflow. One repository first (cold), then full -> noop -> k changed,
    so that the database holds a full sync at the end (scenario 5 needs the projects)."""
    for n in range(runs):
        log.info("real Airflow, repetition %d/%d", n + 1, runs)
        reset_product_database(bench.target)
        results.add(
            ONE_REPO, PRODUCT_AIRFLOW, bench.timed_run("github_repo_sync", {"repository": repository})
        )
        reset_product_database(bench.target)
        results.add(FULL, PRODUCT_AIRFLOW, bench.timed_run("github_full_sync", {"owner": OWNER}))
        results.add(NOOP, PRODUCT_AIRFLOW, bench.timed_run("github_incremental_sync", {"owner": OWNER}))
        apply_changes(bench.sim, changed)
        results.add(CHANGED, PRODUCT_AIRFLOW, bench.timed_run("github_incremental_sync", {"owner": OWNER}))


def _ts(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def run_webhook(
    bench: AirflowBench, results: Results, *, deliveries: int, repos: list[str], coalesce_s: float | None
) -> None:
    """Scenario 5: ``deliveries`` mutations, one at a time, each timed until its row is visible."""
    secret = secrets.token_hex(16)
    port = free_port()
    env = {
        **os.environ,
        "GITHUB_WEBHOOK_SECRET": secret,
        "GITHUB_SYNC_DATABASE_URL": bench.target,
        "AIRFLOW_API_URL": bench.airflow.api_url,
        "AIRFLOW_API_USERNAME": "admin",
        "AIRFLOW_API_PASSWORD": bench.airflow.admin_password,
    }
    if coalesce_s is not None:
        env["GITHUB_SYNC_RELAY_COALESCE_SECONDS"] = str(coalesce_s)
    from github_sync.webhooks.relay.settings import DEFAULT_COALESCE_SECONDS

    log_file = (bench.home / "relay.log").open("ab")
    relay = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("github-sync-relay")),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    relay_url = f"http://127.0.0.1:{port}"

    def relay_healthy() -> bool:
        if relay.poll() is not None:
            raise RuntimeError(
                f"github-sync-relay exited with {relay.returncode}; see {bench.home}/relay.log"
            )
        try:
            return requests.get(f"{relay_url}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(
            relay_healthy,
            timeout=RELAY_START_TIMEOUT_S,
            interval=RELAY_POLL_S,
            message=f"github-sync-relay ready at {relay_url}",
        )
        bench.sim.set_webhook(f"{relay_url}/webhooks/github", secret)
        samples: dict[str, list[float]] = {"latency_s": [], "relay_s": [], "scheduling_s": [], "task_s": []}
        with psycopg.connect(bench.target, autocommit=True) as conn:
            for i in range(deliveries):
                title = f"bench webhook {i} {uuid.uuid4().hex[:8]}"
                t0 = time.time()
                bench.sim.mutate("create_issue", repo=repos[i % len(repos)], title=title)
                wait_until(
                    lambda title=title: conn.execute(
                        "SELECT 1 FROM bugs WHERE title = %s", (title,)
                    ).fetchone(),
                    timeout=DELIVERY_TIMEOUT_S,
                    interval=ROW_POLL_S,
                    message=f"the row of webhook delivery {i}",
                )
                samples["latency_s"].append(time.time() - t0)
                _breakdown(bench, conn, title, t0, samples)
            burst = _burst(bench, conn, repos)
        bench.sim.set_webhook(None)
    finally:
        if relay.poll() is None:
            os.killpg(relay.pid, signal.SIGTERM)
            relay.wait(30)
        log_file.close()
    summary: dict[str, Any] = {
        "deliveries": deliveries,
        "coalesce_s": coalesce_s if coalesce_s is not None else DEFAULT_COALESCE_SECONDS,
    }
    for key, values in samples.items():
        if values:
            summary[key] = {
                "median": round(percentile(values, 50), 3),
                "p95": round(percentile(values, 95), 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
                "n": len(values),
            }
    summary["samples_s"] = [round(v, 3) for v in samples["latency_s"]]
    summary["burst"] = burst
    results.webhook = summary
    log.info("webhook: %s", {k: v for k, v in summary.items() if k != "samples_s"})


def _burst(bench: AirflowBench, conn: Any, repos: list[str]) -> dict[str, Any]:
    """The burst case: WEBHOOK_BURST issues created at once -> how many DAG runs, and when every row is there."""
    tag = f"bench burst {uuid.uuid4().hex[:8]}"
    titles = [f"{tag} {i}" for i in range(WEBHOOK_BURST)]
    t0 = time.time()
    with ThreadPoolExecutor(BURST_SENDERS) as pool:
        list(
            pool.map(
                lambda i: bench.sim.mutate("create_issue", repo=repos[i % len(repos)], title=titles[i]),
                range(WEBHOOK_BURST),
            )
        )
    sent_s = time.time() - t0

    def all_rows() -> bool:
        row = conn.execute("SELECT count(*) FROM bugs WHERE title LIKE %s", (f"{tag} %",)).fetchone()
        return bool(row and row[0] >= WEBHOOK_BURST)

    wait_until(all_rows, timeout=BURST_TIMEOUT_S, interval=BURST_POLL_S, message="every row of the burst")
    all_visible_s = time.time() - t0
    runs = conn.execute(
        "SELECT count(DISTINCT dag_run_id) FROM webhook_deliveries "
        "WHERE event = 'issues' AND payload->'issue'->>'title' LIKE %s",
        (f"{tag} %",),
    ).fetchone()[0]
    burst = {
        "deliveries": WEBHOOK_BURST,
        "dag_runs": int(runs),
        "sent_s": round(sent_s, 3),
        "all_rows_visible_s": round(all_visible_s, 3),
    }
    log.info("webhook burst: %s", burst)
    return burst


def _breakdown(
    bench: AirflowBench, conn: Any, title: str, t0: float, samples: dict[str, list[float]]
) -> None:
    """Split one delivery's latency using the relay's table and the task instance; wait for its run to end."""
    row = conn.execute(
        "SELECT forwarded_at, processed_at, dag_run_id FROM webhook_deliveries "
        "WHERE event = 'issues' AND payload->'issue'->>'title' = %s",
        (title,),
    ).fetchone()
    if row is None or row[2] is None:
        return
    forwarded_at, processed_at, run_id = row
    dag_id = "github_webhook_events"
    bench.wait_for_final_state(dag_id, run_id, timeout=WEBHOOK_RUN_TIMEOUT_S)
    tis = bench.session.get(
        f"{bench.airflow.api_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", timeout=10
    ).json()
    starts = [_ts(ti.get("start_date")) for ti in tis.get("task_instances", [])]
    start = min((s for s in starts if s is not None), default=None)
    if processed_at is None:
        processed_at = conn.execute(
            "SELECT processed_at FROM webhook_deliveries WHERE dag_run_id = %s LIMIT 1", (run_id,)
        ).fetchone()[0]
    fwd = _ts(forwarded_at)
    if fwd is not None:
        samples["relay_s"].append(fwd - t0)
        if start is not None:
            samples["scheduling_s"].append(start - fwd)
            done = _ts(processed_at)
            if done is not None:
                samples["task_s"].append(done - start)
