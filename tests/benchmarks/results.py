"""Collect measurements and write them as JSON and as a Markdown table (with ratios and targets)."""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.benchmarks.common import FIGURES, Figure, Measurement

log = logging.getLogger(__name__)

SCENARIO_TITLES = {
    "full": "1. Full sync",
    "incremental_noop": "2. Incremental, nothing changed",
    "incremental_changed": "3. Incremental, k repositories changed",
    "one_repo": "4. One repository (github_repo_sync)",
    "webhook": "5. Webhook delivery -> row visible",
    "db_load": "6. Database load (loader alone)",
}
SYSTEM_TITLES = {
    "product": "github-sync, in-process (run_sync)",
    "product_airflow": "github-sync, real Airflow (LocalExecutor)",
    "pygithub": "Baseline A: GithubHook (PyGithub) + insert_rows",
    "meltano": "Baseline B: MeltanoLabs tap-github",
}
FIGURE_TITLES = {
    "budget": "budget requests",
    "requests": "HTTP requests",
    "not_modified": "304s",
    "wall_s": "wall s",
    "peak_rss_mb": "peak RSS MB",
    "rows": "rows written",
}
BASELINES = ("pygithub", "meltano")
# Issue #18's freshness targets for scenario 5 (real Airflow, LocalExecutor).
WEBHOOK_MEDIAN_TARGET_S = 1.5
WEBHOOK_P95_TARGET_S = 3.0
# "A handful" of runs for a 500-delivery burst.
WEBHOOK_BURST_RUNS_TARGET = 5


