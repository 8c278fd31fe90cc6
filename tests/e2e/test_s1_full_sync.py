"""Scenario 1: a full sync triggered through the REST API (official client) on a real Airflow.

Checks the target tables against the simulator's organisation and the ``import_logs`` row
that the DAG-level success callback writes in the dag-processor.
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import POLL_S, Deployment, organisation
from tests.polling import wait_until

pytestmark = pytest.mark.e2e


def callback_log_lines(deployment: Deployment, run_id: str) -> list[str]:
    """Lines of the dag-processor's logs (not the tasks') naming the run's import_logs row."""
    home = deployment.airflow.home
    candidates = [home / "dag-processor.log", *sorted((home / "logs").rglob("*"))]
    lines: list[str] = []
    for path in candidates:
        if not path.is_file() or "dag_id=" in str(path):  # task logs live under dag_id=.../
            continue
        lines += [
            line
            for line in path.read_text(errors="replace").splitlines()
            if "import_logs row" in line and run_id in line
        ]
    return lines


def test_full_sync_through_rest_api(deployment: Deployment, full_sync_run: dict) -> None:
    run_id = str(full_sync_run["run_id"])
    assert full_sync_run["state"] == "success", f"see {deployment.home}"

    repos = organisation(deployment.sim_url)
    listed = {r["full_name"] for r in repos}  # archived repositories are synced by default
    rows = dict(
        deployment.query(
            "SELECT repository, state FROM sync_repository_runs WHERE dag_id = %s AND run_id = %s",
            ("github_full_sync", run_id),
        )
    )
    assert set(rows) == listed
    assert set(rows.values()) <= {"success", "skipped"}, rows

    projects = {name for (name,) in deployment.query("SELECT full_name FROM projects")}
    assert listed <= projects
    counts = dict(
        deployment.query(
            "SELECT 'bugs', count(*) FROM bugs UNION ALL SELECT 'pull_requests', count(*) FROM pull_requests "
            "UNION ALL SELECT 'commits', count(*) FROM commits "
            "UNION ALL SELECT 'project_metrics', count(*) FROM project_metrics"
        )
    )
    assert all(counts[table] > 0 for table in counts), counts
    synced_records = deployment.query(
        "SELECT sum(records) FROM sync_repository_runs WHERE dag_id = %s AND run_id = %s",
        ("github_full_sync", run_id),
    )[0][0]
    assert synced_records >= counts["bugs"] + counts["pull_requests"] + counts["commits"]

    # The DAG-level on_success_callback runs in the dag-processor a moment after the run ends.
    logs = wait_until(
        lambda: deployment.query(
            "SELECT metadata FROM import_logs WHERE metadata->>'run_id' = %s", (run_id,)
        ),
        timeout=90,
        interval=POLL_S,
        message="the import_logs row of the callback",
    )
    assert len(logs) == 1
    metadata = logs[0][0]
    assert metadata["state"] == "success"
    assert deployment.query(
        "SELECT logged, state FROM sync_runs WHERE dag_id = 'github_full_sync' AND run_id = %s", (run_id,)
    ) == [(True, "success")]
    assert callback_log_lines(deployment, run_id), "no dag-processor log line of the callback"

    deployment.report(
        "scenario1_full_sync",
        {
            "repositories": len(listed),
            "run_s": round(float(full_sync_run["seconds"]), 1),
            "rows": counts,
            "requests": metadata.get("requests"),
        },
    )
