"""Scale benchmark: full sync, then an unchanged incremental sync, on real Airflow 3, per size and executor.

``python -m tests.benchmarks --scale [options]`` or ``python -m tests.benchmarks.scale [options]``
(see tests/benchmarks/README.md). For every size in ``--sizes`` it starts one simulator (N
repositories, ``--latency-ms``, a rate limit high enough that budget is counted, never waited
for, and only small repositories when the simulator has that option), then for every executor
in ``--executors`` a fresh Airflow (LocalExecutor, or CeleryExecutor with ``--celery-workers``
workers) with fresh metadata and target databases, and runs ``--runs`` repetitions of:
empty target -> ``github_full_sync`` -> ``github_incremental_sync`` (nothing changed).

A run that fails or times out is recorded with its state; the benchmark goes on. Results:
``scale.json``, ``scale.md`` and ``scale.png`` in ``--results-dir`` (rewritten after every
repetition, so an interrupted run keeps what it measured). Airflow's homes and logs stay under
``tests/benchmarks/results/tmp/`` (gitignored). SIGTERM cleans up like Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from github_sync.config import DEFAULT_POOL_SLOTS
from tests.benchmarks.common import BENCH_DIR, LOG_DIR, OWNER, reset_product_database
from tests.benchmarks.scale_deployment import (
    EXECUTOR_CLASSES,
    FULL_DAG,
    INCREMENTAL_DAG,
    RSS_POLL_S,
    SMALL_REPOSITORIES_ARGS,
    STATE_POLL_S,
    DagRunRecord,
    ScaleAirflow,
    ScaleSimProcess,
)
from tests.benchmarks.scale_report import FULL, NOOP, ScaleResults

log = logging.getLogger("tests.benchmarks.scale")

DEFAULT_SIZES = (180, 1500, 10_000)
DEFAULT_EXECUTORS = ("local", "celery")
# A full sync of 10,000 repositories needs about 45,000 budget requests: far below this.
DEFAULT_RATE_LIMIT = 1_000_000
# Repetitions when --runs is not given: one at the largest sizes (hours each), three below.
SINGLE_RUN_FROM_SIZE = 10_000
# A 10,000-repository full sync takes about 7 minutes here: two of them fit a benchmark run.
DEFAULT_RUNS_SMALL, DEFAULT_RUNS_LARGE = 3, 2
DEFAULT_RUN_TIMEOUT_S = 6 * 3600
DEFAULT_CELERY_WORKERS = 2
# Two workers x 4 = the github_api pool's 8 slots: on 2 cores the tasks wait on the network.
DEFAULT_CELERY_CONCURRENCY = 4
SMALL_REPOS_MODES = ("on", "off")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.benchmarks --scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="repository counts N")
    p.add_argument(
        "--executors", nargs="+", choices=sorted(EXECUTOR_CLASSES), default=list(DEFAULT_EXECUTORS)
    )
    p.add_argument(
        "--runs",
        type=int,
        default=None,
        help=f"repetitions per size and executor (default {DEFAULT_RUNS_LARGE} from "
        f"{SINGLE_RUN_FROM_SIZE:,} repositories, {DEFAULT_RUNS_SMALL} below)",
    )
    p.add_argument("--latency-ms", type=int, default=100, help="simulator latency per request")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate-limit", type=int, default=DEFAULT_RATE_LIMIT, help="simulator budget per hour")
    p.add_argument(
        "--small-repos",
        choices=SMALL_REPOS_MODES,
        default="on",
        help="on: only small repositories (github-sim --small-repos); off: the simulator's default mix",
    )
    p.add_argument("--celery-workers", type=int, default=DEFAULT_CELERY_WORKERS)
    p.add_argument(
        "--celery-concurrency", type=int, default=DEFAULT_CELERY_CONCURRENCY, help="processes per worker"
    )
    p.add_argument("--pool-slots", type=int, default=DEFAULT_POOL_SLOTS, help="slots of the github_api pool")
    p.add_argument(
        "--redis-url", default=f"redis://{os.environ.get('GITHUB_SYNC_TEST_REDIS_HOST', '127.0.0.1')}:6379",
        help="Redis server of the Celery broker (an empty database on it is claimed for the run)",
    )  # fmt: skip
    p.add_argument(
        "--run-timeout-s",
        type=float,
        default=DEFAULT_RUN_TIMEOUT_S,
        help="a run is stopped (failed) after this",
    )
    p.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    p.add_argument(
        "--render", type=Path, default=None, help="only re-render scale.md and scale.png of a scale.json"
    )
    p.add_argument("--note", action="append", default=[], help="a note to add to the results")
    p.add_argument("--log-level", default="INFO")
    return p


def runs_for(size: int, runs: int | None) -> int:
    if runs is not None:
        return runs
    return DEFAULT_RUNS_LARGE if size >= SINGLE_RUN_FROM_SIZE else DEFAULT_RUNS_SMALL


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the benchmark is so that every ``finally`` cleans up."""