@dataclass
class Results:
    """Every measurement of one suite run, keyed by scenario and system."""

    meta: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, dict[str, list[Measurement]]] = field(default_factory=lambda: defaultdict(dict))
    notes: list[str] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        """Rebuild the results of a written ``results.json`` (to re-render its Markdown)."""
        results = cls(meta=data["meta"], notes=list(data.get("notes", [])), webhook=data.get("webhook", {}))
        for scenario, systems in data["runs"].items():
            for system, measurements in systems.items():
                results.runs[scenario][system] = [Measurement(**m) for m in measurements]
        return results

    def add(self, scenario: str, system: str, measurement: Measurement) -> None:
        self.runs[scenario].setdefault(system, []).append(measurement)
        log.info(
            "%s / %s: budget=%s requests=%s 304=%s wall=%.1fs rss=%.0fMB rows=%s",
            scenario, system, measurement.budget, measurement.requests, measurement.not_modified,
            measurement.wall_s or float("nan"), measurement.peak_rss_mb or float("nan"), measurement.rows,
        )  # fmt: skip

    def note(self, text: str) -> None:
        log.warning("%s", text)
        self.notes.append(text)

    def figure(self, scenario: str, system: str, name: str) -> Figure:
        values = [getattr(m, name) for m in self.runs.get(scenario, {}).get(system, [])]
        return Figure([float(v) for v in values if v is not None])

    def extra_figure(self, scenario: str, system: str, key: str) -> Figure:
        values = [m.extra.get(key) for m in self.runs.get(scenario, {}).get(system, [])]
        return Figure([float(v) for v in values if isinstance(v, int | float)])

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for scenario, systems in self.runs.items():
            out[scenario] = {}
            for system in systems:
                figures = {name: self.figure(scenario, system, name).as_dict() for name in FIGURES}
                out[scenario][system] = {k: v for k, v in figures.items() if v["n"]}
        if "db_load" in self.runs:
            for key in ("new_rows_per_s", "unchanged_rows_per_s"):
                out["db_load"]["product"][key] = self.extra_figure("db_load", "product", key).as_dict()
        overhead = {}
        for scenario in ("full", "incremental_noop", "incremental_changed", "one_repo"):
            inproc = self.figure(scenario, "product", "wall_s")
            airflow = self.figure(scenario, "product_airflow", "wall_s")
            if inproc.samples and airflow.samples:
                overhead[scenario] = round(airflow.median - inproc.median, 2)
        if overhead:
            out["airflow_overhead_s"] = overhead
        return out

    def targets(self) -> list[dict[str, Any]]:
        """Each target of the issue with the measured value and met/missed (None: not measured)."""
        repos = int(self.meta.get("repos", 180))
        k = int(self.meta.get("changed", 10))

        def med(scenario: str, system: str, name: str) -> float | None:
            f = self.figure(scenario, system, name)
            return f.median if f.samples else None

        def row(
            target: str, value: float | None, ok: bool | None, unit: str = "", text: str | None = None
        ) -> dict[str, Any]:
            rounded = None if value is None else round(value, 2)
            if text is None:
                text = "not measured" if rounded is None else f"{rounded:,} {unit}".strip()
            return {"target": target, "value": rounded, "unit": unit, "met": ok, "text": text}

        def cmp(value: float | None, limit: float) -> bool | None:
            return None if value is None else value <= limit

        rows = []
        budget = med("full", "product", "budget")
        per_repo = None if budget is None else budget / repos
        rows.append(
            row("Full sync: <= 5 budget requests per repository", per_repo, cmp(per_repo, 5), "req/repo")
        )
        wall = med("full", "product_airflow", "wall_s")
        rows.append(
            row("Full sync: < 180 s on real Airflow", wall, None if wall is None else wall < 180, "s")
        )
        for baseline in BASELINES:
            b_budget, b_wall = med("full", baseline, "budget"), med("full", baseline, "wall_s")
            p_wall = med("full", "product", "wall_s")
            ok, text = None, "not measured"
            if None not in (budget, b_budget, b_wall, p_wall):
                ok = budget < b_budget and p_wall < b_wall  # type: ignore[operator]
                text = (
                    f"budget {budget:.0f} vs {b_budget:.0f}; wall {p_wall:.0f} s vs {b_wall:.0f} s"
                    " (in-process vs baseline)"
                )
            title = SYSTEM_TITLES[baseline].split(":")[0]
            rows.append(row(f"Full sync: fewer requests and less time than {title}", None, ok, text=text))
        noop = med("incremental_noop", "product", "budget")
        rows.append(row("Incremental, nothing changed: <= 2 budget requests", noop, cmp(noop, 2), "req"))
        wall = med("incremental_noop", "product_airflow", "wall_s")
        rows.append(
            row(
                "Incremental, nothing changed: < 30 s on real Airflow",
                wall,
                None if wall is None else wall < 30,
                "s",
            )
        )
        changed = med("incremental_changed", "product", "budget")
        rows.append(
            row(
                f"Incremental, {k} changed: <= 2 + 5x{k} budget requests",
                changed,
                cmp(changed, 2 + 5 * k),
                "req",
            )
        )
        one = med("one_repo", "product", "budget")
        rows.append(row("One repository: <= 6 budget requests", one, cmp(one, 6), "req"))
        wall = med("one_repo", "product_airflow", "wall_s")
        rows.append(
            row("One repository: < 15 s on real Airflow", wall, None if wall is None else wall < 15, "s")
        )
        median = self.webhook.get("latency_s", {}).get("median")
        rows.append(
            row(
                "Webhook -> row: median <= 1.5 s on real Airflow",
                median,
                cmp(median, WEBHOOK_MEDIAN_TARGET_S),
                "s",
            )
        )
        p95 = self.webhook.get("latency_s", {}).get("p95")
        rows.append(
            row(
                "Webhook -> row: p95 <= 3 s on real Airflow",
                p95,
                cmp(p95, WEBHOOK_P95_TARGET_S),
                "s",
            )
        )
        burst_runs = self.webhook.get("burst", {}).get("dag_runs")
        rows.append(
            row(
                "Webhook burst of 500: a handful (<= 5) of DAG runs",
                burst_runs,
                cmp(burst_runs, WEBHOOK_BURST_RUNS_TARGET),
                "runs",
            )
        )
        rate = self.extra_figure("db_load", "product", "new_rows_per_s")
        value = rate.median if rate.samples else None
        rows.append(
            row(
                "Database load: >= 20,000 rows/s (new rows)",
                value,
                None if value is None else value >= 20_000,
                "rows/s",
            )
        )
        return rows

    def as_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "summary": self.summary(),
            "targets": self.targets(),
            "webhook": self.webhook,
            "notes": self.notes,
            "runs": {
                scenario: {system: [asdict(m) for m in ms] for system, ms in systems.items()}
                for scenario, systems in self.runs.items()
            },
        }

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        json_path = directory / "results.json"
        md_path = directory / "results.md"
        json_path.write_text(json.dumps(self.as_json(), indent=2, default=str) + "\n")
        md_path.write_text(self.markdown())
        return json_path, md_path

    # ------------------------------------------------------------------------------ markdown

    def _endpoint_lines(self) -> list[str]:
        breakdown = _endpoint_breakdown(self, "full")
        if not breakdown:
            return []
        systems = [s for s in SYSTEM_TITLES if s in breakdown]
        endpoints = sorted({e for counts in breakdown.values() for e in counts})
        lines = [
            "",
            "HTTP requests by endpoint, full sync (one repetition; every status counted):",
            "",
            "| endpoint | " + " | ".join(SYSTEM_TITLES[s] for s in systems) + " |",
            "|---|" + "---|" * len(systems),
        ]
        for endpoint in endpoints:
            lines.append(
                f"| `{endpoint}` | " + " | ".join(str(breakdown[s].get(endpoint, 0)) for s in systems) + " |"
            )
        return lines

    def markdown(self) -> str:
        m = self.meta
        lines = [
            "# github-sync benchmark results",
            "",
            f"Run {m.get('started')} on {m.get('machine')}; simulator: {m.get('repos')} repositories, "
            f"seed {m.get('seed')}, {m.get('latency_ms')} ms per request; k = {m.get('changed')} changed "
            f"repositories; {m.get('runs')} repetitions (real Airflow: {m.get('airflow_runs')}). "
            f"Suite wall time: {m.get('suite_wall_s', '?')} s"
            + (f" (first start to last end of {len(m['parts'])} merged parts)" if m.get("parts") else "")
            + f". Command: `{m.get('command')}`.",
            "",
            "Each cell: median (min-max) over the repetitions. Ratios: github-sync in-process median / "
            "baseline median (below 1 = github-sync better).",
            "",
            "| scenario | system | "
            + " | ".join(FIGURE_TITLES[f] for f in FIGURES)
            + " | budget vs A | wall vs A | budget vs B | wall vs B |",
            "|---|---|" + "---|" * (len(FIGURES) + 4),
        ]
        for scenario, title in SCENARIO_TITLES.items():
            for system, sys_title in SYSTEM_TITLES.items():
                if system not in self.runs.get(scenario, {}):
                    continue
                cells = [_cell(self.figure(scenario, system, f)) for f in FIGURES]
                ratios = []
                for baseline in BASELINES:
                    for name in ("budget", "wall_s"):
                        ratios.append(_ratio(self.figure(scenario, system, name), self.figure(scenario, baseline, name))
                                      if system.startswith("product") else "")  # fmt: skip
                if scenario == "db_load":
                    sys_title = "github-sync loader (upsert_rows)"
                lines.append(f"| {title} | {sys_title} | " + " | ".join(cells + ratios) + " |")
        overhead = self.summary().get("airflow_overhead_s")
        if overhead:
            lines += [
                "",
                "Airflow's overhead (real-Airflow median wall time - in-process median wall time):",
                "",
            ]
            lines += [f"- {SCENARIO_TITLES[s]}: {v:+.1f} s" for s, v in overhead.items()]
        if "db_load" in self.runs:
            new = self.extra_figure("db_load", "product", "new_rows_per_s")
            same = self.extra_figure("db_load", "product", "unchanged_rows_per_s")
            lines += [
                "",
                f"Database load ({m.get('db_rows')} issues + {m.get('db_rows')} commits): new rows "
                f"{_cell(new, 0)} rows/s; unchanged re-upsert {_cell(same, 0)} rows/s.",
            ]
        if self.webhook:
            w = self.webhook
            lines += ["", f"Webhook delivery -> row visible in PostgreSQL ({w.get('deliveries')} deliveries, "
                      f"relay coalescing {w.get('coalesce_s')} s):", ""]  # fmt: skip
            for key, label in (
                ("latency_s", "total: mutation in the simulator -> row visible"),
                ("relay_s", "simulator -> relay -> DAG run triggered (incl. coalescing)"),
                (
                    "scheduling_s",
                    "Airflow: run triggered -> task started (scheduling, queueing, worker start)",
                ),
                ("task_s", "task started -> delivery applied"),
            ):
                if key in w:
                    lines.append(f"- {label}: median {w[key]['median']} s, p95 {w[key]['p95']} s")
            if burst := w.get("burst"):
                lines.append(
                    f"- burst: {burst['deliveries']} deliveries sent in {burst['sent_s']} s -> "
                    f"{burst['dag_runs']} DAG runs, every row visible after {burst['all_rows_visible_s']} s"
                )
        lines += self._endpoint_lines()
        lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
        for t in self.targets():
            value = t["text"]
            met = {True: "met", False: "**missed**", None: "n/a"}[t["met"]]
            lines.append(f"| {t['target']} | {value} | {met} |")
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def _endpoint_breakdown(results: Results, scenario: str) -> dict[str, dict[str, int]]:
    """``{system: {endpoint: requests}}`` of the first repetition of ``scenario`` that recorded them."""
    out: dict[str, dict[str, int]] = {}
    for system, measurements in results.runs.get(scenario, {}).items():
        for m in measurements:
            if m.extra.get("by_endpoint"):
                out[system] = dict(m.extra["by_endpoint"])
                break
    return out


def _fmt(value: float, digits: int | None = None) -> str:
    if digits is None:
        digits = 0 if abs(value) >= 100 or float(value).is_integer() else 1
    return f"{value:,.{digits}f}"


def _cell(figure: Figure, digits: int | None = None) -> str:
    if not figure.samples:
        return "-"
    if len(figure.samples) == 1:
        return _fmt(figure.median, digits)
    return f"{_fmt(figure.median, digits)} ({_fmt(min(figure.samples), digits)}-{_fmt(max(figure.samples), digits)})"


def _ratio(product: Figure, baseline: Figure) -> str:
    if not product.samples or not baseline.samples or baseline.median == 0 or math.isnan(baseline.median):
        return "-"
    return f"{product.median / baseline.median:.2f}"
