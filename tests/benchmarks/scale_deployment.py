"""The scale benchmark's machinery: a large simulator, a real Airflow per executor, timed DAG runs.

* :class:`ScaleSimProcess`: ``github-sim`` with a rate limit high enough for a full sync of
  10,000 repositories, small ones only (``github-sim --small-repos``) unless told otherwise.
* :class:`ScaleAirflow`: Airflow 3 started with :func:`github_sync.devtools.local_airflow.start_local_airflow`
  (its own metadata and target databases), with LocalExecutor or with CeleryExecutor and
  ``airflow celery worker`` processes (each its own process group, broker a Redis database
  claimed for the run, result backend the metadata database).
* :class:`TreeRssSampler`: peak memory of the scheduler and of the workers, sampled in a thread.
  LocalExecutor's workers are the scheduler's child processes (executor workers and their task
  processes); a Celery worker's are its whole process tree.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import psycopg
import requests

from github_sync.config import DEFAULT_POOL_SLOTS
from tests.benchmarks.common import (
    OWNER,
    SimProcess,
    create_database,
    drop_database,
    free_port,
)
from tests.benchmarks.scenarios_airflow import _conn_env
from tests.support.simulators import ready_url

log = logging.getLogger(__name__)

LOCAL = "local"
CELERY = "celery"
EXECUTOR_CLASSES = {LOCAL: "LocalExecutor", CELERY: "CeleryExecutor"}
FULL_DAG = "github_full_sync"
INCREMENTAL_DAG = "github_incremental_sync"
SCALE_DAGS = (FULL_DAG, INCREMENTAL_DAG)
# Generating 10,000 repositories takes minutes on a busy machine.
SCALE_SIM_START_TIMEOUT_S = 1200
STATE_POLL_S = 0.5
RSS_POLL_S = 0.5
REQUEST_TIMEOUT_S = 30
WORKER_READY_TIMEOUT_S = 180
WORKER_READY_POLL_S = 1.0
# A run that is stopped after its timeout gets this long to wind down before the next one.
STOPPED_RUN_GRACE_S = 120
FINAL_STATES = ("success", "failed")
TI_STATES = ("success", "failed", "upstream_failed", "skipped", "removed", "up_for_retry")
FAILED_TI_EXAMPLES = 5
# From the top (db 0 is what everybody else uses), leaving out the one the e2e tests flush.
E2E_REDIS_DB = int(os.environ.get("GITHUB_SYNC_TEST_REDIS_DB", "14"))
REDIS_DATABASES = [db for db in range(15, 0, -1) if db != E2E_REDIS_DB]
REDIS_CLAIM_KEY = "github-sync-bench-scale:claimed-by"
# github-sim's option for an organisation of small repositories only (no big, medium, empty
# or archived ones): what "N small repositories" means in the targets.
SMALL_REPOSITORIES_ARGS = ["--small-repos"]


@dataclass
class ScaleSimProcess(SimProcess):
    """``github-sim`` with extra arguments (rate limit, repository mix) and a longer start-up."""

    extra_args: list[str] = field(default_factory=list)

    def start(self) -> ScaleSimProcess:
        cmd = [
            sys.executable, "-m", "github_sim.cli", "--port", "0", "--owner", OWNER,
            "--repos", str(self.repos), "--seed", str(self.seed), "--latency-ms", str(self.latency_ms),
            "--log-level", "INFO", *self.extra_args,
        ]  # fmt: skip
        started = time.perf_counter()
        self.process = subprocess.Popen(
            cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True
        )
        try:
            self.url = ready_url(self.process, timeout=SCALE_SIM_START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        log.info(
            "Simulator: %d repositories, %d ms latency, %s, ready in %.0f s at %s",
            self.repos, self.latency_ms, " ".join(self.extra_args), time.perf_counter() - started, self.url,
        )  # fmt: skip
        return self

    def repository_names(self) -> list[str]:
        """The names of every repository of the organisation (``/_sim/info``)."""
        return [str(name) for name in self.info()["repos"]]


# ---------------------------------------------------------------------------------- Redis


@dataclass
class RedisDatabase:
    """An empty Redis database claimed (with a marker key) as this run's Celery broker."""

    host: str
    port: int
    db: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"

    @classmethod
    def claim(cls, server_url: str) -> RedisDatabase:
        import redis

        parts = urlsplit(server_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
        for db in REDIS_DATABASES:
            client = redis.Redis(host=host, port=port, db=db)
            try:
                if client.dbsize() == 0 and client.set(REDIS_CLAIM_KEY, str(os.getpid()), nx=True):
                    log.info("Celery broker: Redis database %d at %s:%d", db, host, port)
                    return cls(host=host, port=port, db=db)
            finally:
                client.close()
        raise RuntimeError(f"no empty Redis database at {server_url} (tried {list(REDIS_DATABASES)})")

    def release(self) -> None:
        """Empty the database again (it was empty when claimed)."""
        import redis

        client = redis.Redis(host=self.host, port=self.port, db=self.db)
        try:
            client.flushdb()
        finally:
            client.close()


# ---------------------------------------------------------------------------------- memory


@dataclass
class ComponentPeak:
    """Peaks (MB) of one component: RSS of its main process and of its largest child, PSS of its tree."""

    root_rss_mb: float = 0.0
    largest_child_rss_mb: float = 0.0
    tree_pss_mb: float = 0.0


def _memory_mb(proc: psutil.Process) -> tuple[float, float] | None:
    """(RSS, PSS) of a process in MB; PSS falls back to RSS where smaps cannot be read."""
    try:
        full = proc.memory_full_info()
    except psutil.AccessDenied:
        try:
            rss = float(proc.memory_info().rss) / 2**20
        except psutil.Error:
            return None
        return rss, rss
    except psutil.Error:
        return None
    return float(full.rss) / 2**20, float(getattr(full, "pss", full.rss)) / 2**20


class TreeRssSampler:
    """Peak memory of Airflow's components and of its workers, sampled every ``RSS_POLL_S`` in a thread.

    ``worker_trees`` names the components whose processes are the workers and whether the
    component's own process counts: LocalExecutor ``{"scheduler": False}`` (the executor workers
    and task processes are the scheduler's children), Celery ``{"celery:worker-1": True, ...}``.
    Single processes are measured by RSS; sums by PSS, which shares the pages forked processes
    have in common among them (a sum of RSS would count those once per process).
    """

    def __init__(self, roots: Mapping[str, int], worker_trees: Mapping[str, bool]) -> None:
        self.roots = dict(roots)
        self.worker_trees = dict(worker_trees)
        self.components = {name: ComponentPeak() for name in self.roots}
        self.worker_largest_rss_mb = 0.0
        self.workers_pss_mb = 0.0
        self.workers_processes = 0
        self.deployment_pss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scale-rss", daemon=True)

    def _sample(self) -> None:
        workers: list[tuple[float, float]] = []
        deployment_pss = 0.0
        for name, pid in self.roots.items():
            try:
                root = psutil.Process(pid)
                children = root.children(recursive=True)
            except psutil.Error:
                continue
            root_memory = _memory_mb(root) or (0.0, 0.0)
            children_memory = [m for m in map(_memory_mb, children) if m is not None]
            peak = self.components[name]
            peak.root_rss_mb = max(peak.root_rss_mb, root_memory[0])
            peak.largest_child_rss_mb = max(
                peak.largest_child_rss_mb, max((rss for rss, _ in children_memory), default=0.0)
            )
            tree_pss = root_memory[1] + sum(pss for _, pss in children_memory)
            peak.tree_pss_mb = max(peak.tree_pss_mb, tree_pss)
            deployment_pss += tree_pss
            if name in self.worker_trees:
                workers += children_memory + ([root_memory] if self.worker_trees[name] else [])
        self.worker_largest_rss_mb = max(
            self.worker_largest_rss_mb, max((r for r, _ in workers), default=0.0)
        )
        self.workers_pss_mb = max(self.workers_pss_mb, sum(pss for _, pss in workers))
        self.workers_processes = max(self.workers_processes, len(workers))
        self.deployment_pss_mb = max(self.deployment_pss_mb, deployment_pss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(RSS_POLL_S)

    def __enter__(self) -> TreeRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def as_dict(self) -> dict[str, Any]:
        scheduler = self.components.get("scheduler", ComponentPeak())
        return {
            "scheduler_mb": round(scheduler.root_rss_mb, 1),
            "scheduler_tree_pss_mb": round(scheduler.tree_pss_mb, 1),
            "worker_largest_mb": round(self.worker_largest_rss_mb, 1),
            "workers_pss_mb": round(self.workers_pss_mb, 1),
            "workers_processes": self.workers_processes,
            "deployment_pss_mb": round(self.deployment_pss_mb, 1),
            "components": {
                name: {k: round(v, 1) for k, v in vars(peak).items()}
                for name, peak in self.components.items()
            },
        }


# ---------------------------------------------------------------------------------- Airflow


@dataclass
class DagRunRecord:
    """What one triggered DAG run did; ``state`` is ``success``, ``failed``, ``timeout`` or ``error``."""

    dag_id: str
    state: str
    wall_s: float
    run_id: str | None = None
    sim_stats: dict[str, Any] = field(default_factory=dict)
    rss: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class ScaleAirflow:
    """A real local Airflow 3 with one executor, pointed at the simulator, with fresh databases."""

    def __init__(
        self,
        sim: ScaleSimProcess,
        executor: str,
        *,
        home: Path,
        redis_url: str,
        celery_workers: int,
        celery_concurrency: int,
        pool_slots: int = DEFAULT_POOL_SLOTS,
    ) -> None:
        from github_sync.devtools.local_airflow import LocalAirflow, start_local_airflow

        self.sim = sim
        self.executor = executor
        self.home = home
        self.target: str | None = None
        self.metadata: str | None = None
        self.redis: RedisDatabase | None = None
        self.airflow: LocalAirflow | None = None
        self.worker_names: list[str] = []
        self.session = requests.Session()
        self.startup_s = 0.0
        started = time.perf_counter()
        try:
            self.target = create_database("bench_scale_target")
            self.metadata = create_database("bench_scale_meta", migrate=False)
            env = {
                **_conn_env(sim.url, self.target),
                "AIRFLOW__CORE__EXECUTOR": EXECUTOR_CLASSES[executor],
                # Not the default ports: other deployments may run on this machine.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            }
            if executor == CELERY:
                self.redis = RedisDatabase.claim(redis_url)
                env |= {
                    "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                    "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.metadata,
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(celery_concurrency),
                }
            log.info("Starting Airflow with %s (home %s) ...", EXECUTOR_CLASSES[executor], home)
            self.airflow = start_local_airflow(
                home=home,
                metadata_url=self.metadata.replace("postgresql://", "postgresql+psycopg2://", 1),
                extra_env=env,
                pool_slots=pool_slots,
            )
            if executor == CELERY:
                for n in range(1, celery_workers + 1):
                    name = f"celery:worker-{n}"
                    # Log files are read from AIRFLOW_HOME on this host: no log server per worker.
                    self.airflow.start_component(
                        name, "worker", "--celery-hostname", f"worker-{n}@%h",
                        "--concurrency", str(celery_concurrency), "--skip-serve-logs",
                    )  # fmt: skip
                    self.worker_names.append(name)
                for name in self.worker_names:
                    self._wait_for_worker(name)
            self.airflow.wait_for_dags(SCALE_DAGS)
            session = self.airflow.api()
            for dag_id in SCALE_DAGS:
                session.patch(
                    f"{self.airflow.api_url}/api/v2/dags/{dag_id}",
                    json={"is_paused": False},
                    timeout=REQUEST_TIMEOUT_S,
                ).raise_for_status()
            self.session = session
        except BaseException:
            self.close()
            raise
        self.startup_s = time.perf_counter() - started
        log.info("Airflow with %s ready in %.0f s", EXECUTOR_CLASSES[executor], self.startup_s)

    def _wait_for_worker(self, name: str) -> None:
        assert self.airflow is not None
        log_path = self.home / f"{name}.log"
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            process = self.airflow.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {process.returncode}; see {log_path}")
            if log_path.exists() and " ready." in log_path.read_text(errors="replace"):
                return
            time.sleep(WORKER_READY_POLL_S)
        raise TimeoutError(f"airflow {name} not ready within {WORKER_READY_TIMEOUT_S} s; see {log_path}")

    # ------------------------------------------------------------------ REST

    def _api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A REST call with a fresh JWT if the old one expired."""
        assert self.airflow is not None
        url = f"{self.airflow.api_url}{path}"
        response = self.session.request(method, url, timeout=REQUEST_TIMEOUT_S, **kwargs)
        if response.status_code == 401:
            self.session = self.airflow.api()
            response = self.session.request(method, url, timeout=REQUEST_TIMEOUT_S, **kwargs)
        response.raise_for_status()
        return response

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self._api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"])

    def rss_sampler(self) -> TreeRssSampler:
        assert self.airflow is not None
        roots = {name: p.pid for name, p in self.airflow.processes.items()}
        if self.executor == CELERY:
            return TreeRssSampler(roots, dict.fromkeys(self.worker_names, True))
        return TreeRssSampler(roots, {"scheduler": False})

    def timed_run(self, dag_id: str, conf: Mapping[str, Any], *, timeout_s: float) -> DagRunRecord:
        """Trigger ``dag_id`` and wait for a final state; a failed or stuck run is a record, not an error."""
        assert self.airflow is not None
        self.sim.reset_stats()
        state, run_id, error = "error", None, None
        with self.rss_sampler() as sampler:
            started = time.perf_counter()
            try:
                run_id = self.airflow.trigger(dag_id, conf)
                deadline = time.monotonic() + timeout_s
                while True:
                    state = self.run_state(dag_id, run_id)
                    if state in FINAL_STATES:
                        break
                    if time.monotonic() >= deadline:
                        state = "timeout"
                        break
                    time.sleep(STATE_POLL_S)
            except (requests.RequestException, RuntimeError, KeyError, ValueError) as exc:
                state, error = "error", f"{type(exc).__name__}: {exc}"
                log.warning("%s run %s: %s", dag_id, run_id, error)
            wall = time.perf_counter() - started
        if state == "timeout" and run_id is not None:
            self._stop_run(dag_id, run_id)
        return DagRunRecord(
            dag_id=dag_id,
            state=state,
            wall_s=wall,
            run_id=run_id,
            sim_stats=self.sim.stats(),
            rss=sampler.as_dict(),
            error=error,
        )

    def _stop_run(self, dag_id: str, run_id: str) -> None:
        """Mark a run that exceeded its timeout failed and give its tasks a moment to wind down."""
        log.warning("%s run %s exceeded its timeout: marking it failed", dag_id, run_id)
        try:
            self._api("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", json={"state": "failed"})
            deadline = time.monotonic() + STOPPED_RUN_GRACE_S
            while time.monotonic() < deadline:
                params: dict[str, Any] = {"state": ["running", "queued", "scheduled"], "limit": 1}
                if self._task_instance_total(dag_id, run_id, params) == 0:
                    return
                time.sleep(STATE_POLL_S * 4)
        except requests.RequestException as exc:
            log.warning("Could not stop %s run %s: %s", dag_id, run_id, exc)

    def _task_instance_total(self, dag_id: str, run_id: str, params: Mapping[str, Any]) -> int:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return int(self._api("GET", path, params={"limit": 1, **params}).json()["total_entries"])

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The run's task instances: total (every map index counts), mapped, per state, a few failed."""
        total = self._task_instance_total(dag_id, run_id, {})
        unmapped = self._task_instance_total(dag_id, run_id, {"map_index": -1})
        by_state = {s: self._task_instance_total(dag_id, run_id, {"state": s}) for s in TI_STATES}
        failed = self._api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
            params={"state": "failed", "limit": FAILED_TI_EXAMPLES},
        ).json()["task_instances"]
        return {
            "total": total,
            "mapped": total - unmapped,
            "by_state": {s: n for s, n in by_state.items() if n},
            "failed_examples": [f"{ti['task_id']}[{ti.get('map_index', -1)}]" for ti in failed],
        }

    # ------------------------------------------------------------------ target database

    def rows_present(self, repository_names: list[str]) -> dict[str, Any]:
        """Whether every repository of the simulator has a ``projects`` and a ``project_metrics`` row."""
        assert self.target is not None
        with psycopg.connect(self.target, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT lower(p.name), EXISTS (SELECT 1 FROM project_metrics m WHERE m.project_id = p.id) "
                "FROM projects p WHERE lower(p.owner) = lower(%s) AND p.removed_at IS NULL",
                (OWNER,),
            ).fetchall()
        with_metrics = {name for name, has_metrics in rows if has_metrics}
        projects = {name for name, _ in rows}
        expected = [n.lower() for n in repository_names]
        missing_projects = [n for n in expected if n not in projects]
        missing_metrics = [n for n in expected if n not in with_metrics]
        return {
            "repositories": len(expected),
            "projects": sum(1 for n in expected if n in projects),
            "project_metrics": sum(1 for n in expected if n in with_metrics),
            "missing_projects_examples": missing_projects[:10],
            "missing_metrics_examples": missing_metrics[:10],
            "every_row_present": not missing_projects and not missing_metrics,
        }

    # ------------------------------------------------------------------ cleanup

    def close(self) -> None:
        """Stop every process of the deployment (and any leftover descendant), drop its databases."""
        if self.airflow is not None:
            descendants: list[psutil.Process] = []
            for process in self.airflow.processes.values():
                try:
                    descendants += psutil.Process(process.pid).children(recursive=True)
                except psutil.Error:
                    pass
            self.airflow.stop()
            for proc in descendants:
                try:
                    if proc.is_running():
                        log.warning("Killing leftover Airflow process %d (%s)", proc.pid, proc.name())
                        proc.send_signal(signal.SIGKILL)
                except psutil.Error:
                    pass
            self.airflow = None
        if self.redis is not None:
            try:
                self.redis.release()
            except Exception as exc:  # a cleanup must not hide the error that led here
                log.warning("Could not empty Redis database %d: %s", self.redis.db, exc)
            self.redis = None
        for url in (self.target, self.metadata):
            if url is None:
                continue
            try:
                drop_database(url)
            except psycopg.Error as exc:
                log.warning("Could not drop %s: %s", url, exc)
        self.target = self.metadata = None