_terminating = False


def _terminate(signum: int, _frame: object) -> None:
    global _terminating
    if _terminating:  # already cleaning up: a second SIGTERM must not cut the cleanup short
        log.warning("Signal %d while cleaning up: ignored", signum)
        return
    _terminating = True
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.render is not None:
        results = ScaleResults.from_json(json.loads(args.render.read_text()))
        results.notes += args.note
        _, md_path, _ = results.write(args.render.parent)
        print(md_path.read_text())
        return 0
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(args)
    except KeyboardInterrupt:
        log.warning("Interrupted: processes and scratch databases cleaned up, results so far written")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    small_args = SMALL_REPOSITORIES_ARGS if args.small_repos == "on" else None
    started = time.perf_counter()
    stamp = datetime.now(UTC)
    results = ScaleResults(
        meta={
            "started": stamp.strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}",
            "command": "python -m tests.benchmarks --scale " + shlex.join(args.argv),
            "sizes": args.sizes,
            "executors": args.executors,
            "runs": {str(n): runs_for(n, args.runs) for n in args.sizes},
            "latency_ms": args.latency_ms,
            "seed": args.seed,
            "rate_limit": args.rate_limit,
            "small_repositories": small_args is not None,
            "small_repository_args": small_args or [],
            "pool_slots": args.pool_slots,
            "celery_workers": args.celery_workers,
            "celery_concurrency": args.celery_concurrency,
            "run_timeout_s": args.run_timeout_s,
            "state_poll_s": STATE_POLL_S,
            "rss_poll_s": RSS_POLL_S,
            "startup_s": {},
        },
        notes=list(args.note),
    )
    homes = LOG_DIR / f"scale-{stamp:%Y%m%d-%H%M%S}"
    try:
        for size in args.sizes:
            _run_size(args, size, small_args or [], homes, results)
    finally:
        results.meta["bench_wall_s"] = round(time.perf_counter() - started)
        json_path, md_path, png_path = results.write(args.results_dir)
        log.info(
            "Results written to %s, %s and %s; Airflow logs under %s", json_path, md_path, png_path, homes
        )
    print(md_path.read_text())
    return 0


def _run_size(
    args: argparse.Namespace, size: int, small_args: list[str], homes: Path, results: ScaleResults
) -> None:
    extra = ["--rate-limit", str(args.rate_limit), *small_args]
    sim_started = time.perf_counter()
    sim = ScaleSimProcess(repos=size, latency_ms=args.latency_ms, seed=args.seed, extra_args=extra).start()
    try:
        results.meta["startup_s"][f"simulator {size}"] = round(time.perf_counter() - sim_started)
        names = sim.repository_names()
        if len(names) != size:
            results.notes.append(f"the simulator of size {size} lists {len(names)} repositories")
        for executor in args.executors:
            home = homes / f"{size}-{executor}"
            try:
                bench = ScaleAirflow(
                    sim,
                    executor,
                    home=home,
                    redis_url=args.redis_url,
                    celery_workers=args.celery_workers,
                    celery_concurrency=args.celery_concurrency,
                    pool_slots=args.pool_slots,
                )
            except Exception as exc:  # one executor that cannot start must not stop the others
                log.exception("Airflow with %s did not start for %d repositories", executor, size)
                results.notes.append(f"{size:,} / {executor}: Airflow did not start ({exc}); logs in {home}")
                continue
            try:
                results.meta["startup_s"][f"airflow {size} {executor}"] = round(bench.startup_s)
                for repetition in range(1, runs_for(size, args.runs) + 1):
                    _repetition(bench, size, executor, repetition, names, args.run_timeout_s, results)
                    results.write(args.results_dir)  # a long benchmark keeps what it measured so far
            finally:
                bench.close()
                results.write(args.results_dir)
    finally:
        sim.stop()


