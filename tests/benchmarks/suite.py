"""The benchmark suite's command line: start the simulator, run every scenario, write the results.

Order (sequential: the machine has 2 cores and every figure includes wall time):
product in-process -> Baseline A -> Baseline B -> real Airflow (scenarios 1-4, then 5)
-> database load. Results go to ``--results-dir`` as ``results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
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

import psutil

from tests.benchmarks.common import BENCH_DIR, SimProcess
from tests.benchmarks.results import Results
from tests.benchmarks.scenarios import (
    apply_changes,
    repositories_to_change,
    run_db_load,
    run_meltano,
    run_product_inprocess,
    run_pygithub,
    typical_repository,
)

log = logging.getLogger("tests.benchmarks")

SYSTEMS = ("product", "pygithub", "meltano", "airflow", "webhook", "db_load")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    p.add_argument("--repos", type=int, default=180, help="repositories of the simulated organisation")
    p.add_argument("--latency-ms", type=int, default=100, help="simulator latency per request")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--runs", type=int, default=3, help="repetitions of every scenario (median, min, max)")
    p.add_argument(
        "--airflow-runs", type=int, default=None, help="repetitions on real Airflow (default --runs)"
    )
    p.add_argument("--changed", type=int, default=10, help="k: repositories changed before scenario 3")
    p.add_argument("--deliveries", type=int, default=50, help="webhook deliveries of scenario 5")
    p.add_argument(
        "--coalesce-s",
        type=float,
        default=None,
        help="the relay's in-flight wait ceiling, GITHUB_SYNC_RELAY_COALESCE_SECONDS (default: the relay's)",
    )
    p.add_argument("--db-rows", type=int, default=100_000, help="issues (and commits) of scenario 6")
    p.add_argument("--repository", default=None, help="owner/name of scenario 4 (default: a median one)")
    p.add_argument("--only", nargs="*", choices=SYSTEMS, default=list(SYSTEMS), help="what to run")
    p.add_argument("--skip", nargs="*", choices=SYSTEMS, default=[], help="what not to run")
    p.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    p.add_argument("--log-level", default="INFO")
    p.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        help="combine the results.json of several (partial) runs into --results-dir, then render",
    )
    p.add_argument(
        "--note", action="append", default=[], help="a note to add to the results (with --merge/--render)"
    )
    p.add_argument(
        "--render",
        type=Path,
        default=None,
        help="only recompute summary, targets and Markdown of an existing results.json",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # SIGTERM (e.g. `kill` of a background run) unwinds like Ctrl-C: simulator, Airflow and
    # scratch databases are cleaned up and the results so far are written.
    previous_handler = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(args)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def _main(args: argparse.Namespace) -> int:
    if args.merge:
        results = merge_results(args.merge)
        results.notes += args.note
        _, md_path = results.write(args.results_dir)
        print(md_path.read_text())
        return 0
    if args.render is not None:
        import json

        # Summary, targets and Markdown are recomputed from the stored samples.
        results = Results.from_json(json.loads(args.render.read_text()))
        results.notes += args.note
        _, md_path = results.write(args.render.parent)
        print(md_path.read_text())
        return 0
    selected = [s for s in args.only if s not in args.skip]
    airflow_runs = args.airflow_runs if args.airflow_runs is not None else args.runs
    started = time.perf_counter()
    results = Results(
        meta={
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}",
            "command": "python -m tests.benchmarks " + shlex.join(args.argv),
            "repos": args.repos,
            "latency_ms": args.latency_ms,
            "seed": args.seed,
            "runs": args.runs,
            "airflow_runs": airflow_runs if {"airflow", "webhook"} & set(selected) else 0,
            "changed": args.changed,
            "db_rows": args.db_rows,
            "systems": selected,
            "in_process_path": "run_sync (github_sync.sync.runner) in a child process per run",
        }
    )
    sim = SimProcess(repos=args.repos, latency_ms=args.latency_ms, seed=args.seed).start()
    try:
        _run(args, selected, airflow_runs, sim, results)
    finally:
        sim.stop()
        results.meta["suite_wall_s"] = round(time.perf_counter() - started)
        json_path, md_path = results.write(args.results_dir)
        log.info("Results written to %s and %s", json_path, md_path)
    print(md_path.read_text())
    return 0


def merge_results(paths: Sequence[Path]) -> Results:
    """One result set from several runs on the same settings: samples appended, runs listed in ``meta``."""
    import json

    parts = [Results.from_json(json.loads(p.read_text())) for p in paths]
    merged = Results(meta=dict(parts[0].meta))
    merged.meta["parts"] = [
        {k: p.meta.get(k) for k in ("started", "command", "suite_wall_s", "systems", "runs", "airflow_runs")}
        for p in parts
    ]
    # Parts may have run side by side: the suite's wall time is first start -> last end.
    spans = [
        (start := datetime.strptime(str(p.meta["started"]), "%Y-%m-%d %H:%M UTC").timestamp(),
         start + int(p.meta.get("suite_wall_s") or 0))
        for p in parts
    ]  # fmt: skip
    merged.meta["suite_wall_s"] = round(max(end for _, end in spans) - min(start for start, _ in spans))
    merged.meta["suite_wall_s_sum_of_parts"] = sum(int(p.meta.get("suite_wall_s") or 0) for p in parts)
    merged.meta["command"] = " && ".join(str(p.meta.get("command")) for p in parts)
    for part in parts:
        for key in ("repos", "latency_ms", "seed", "changed", "one_repository", "changed_repositories"):
            if part.meta.get(key) != merged.meta.get(key):
                raise ValueError(
                    f"cannot merge runs with different {key}: {part.meta.get(key)} != {merged.meta.get(key)}"
                )
        for scenario, systems in part.runs.items():
            for system, measurements in systems.items():
                merged.runs[scenario].setdefault(system, []).extend(measurements)
        merged.webhook = part.webhook or merged.webhook
        merged.notes += part.notes
        if {"airflow", "webhook"} & set(part.meta.get("systems", [])):
            merged.meta["airflow_runs"] = part.meta.get("airflow_runs")
        if "db_load" in part.meta.get("systems", []):
            merged.meta["db_rows"] = part.meta.get("db_rows")
    merged.meta["systems"] = sorted({s for p in parts for s in p.meta.get("systems", [])})
    return merged


def _terminate(*_: object) -> None:
    raise KeyboardInterrupt


def _run(
    args: argparse.Namespace, selected: list[str], airflow_runs: int, sim: SimProcess, results: Results
) -> None:
    changed = repositories_to_change(sim, args.changed)
    repository = args.repository or typical_repository(sim)
    results.meta["changed_repositories"] = changed
    results.meta["one_repository"] = repository
    log.info("k changed repositories: %s; scenario 4 repository: %s", changed, repository)
    if "product" in selected:
        run_product_inprocess(sim, results, runs=args.runs, changed=changed, repository=repository)
    if "pygithub" in selected:
        run_pygithub(sim, results, runs=args.runs, changed=changed)
    if "meltano" in selected:
        run_meltano(sim, results, runs=args.runs, changed=changed)
    if {"airflow", "webhook"} & set(selected):
        from tests.benchmarks.scenarios_airflow import AirflowBench, run_airflow_syncs, run_webhook

        bench = AirflowBench(sim)
        try:
            if "airflow" in selected:
                run_airflow_syncs(bench, results, runs=airflow_runs, changed=changed, repository=repository)
            if "webhook" in selected:
                if "airflow" not in selected:
                    # The webhook path needs the projects in the database: one full sync first.
                    bench.timed_run("github_full_sync", {"owner": "acme"})
                run_webhook(
                    bench, results, deliveries=args.deliveries, repos=changed, coalesce_s=args.coalesce_s
                )
        finally:
            bench.close()
    if "db_load" in selected:
        run_db_load(results, runs=args.runs, rows=args.db_rows)


__all__ = ["apply_changes", "main"]
