"""The scale benchmark's results: ``scale.json`` (every sample), ``scale.md`` (tables, targets), ``scale.png``.

Figures of a group (size x executor x scenario) are the median of its successful runs, with
min-max beside; when no run of the group succeeded they are those of all its runs and the
state column says so. Targets only count successful runs.

The targets name sizes of the default run (180, 1,500, 10,000); with other ``--sizes`` they
apply to the largest size (incremental, wall growth), the smallest (the wall baseline) and
every size but the smallest (rows present), and say which size they used.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.benchmarks.common import Figure

log = logging.getLogger(__name__)

FULL = "full"
NOOP = "incremental_noop"
SCENARIOS = (FULL, NOOP)
SCENARIO_TITLES = {FULL: "full sync", NOOP: "incremental, nothing changed"}
EXECUTOR_TITLES = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
JSON_NAME, MD_NAME, PNG_NAME = "scale.json", "scale.md", "scale.png"

# Targets (see the module docstring for how they map onto other sizes).
FULL_BUDGET_PER_SMALL_REPO = 4.5
NOOP_BUDGET_AT_LARGEST = 10
NOOP_WALL_S_AT_LARGEST = 180
WALL_PER_REPO_GROWTH = 1.5

Sample = dict[str, Any]
Key = tuple[int, str, str]


def _path(sample: Sample, *keys: str) -> float | None:
    value: Any = sample
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


FIGURES: dict[str, Callable[[Sample], float | None]] = {
    "wall_s": lambda s: _path(s, "wall_s"),
    "wall_per_repo_s": lambda s: _path(s, "wall_per_repo_s"),
    "budget": lambda s: _path(s, "budget"),
    "budget_per_repo": lambda s: _path(s, "budget_per_repo"),
    "requests": lambda s: _path(s, "requests"),
    "not_modified": lambda s: _path(s, "not_modified"),
    "task_instances": lambda s: _path(s, "task_instances", "total"),
    "mapped_task_instances": lambda s: _path(s, "task_instances", "mapped"),
    "scheduler_mb": lambda s: _path(s, "rss", "scheduler_mb"),
    "worker_largest_mb": lambda s: _path(s, "rss", "worker_largest_mb"),
    "workers_pss_mb": lambda s: _path(s, "rss", "workers_pss_mb"),
}


@dataclass
class ScaleResults:
    """Every sample of a scale run and what is derived from them."""

    meta: dict[str, Any] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScaleResults:
        return cls(meta=dict(data["meta"]), samples=list(data["samples"]), notes=list(data.get("notes", [])))

    # ------------------------------------------------------------------ derived

    def groups(self) -> dict[Key, list[Sample]]:
        out: dict[Key, list[Sample]] = {}
        for sample in self.samples:
            out.setdefault(
                (int(sample["size"]), str(sample["executor"]), str(sample["scenario"])), []
            ).append(sample)
        executors = [str(e) for e in self.meta.get("executors", [])]

        def order(key: Key) -> tuple[int, int, str, int]:
            size, executor, scenario = key
            position = executors.index(executor) if executor in executors else len(executors)
            return size, position, executor, SCENARIOS.index(scenario) if scenario in SCENARIOS else 99

        return {key: out[key] for key in sorted(out, key=order)}

    @staticmethod
    def counted(samples: Sequence[Sample]) -> list[Sample]:
        """The samples a group's figures come from: the successful ones, or all if none succeeded."""
        ok = [s for s in samples if s.get("state") == "success"]
        return ok or list(samples)

    @staticmethod
    def figure(samples: Iterable[Sample], name: str) -> Figure:
        values = [FIGURES[name](s) for s in samples]
        return Figure([v for v in values if v is not None])

    def summary(self) -> list[dict[str, Any]]:
        rows = []
        for (size, executor, scenario), samples in self.groups().items():
            counted = self.counted(samples)
            states = Counter(str(s.get("state")) for s in samples)
            rows.append(
                {
                    "size": size,
                    "executor": executor,
                    "scenario": scenario,
                    "runs": len(samples),
                    "states": dict(states),
                    "figures_from": "success" if counted[0].get("state") == "success" else "all runs",
                    "every_row_present": all(
                        bool((s.get("rows") or {}).get("every_row_present")) for s in samples
                    ),
                    **{name: self.figure(counted, name).as_dict() for name in FIGURES},
                }
            )
        return rows

    def _successful(self, size: int, executor: str, scenario: str) -> list[Sample]:
        samples = self.groups().get((size, executor, scenario), [])
        return [s for s in samples if s.get("state") == "success"]

    def targets(self) -> list[dict[str, Any]]:
        """Each target per executor, with the measured value and met (True/False; None: not measured)."""
        sizes = sorted({int(s["size"]) for s in self.samples} | set(self.meta.get("sizes", [])))
        executors = list(self.meta.get("executors", [])) or sorted({str(s["executor"]) for s in self.samples})
        if not sizes:
            return []
        largest, smallest = sizes[-1], sizes[0]
        row_sizes = sizes[1:] or sizes
        small_only = bool(self.meta.get("small_repositories"))
        out: list[dict[str, Any]] = []

        def add(target: str, executor: str, value: str, met: bool | None) -> None:
            out.append({"target": target, "executor": executor, "measured": value, "met": met})

        def median(samples: Sequence[Sample], name: str) -> float | None:
            figure = self.figure(samples, name)
            return figure.median if figure.samples else None

        for executor in executors:
            # 1. Full-sync budget per repository, worst size.
            per_size = {n: median(self._successful(n, executor, FULL), "budget_per_repo") for n in sizes}
            measured = {n: v for n, v in per_size.items() if v is not None}
            target = f"full sync: budget per small repository <= {FULL_BUDGET_PER_SMALL_REPO}"
            if not measured:
                add(
                    target,
                    executor,
                    "no successful full sync",
                    None if not self._any(executor, FULL) else False,
                )
            else:
                worst_n = max(measured, key=lambda n: measured[n])
                text = f"{measured[worst_n]:.2f} (worst, at {worst_n:,})"
                if small_only:
                    add(target, executor, text, measured[worst_n] <= FULL_BUDGET_PER_SMALL_REPO)
                else:
                    add(
                        target,
                        executor,
                        text + "; mixed repository sizes, the simulator has no small-only option",
                        None,
                    )
            # 2. Unchanged incremental at the largest size.
            noop = self._successful(largest, executor, NOOP)
            budget, wall = median(noop, "budget"), median(noop, "wall_s")
            missing = "not measured" if not self._any(executor, NOOP, largest) else "no successful run"
            missed = None if missing == "not measured" else False
            add(
                f"incremental unchanged at {largest:,}: budget <= {NOOP_BUDGET_AT_LARGEST}",
                executor,
                missing if budget is None else f"{budget:,.0f}",
                missed if budget is None else budget <= NOOP_BUDGET_AT_LARGEST,
            )
            add(
                f"incremental unchanged at {largest:,}: wall <= {NOOP_WALL_S_AT_LARGEST} s",
                executor,
                missing if wall is None else f"{wall:,.1f} s",
                missed if wall is None else wall <= NOOP_WALL_S_AT_LARGEST,
            )
            # 3. Full-sync wall per repository: largest vs smallest.
            big = median(self._successful(largest, executor, FULL), "wall_per_repo_s")
            small = median(self._successful(smallest, executor, FULL), "wall_per_repo_s")
            target = f"full sync: wall/repository at {largest:,} <= {WALL_PER_REPO_GROWTH} x at {smallest:,}"
            if largest == smallest:
                add(target, executor, "needs two sizes", None)
            elif big is None or small is None:
                ran = self._any(executor, FULL, largest) and self._any(executor, FULL, smallest)
                add(
                    target,
                    executor,
                    "no successful run at both sizes" if ran else "not measured",
                    False if ran else None,
                )
            else:
                ratio = big / small if small else float("inf")
                add(
                    target,
                    executor,
                    f"{ratio:.2f} x ({big:.3f} s vs {small:.3f} s)",
                    ratio <= WALL_PER_REPO_GROWTH,
                )
            # 4. Every row present after the full sync.
            for n in row_sizes:
                samples = self.groups().get((n, executor, FULL), [])
                target = f"every row present at {n:,} (projects and project_metrics)"
                if not samples:
                    add(target, executor, "not measured", None)
                    continue
                present = [s.get("rows") or {} for s in samples]
                ok = all(r.get("every_row_present") for r in present) and all(
                    s.get("state") == "success" for s in samples
                )
                worst = min(present, key=lambda r: min(r.get("projects", 0), r.get("project_metrics", 0)))
                add(
                    target,
                    executor,
                    f"projects {worst.get('projects', 0):,}/{worst.get('repositories', n):,}, "
                    f"metrics {worst.get('project_metrics', 0):,}/{worst.get('repositories', n):,}"
                    + ("" if all(s.get("state") == "success" for s in samples) else " (a run failed)"),
                    ok,
                )
        return out

    def _any(self, executor: str, scenario: str, size: int | None = None) -> bool:
        return any(
            s["executor"] == executor and s["scenario"] == scenario and (size is None or s["size"] == size)
            for s in self.samples
        )

    # ------------------------------------------------------------------ output

    def as_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "summary": self.summary(),
            "targets": self.targets(),
            "notes": self.notes,
            "samples": self.samples,
        }

    def write(self, directory: Path) -> tuple[Path, Path, Path | None]:
        """Write JSON, Markdown and the chart; the chart is skipped (and said so) without matplotlib."""
        directory.mkdir(parents=True, exist_ok=True)
        json_path, md_path, png_path = directory / JSON_NAME, directory / MD_NAME, directory / PNG_NAME
        json_path.write_text(json.dumps(self.as_json(), indent=2, default=str) + "\n")
        md_path.write_text(self.markdown())
        try:
            write_chart(self, png_path)
        except ImportError as exc:
            log.warning("No chart (%s): install the test extra", exc)
            return json_path, md_path, None
        return json_path, md_path, png_path

    def markdown(self) -> str:
        meta = self.meta
        lines = [
            "# Scale benchmark: github-sync on real Airflow 3, cost against repository count",
            "",
            f"- command: `{meta.get('command', '')}`",
            f"- started: {meta.get('started', '')}; wall of the whole benchmark: {meta.get('bench_wall_s', '?')} s",
            f"- machine: {meta.get('machine', '')}",
            f"- simulator: latency {meta.get('latency_ms')} ms, rate limit {meta.get('rate_limit') or 0:,}/h, "
            f"seed {meta.get('seed')}, repositories: "
            + (
                f"small only (`{' '.join(meta.get('small_repository_args', []))}`)"
                if meta.get("small_repositories")
                else "the simulator's default mix (it has no small-only option)"
            ),
            f"- Airflow: pool `github_api` {meta.get('pool_slots')} slots; Celery: {meta.get('celery_workers')} "
            f"workers x concurrency {meta.get('celery_concurrency')}",
            "- cells: median (min-max) of the successful runs; state counts every run. Wall: trigger -> "
            f"final state, polled every {meta.get('state_poll_s')} s. RSS: peak, sampled every "
            f"{meta.get('rss_poll_s')} s. Workers: LocalExecutor = the scheduler's child processes (executor "
            "workers, task processes); Celery = every process of the worker trees. Scheduler RSS = its main "
            "process; worker RSS = the largest worker process; workers PSS = the sum over all worker processes "
            "(PSS splits the pages forked processes share, so the sum does not count them repeatedly).",
            "",
            "| N | executor | scenario | state | wall s | wall/repo s | budget | budget/repo | HTTP | 304s "
            "| TIs/run | rows present | scheduler RSS MB | worker RSS MB / workers PSS MB |",
            "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for row in self.summary():
            states = ", ".join(f"{k} {v}/{row['runs']}" for k, v in sorted(row["states"].items()))
            present = _rows_cell(self.groups()[(row["size"], row["executor"], row["scenario"])])
            lines.append(
                f"| {row['size']:,} | {EXECUTOR_TITLES.get(row['executor'], row['executor'])} "
                f"| {SCENARIO_TITLES.get(row['scenario'], row['scenario'])} | {states} "
                f"| {_cell(row['wall_s'], 1)} | {_cell(row['wall_per_repo_s'], 3)} | {_cell(row['budget'], 0)} "
                f"| {_cell(row['budget_per_repo'], 2)} | {_cell(row['requests'], 0)} | {_cell(row['not_modified'], 0)} "
                f"| {_cell(row['task_instances'], 0)} | {present} | {_cell(row['scheduler_mb'], 0)} "
                f"| {_cell(row['worker_largest_mb'], 0)} / {_cell(row['workers_pss_mb'], 0)} |"
            )
        lines += ["", "## Targets", "", "| target | executor | measured | met |", "|---|---|---|---|"]
        for t in self.targets():
            met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
            lines.append(
                f"| {t['target']} | {EXECUTOR_TITLES.get(t['executor'], t['executor'])} | {t['measured']} | {met} |"
            )
        lines += self._endpoint_lines()
        failures = [s for s in self.samples if s.get("state") != "success"]
        if failures:
            lines += ["", "## Runs that did not succeed", ""]
            for s in failures:
                tis = s.get("task_instances") or {}
                lines.append(
                    f"- {s['size']:,} / {s['executor']} / {s['scenario']} #{s['repetition']}: {s.get('state')}"
                    + (" (after a full sync that did not succeed)" if s.get("after_failed_full") else "")
                    + (
                        f"; failed tasks: {', '.join(tis['failed_examples'])}"
                        if tis.get("failed_examples")
                        else ""
                    )
                    + (f"; {s['error']}" if s.get("error") else "")
                    + (f"; run `{s['run_id']}`" if s.get("run_id") else "")
                )
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        lines.append("")
        return "\n".join(lines)

    def _endpoint_lines(self) -> list[str]:
        """HTTP requests per repository by endpoint (median over successful runs), full sync."""
        columns = [(size, executor) for (size, executor, scenario) in self.groups() if scenario == FULL]
        if not columns:
            return []
        per_column: dict[tuple[int, str], dict[str, float]] = {}
        endpoints: set[str] = set()
        for size, executor in columns:
            samples = self.counted(self.groups()[(size, executor, FULL)])
            counts: dict[str, float] = {}
            for endpoint in {e for s in samples for e in (s.get("by_endpoint") or {})}:
                figure = Figure([float((s.get("by_endpoint") or {}).get(endpoint, 0)) for s in samples])
                counts[endpoint] = figure.median / size
            per_column[(size, executor)] = counts
            endpoints |= counts.keys()
        lines = [
            "",
            "## Full sync: HTTP requests per repository, by endpoint (median)",
            "",
            "| endpoint | " + " | ".join(f"{n:,} {e}" for n, e in columns) + " |",
            "|---|" + "---:|" * len(columns),
        ]
        for endpoint in sorted(endpoints, key=lambda e: -max(c.get(e, 0) for c in per_column.values())):
            lines.append(
                f"| `{endpoint}` | "
                + " | ".join(f"{per_column[c].get(endpoint, 0):.2f}" for c in columns)
                + " |"
            )
        return lines


def _cell(figure: Mapping[str, Any], digits: int) -> str:
    if not figure.get("n"):
        return "-"

    def fmt(value: float) -> str:
        return f"{value:,.{digits}f}"

    text = fmt(figure["median"])
    if figure["n"] > 1 and figure["min"] != figure["max"]:
        text += f" ({fmt(figure['min'])}-{fmt(figure['max'])})"
    return text


def _rows_cell(samples: Sequence[Sample]) -> str:
    rows = [s.get("rows") or {} for s in samples]
    if not rows or not all(rows):
        return "-"
    if all(r.get("every_row_present") for r in rows):
        return "every row"
    worst = min(rows, key=lambda r: min(r.get("projects", 0), r.get("project_metrics", 0)))
    return f"{worst.get('projects', 0):,} / {worst.get('project_metrics', 0):,} of {worst.get('repositories', 0):,}"


def write_chart(results: ScaleResults, path: Path) -> None:
    """Wall seconds and budget requests against N (log x, symlog y), one line per executor and scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    panels = (("wall_s", "wall s (trigger -> final state)"), ("budget", "budget requests"))
    styles = {FULL: "-", NOOP: "--"}
    markers = {FULL: "o", NOOP: "s"}
    colours = {"local": "tab:blue", "celery": "tab:orange"}
    lines: dict[tuple[str, str], list[tuple[int, float, bool]]] = {}
    for row in results.summary():
        for name, _ in panels:
            if row[name]["n"]:
                ok = row["figures_from"] == "success"
                lines.setdefault((row["executor"], row["scenario"] + ":" + name), []).append(
                    (row["size"], row[name]["median"], ok)
                )
    executors = [str(e) for e in results.meta.get("executors", [])]
    sizes = sorted({int(s["size"]) for s in results.samples})

    def legend_order(item: tuple[tuple[str, str], Any]) -> tuple[int, str]:
        executor, key = item[0]
        return (executors.index(executor) if executor in executors else len(executors)), key

    for ax, (name, title) in zip(axes, panels, strict=True):
        for (executor, key), points in sorted(lines.items(), key=legend_order):
            scenario, figure_name = key.split(":")
            if figure_name != name:
                continue
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            label = f"{EXECUTOR_TITLES.get(executor, executor)}, {SCENARIO_TITLES.get(scenario, scenario)}"
            colour = colours.get(executor, "tab:gray")
            ax.plot(
                xs,
                ys,
                styles.get(scenario, ":"),
                marker=markers.get(scenario, "o"),
                color=colour,
                label=label,
            )
            failed = [(x, y) for x, y, ok in points if not ok]
            if failed:
                ax.scatter(*zip(*failed, strict=True), marker="x", s=90, color="red", zorder=3)
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("repositories (N)")
        ax.set_ylabel(title)
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
    if lines:
        axes[0].legend(fontsize=8)
    meta = results.meta
    fig.suptitle(
        f"github-sync on Airflow 3: cost against repository count (latency {meta.get('latency_ms')} ms"
        + (", small repositories" if meta.get("small_repositories") else ", default repository mix")
        + "; red x: no run succeeded)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
