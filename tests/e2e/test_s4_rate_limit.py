"""Scenario 4: the GitHub budget runs out in the middle of a full sync.

A dedicated simulator (short rate-limit windows) and a dedicated token: just above the
hook's 10 % reserve is left when the run starts, so the mapped tasks hit the reserve, and
with ``max_wait_s = 1`` in the connection's extra the hook raises instead of sleeping: the
tasks defer (``deferred`` in the REST API), the triggerer wakes them after the simulated
reset and the run completes. "Every row" is checked against a reference sync of the same
organisation by ``github-sync sync`` (the same sync code, no Airflow, no rate limit) into a
database of its own.

The scenario repoints the deployment's two connections (REST API) to its simulator and
target database for the run and restores them afterwards.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from github_sync.config import DATABASE_CONN_ID, GITHUB_CONN_ID, github_connection, postgres_connection
from tests.e2e.harness import (
    BIN,
    HOOK_EXTRA,
    SIM_TOKEN,
    Deployment,
    sim_control,
    simulator_service,
    temporary_database,
)

pytestmark = pytest.mark.e2e

REPOS = 12
RESET_INTERVAL_S = 40
LIMIT = 5000
RESERVE = int(LIMIT * 0.1)  # the hook's default reserve_fraction
# Enough for list_repositories (2 requests) and a few repository requests, then the reserve.
HEADROOM = 12
RL_TOKEN = "ghp_e2e_ratelimited_0123456789"
TABLES = {
    "projects": "SELECT full_name FROM projects",
    "bugs": "SELECT github_id::text FROM bugs",
    "pull_requests": "SELECT p.full_name || '#' || r.number FROM pull_requests r JOIN projects p ON p.id = r.project_id",
    "commits": "SELECT sha FROM commits",
    "project_metrics": "SELECT p.full_name FROM project_metrics m JOIN projects p ON p.id = m.project_id",
}


@pytest.fixture
def limited(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The dedicated simulator, target and reference databases; connections repointed meanwhile."""
    home = tmp_path_factory.mktemp("ratelimit")
    sim, sim_url = simulator_service(home, repos=REPOS, seed=7, reset_interval_s=RESET_INTERVAL_S)
    try:
        with (
            temporary_database("github_sync_e2e_rl", migrate=True) as target,
            temporary_database("github_sync_e2e_ref", migrate=True) as reference,
        ):
            reference_sync(sim_url, reference, home)
            deployment.set_connection(
                GITHUB_CONN_ID,
                github_connection(sim_url, RL_TOKEN, {**HOOK_EXTRA, "max_wait_s": 1}),
            )
            deployment.set_connection(DATABASE_CONN_ID, postgres_connection(target))
            try:
                yield {"sim_url": sim_url, "target": target, "reference": reference}
            finally:
                deployment.set_connection(
                    GITHUB_CONN_ID,
                    github_connection(deployment.sim_url, SIM_TOKEN, HOOK_EXTRA),
                )
                deployment.set_connection(DATABASE_CONN_ID, postgres_connection(deployment.database_url))
    finally:
        sim.stop()


def reference_sync(sim_url: str, database_url: str, home: os.PathLike[str]) -> None:
    """``github-sync sync`` (no Airflow) with a token of its own: the rows a full sync must produce."""
    env = {
        **os.environ,
        "GITHUB_SYNC_DATABASE_URL": database_url,
        "GITHUB_TOKEN": "ghp_e2e_reference",
        "GITHUB_API_URL": sim_url,
        "GITHUB_OWNER": "acme",
    }
    subprocess.run(
        [str(BIN / "github-sync"), "sync", "--owner", "acme"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def rows(deployment: Deployment, url: str) -> dict[str, set[str]]:
    return {table: {r[0] for r in deployment.query(sql, url=url)} for table, sql in TABLES.items()}


def test_budget_exhaustion_defers_and_resumes(deployment: Deployment, limited: dict) -> None:
    sim_url = limited["sim_url"]
    # Starts the token's window now (RESET_INTERVAL_S long) with just above the reserve left.
    sim_control(sim_url, "rate-limit", {"token": RL_TOKEN, "remaining": RESERVE + HEADROOM})
    started = time.monotonic()
    run_id = deployment.trigger("github_full_sync", {"owner": "acme"})

    deferred_seen: set[str] = set()
    first_deferred_at: list[float] = []

    def watch() -> None:
        for ti in deployment.task_instances("github_full_sync", run_id, task_id="sync_repository"):
            if ti.state is not None and ti.state.value == "deferred":
                deferred_seen.add(ti.rendered_map_index or str(ti.map_index))
                if not first_deferred_at:
                    first_deferred_at.append(time.monotonic() - started)

    state, waited = deployment.wait_for_run("github_full_sync", run_id, timeout=300, on_poll=watch)
    assert state == "success", f"see {deployment.home}"
    assert deferred_seen, "no mapped task was ever deferred"

    outcomes = deployment.query(
        "SELECT repository, state, deferrals FROM sync_repository_runs WHERE run_id = %s",
        (run_id,),
        url=limited["target"],
    )
    assert {state for _, state, _ in outcomes} <= {"success", "skipped"}, outcomes
    deferrals = sum(d for _, _, d in outcomes)
    assert deferrals >= len(deferred_seen)

    got, expected = rows(deployment, limited["target"]), rows(deployment, limited["reference"])
    for table in TABLES:
        assert got[table] == expected[table], (
            f"{table}: {len(got[table])} rows, expected {len(expected[table])}"
        )
    stats = sim_control(sim_url, "stats")
    deployment.report(
        "scenario4_rate_limit",
        {
            "run_s": round(waited, 1),
            "first_deferred_after_s": round(first_deferred_at[0], 1) if first_deferred_at else None,
            "tasks_seen_deferred": len(deferred_seen),
            "deferrals_recorded": deferrals,
            "reset_interval_s": RESET_INTERVAL_S,
            "rows": {table: len(values) for table, values in got.items()},
            "simulator_by_status": stats.get("by_status"),
        },
    )
