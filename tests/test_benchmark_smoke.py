"""Smoke test of the benchmark suite (``python -m tests.benchmarks``) at a tiny size.

5 repositories, no latency, 1 repetition; the in-process product, Baseline A and the
database load only (no real Airflow, no webhook relay, no tap-github venv). It checks that
the suite runs end to end and writes consistent results, not any timing.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmarks.suite import main


def test_benchmark_suite_runs_at_a_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "results"
    status = main(
        [
            "--repos", "5", "--latency-ms", "0", "--runs", "1", "--changed", "2", "--db-rows", "500",
            "--only", "product", "pygithub", "db_load", "--results-dir", str(out), "--log-level", "WARNING",
        ]
    )  # fmt: skip
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    summary = results["summary"]
    for scenario in ("full", "incremental_noop", "incremental_changed"):
        for system in ("product", "pygithub"):
            figures = summary[scenario][system]
            assert figures["wall_s"]["n"] == 1
            assert figures["requests"]["median"] >= figures["budget"]["median"] >= 0
    assert summary["full"]["product"]["rows"]["median"] > 0
    assert summary["full"]["pygithub"]["rows"]["median"] > 0
    # A re-run of an unchanged organisation is (almost) free for the product.
    assert (
        summary["incremental_noop"]["product"]["budget"]["median"]
        <= summary["full"]["product"]["budget"]["median"]
    )
    assert summary["one_repo"]["product"]["budget"]["median"] >= 1
    assert summary["db_load"]["product"]["new_rows_per_s"]["median"] > 0
    assert results["runs"]["db_load"]["product"][0]["extra"]["unchanged_written"] == 0
    markdown = (out / "results.md").read_text()
    assert "| 1. Full sync |" in markdown and "## Targets" in markdown