def _repetition(
    bench: ScaleAirflow,
    size: int,
    executor: str,
    repetition: int,
    names: list[str],
    timeout_s: float,
    results: ScaleResults,
) -> None:
    """Empty target -> full sync -> unchanged incremental sync; both recorded whatever their state."""
    assert bench.target is not None
    log.info("%d repositories, %s, repetition %d: full sync", size, executor, repetition)
    reset_product_database(bench.target)
    full = _sample(bench, FULL, FULL_DAG, size, executor, repetition, names, timeout_s)
    results.samples.append(full)
    log.info(
        "%d repositories, %s, repetition %d: incremental sync, nothing changed", size, executor, repetition
    )
    noop = _sample(bench, NOOP, INCREMENTAL_DAG, size, executor, repetition, names, timeout_s)
    noop["after_failed_full"] = full["state"] != "success"
    results.samples.append(noop)


def _sample(
    bench: ScaleAirflow,
    scenario: str,
    dag_id: str,
    size: int,
    executor: str,
    repetition: int,
    names: list[str],
    timeout_s: float,
) -> dict[str, Any]:
    record: DagRunRecord = bench.timed_run(dag_id, {"owner": OWNER}, timeout_s=timeout_s)
    stats = record.sim_stats
    budget, requests_total = int(stats.get("budget_spent", 0)), int(stats.get("requests_total", 0))
    sample: dict[str, Any] = {
        "size": size,
        "executor": executor,
        "scenario": scenario,
        "repetition": repetition,
        "dag_id": dag_id,
        "run_id": record.run_id,
        "state": record.state,
        "error": record.error,
        "wall_s": round(record.wall_s, 3),
        "wall_per_repo_s": round(record.wall_s / size, 5) if size else None,
        "budget": budget,
        "budget_per_repo": round(budget / size, 4) if size else None,
        "requests": requests_total,
        "not_modified": int(stats.get("not_modified", 0)),
        "by_endpoint": stats.get("by_endpoint", {}),
        "by_status": stats.get("by_status", {}),
        "sim_peak_concurrency": stats.get("peak_concurrency"),
        "rss": record.rss,
    }
    try:
        sample["rows"] = bench.rows_present(names)
        if record.run_id is not None:
            sample["task_instances"] = bench.task_instances(dag_id, record.run_id)
    except Exception as exc:  # a figure that cannot be read is missing, the run is still recorded
        log.warning("%s run %s: could not read rows or task instances: %s", dag_id, record.run_id, exc)
        sample.setdefault("error", None)
        sample["error"] = (sample["error"] or "") + f" (figures: {type(exc).__name__}: {exc})"
    log.info(
        "%d / %s / %s #%d: %s in %.1f s, budget %d (%.2f/repo), %d requests, %d 304s, TIs %s, rows %s, "
        "RSS scheduler %.0f MB worker %.0f MB",
        size, executor, scenario, repetition, record.state, record.wall_s, budget,
        budget / size if size else 0.0, requests_total, sample["not_modified"],
        (sample.get("task_instances") or {}).get("total"),
        _rows_text(sample.get("rows") or {}),
        record.rss.get("scheduler_mb", 0.0), record.rss.get("worker_largest_mb", 0.0),
    )  # fmt: skip
    return sample


def _rows_text(rows: dict[str, Any]) -> str:
    if rows.get("every_row_present"):
        return "every row"
    n = rows.get("repositories", "?")
    return f"projects {rows.get('projects', '?')}/{n}, metrics {rows.get('project_metrics', '?')}/{n}"


if __name__ == "__main__":
    sys.exit(main())
