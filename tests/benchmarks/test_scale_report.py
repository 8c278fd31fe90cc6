"""Checks of the scale benchmark's bookkeeping, without Airflow: figures, targets, files, option detection.

The benchmark itself (``python -m tests.benchmarks --scale``) needs a real Airflow and runs for
hours at its default sizes; these tests feed its report made-up samples instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks.scale import runs_for
from tests.benchmarks.scale_report import FULL, NOOP, ScaleResults


def _sample(
    size: int, executor: str, scenario: str, *, state: str = "success", wall: float, budget: int, rep: int = 1
) -> dict[str, Any]:
    present = state == "success"
    return {
        "size": size,
        "executor": executor,
        "scenario": scenario,
        "repetition": rep,
        "run_id": f"manual__{size}_{scenario}_{rep}",
        "state": state,
        "error": None,
        "wall_s": wall,
        "wall_per_repo_s": wall / size,
        "budget": budget,
        "budget_per_repo": budget / size,
        "requests": budget + 5,
        "not_modified": 5,
        "by_endpoint": {"GET /repos/{owner}/{repo}/issues": budget},
        "rows": {
            "repositories": size,
            "projects": size if present else 0,
            "project_metrics": size if present else 0,
            "every_row_present": present,
        },
        "task_instances": {
            "total": size + 2,
            "mapped": size,
            "by_state": {state: size + 2},
            "failed_examples": [],
        },
        "rss": {"scheduler_mb": 180.0, "worker_largest_mb": 170.0, "workers_pss_mb": 400.0},
    }


def _results() -> ScaleResults:
    meta = {"sizes": [180, 1500], "executors": ["local"], "small_repositories": True, "latency_ms": 100}
    samples = [
        _sample(180, "local", FULL, wall=180.0, budget=720, rep=1),
        _sample(180, "local", FULL, wall=200.0, budget=740, rep=2),
        _sample(180, "local", FULL, wall=190.0, budget=730, rep=3),
        _sample(180, "local", NOOP, wall=10.0, budget=1),
        _sample(1500, "local", FULL, state="failed", wall=30.0, budget=15),
        _sample(1500, "local", NOOP, wall=400.0, budget=3),
    ]
    return ScaleResults(meta=meta, samples=samples)


def test_figures_are_medians_of_the_successful_runs() -> None:
    summary = {(r["size"], r["scenario"]): r for r in _results().summary()}
    full = summary[(180, FULL)]
    assert (
        full["wall_s"]["median"] == 190.0
        and full["wall_s"]["min"] == 180.0
        and full["wall_s"]["max"] == 200.0
    )
    assert full["budget_per_repo"]["median"] == pytest.approx(730 / 180, abs=1e-3)
    assert full["task_instances"]["median"] == 182
    failed = summary[(1500, FULL)]
    assert failed["states"] == {"failed": 1} and failed["figures_from"] == "all runs"


def test_targets_count_failed_runs_as_missed() -> None:
    targets = {t["target"]: t for t in _results().targets()}
    assert targets["full sync: budget per small repository <= 4.5"]["met"] is True
    assert targets["incremental unchanged at 1,500: budget <= 10"]["met"] is True
    assert targets["incremental unchanged at 1,500: wall <= 180 s"]["met"] is False
    assert targets["full sync: wall/repository at 1,500 <= 1.5 x at 180"]["met"] is False
    assert targets["every row present at 1,500 (projects and project_metrics)"]["met"] is False


def test_budget_target_is_not_judged_on_mixed_repository_sizes() -> None:
    results = _results()
    results.meta["small_repositories"] = False
    targets = {t["target"]: t for t in results.targets()}
    assert targets["full sync: budget per small repository <= 4.5"]["met"] is None


def test_files_are_written_and_re_read(tmp_path: Path) -> None:
    json_path, md_path, png_path = _results().write(tmp_path)
    data = json.loads(json_path.read_text())
    assert len(data["samples"]) == 6 and data["targets"]
    assert ScaleResults.from_json(data).summary() == _results().summary()
    markdown = md_path.read_text()
    assert "| 180 | LocalExecutor | full sync | success 3/3 | 190.0 (180.0-200.0) |" in markdown
    assert "## Targets" in markdown and "## Runs that did not succeed" in markdown
    assert png_path is not None and png_path.read_bytes().startswith(b"\x89PNG")


def test_repetitions_default_to_two_at_ten_thousand() -> None:
    assert (runs_for(180, None), runs_for(10_000, None), runs_for(10_000, 1)) == (3, 2, 1)
