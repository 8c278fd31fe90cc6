"""Runs with more repositories than Airflow may map: shards, through dag.test() against the simulator.

``[core] max_map_length`` is set low here (Airflow refuses a longer mapped list), so that a
small organisation needs shards the way one of 10,000 repositories does in production. What
must hold: every repository synced, per-repository outcome rows (with their shard), a bounded
number of mapped tasks, a failed repository failing alone and a retry redoing only it, and
runs with few targets keeping one task per repository, named after it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from github_sim import Simulator
from tests.dags.conftest import connect_airflow_to

REPOS = 30
MAX_MAP_LENGTH = 4


@pytest.fixture
def sharded(
    monkeypatch: pytest.MonkeyPatch, start_simulator: Callable[..., Simulator], pg_database: str
) -> Simulator:
    sim = start_simulator(repos=REPOS, seed=8, big_repos=0)
    connect_airflow_to(monkeypatch, sim, pg_database)
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", str(MAX_MAP_LENGTH))
    monkeypatch.setenv("GITHUB_SYNC_POOL_SLOTS", "2")
    return sim


def mapped_tasks(run: Any, task_id: str = "sync_repository") -> dict[str, tuple[str, int]]:
    """{rendered name in the UI: (state, try_number)} of a finished dag.test() run's mapped task."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = (
            session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id).all()
        )
        return {str(ti.rendered_map_index): (str(ti.state), int(ti.try_number)) for ti in tis}


def test_more_repositories_than_airflow_maps_are_all_synced_in_shards(
    dagbag: Any, sharded: Simulator, pg_conn: psycopg.Connection
) -> None:
    sim = sharded
    run = dagbag.get_dag("github_full_sync").test(run_conf={"owner": "acme"})
    assert run.state == "success"

    names = sorted(f"acme/{repo.name}" for repo in sim.state.repos())
    assert len(names) == REPOS > MAX_MAP_LENGTH
    synced = [name for (name,) in pg_conn.execute(
        "SELECT p.full_name FROM projects p JOIN project_metrics m ON m.project_id = p.id ORDER BY 1"
    )]  # fmt: skip
    assert synced == names
    issues = (
        pg_conn.execute("SELECT count(*) FROM bugs").fetchone()[0]
        + pg_conn.execute("SELECT count(*) FROM pull_requests").fetchone()[0]
    )
    assert issues == sum(len(repo.issues) for repo in sim.state.repos())

    tasks = mapped_tasks(run)
    assert len(tasks) == MAX_MAP_LENGTH
    assert all(state == ("success", 1) for state in tasks.values()), tasks
    labels = [re.fullmatch(rf"shard (\d)/{MAX_MAP_LENGTH}: (\d+) repositories", label) for label in tasks]
    assert all(labels), sorted(tasks)
    assert sorted(int(m[1]) for m in labels if m) == list(range(1, MAX_MAP_LENGTH + 1))
    assert sum(int(m[2]) for m in labels if m) == REPOS

    # Progress, the failure rule and import_logs stay per repository; each row names its shard.
    rows = pg_conn.execute(
        "SELECT repository, state, shard, requests FROM sync_repository_runs WHERE run_id = %s ORDER BY repository",
        (run.run_id,),
    ).fetchall()
    assert [row[0] for row in rows] == names
    assert {row[1] for row in rows} == {"success"}
    assert {row[2] for row in rows} == set(tasks)
    assert all(row[3] >= 1 for row in rows)  # each repository's own requests, not its shard's
    assert sum(row[3] for row in rows) <= sim.stats()["requests_total"]
    metadata = pg_conn.execute("SELECT metadata FROM import_logs").fetchone()[0]
    assert metadata["state"] == "success" and metadata["repositories"]["ok"] == REPOS


def test_a_failing_repository_fails_its_shard_alone_and_the_retry_redoes_only_it(
    dagbag: Any, sharded: Simulator, pg_conn: psycopg.Connection
) -> None:
    sim = sharded
    victim = sorted(repo.name for repo in sim.state.repos())[3]
    sim.faults.fail_paths = {rf"^/repos/acme/{victim}/issues": 502}
    dag = dagbag.get_dag("github_full_sync")
    dag.task_dict["sync_repository"].retries = 1
    dag.task_dict["sync_repository"].retry_delay = timedelta(0)

    run = dag.test(run_conf={"owner": "acme"})

    assert run.state == "failed"
    rows = {r: (state, tries) for r, state, tries in pg_conn.execute(
        "SELECT repository, state, try_number FROM sync_repository_runs WHERE run_id = %s", (run.run_id,))}  # fmt: skip
    assert rows.pop(f"acme/{victim}") == ("failed", 2)
    # Everything else landed in the first try and was not synced again by the retry.
    assert set(rows.values()) == {("success", 1)} and len(rows) == REPOS - 1
    tasks = mapped_tasks(run)
    assert sorted(state for state, _ in tasks.values()).count("failed") == 1
    (errors,) = pg_conn.execute("SELECT errors FROM import_logs").fetchone()
    assert len(errors) == 1 and f"acme/{victim}" in errors[0] and "502" in errors[0]


def test_a_run_of_few_repositories_keeps_one_task_per_repository_named_after_it(
    dagbag: Any, sharded: Simulator, pg_conn: psycopg.Connection
) -> None:
    sim = sharded
    wanted = sorted(repo.name for repo in sim.state.repos())[:3]
    run = dagbag.get_dag("github_full_sync").test(run_conf={"owner": "acme", "repos": wanted})
    assert run.state == "success"
    assert mapped_tasks(run) == {f"acme/{name}": ("success", 1) for name in wanted}
    shards = pg_conn.execute("SELECT shard FROM sync_repository_runs WHERE run_id = %s", (run.run_id,))
    assert {shard for (shard,) in shards} == {f"acme/{name}" for name in wanted}
