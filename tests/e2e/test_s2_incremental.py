"""Scenario 2: after the full sync, mutate two repositories and run the incremental sync.

Only the changed repositories may be mapped: checked both in ``sync_repository_runs`` (the
product's own record) and in the mapped task instances the REST API lists.
"""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.harness import Deployment, organisation, sim_control

pytestmark = pytest.mark.e2e


def test_incremental_maps_only_changed_repositories(deployment: Deployment, full_sync_run: dict) -> None:
    assert full_sync_run["state"] == "success"
    # Two active repositories that have commits (the full sync stored some for them).
    active = {r["full_name"] for r in organisation(deployment.sim_url) if not r["archived"]}
    names = [
        name
        for (name,) in deployment.query(
            "SELECT p.full_name FROM projects p "
            "WHERE EXISTS (SELECT 1 FROM commits c WHERE c.project_id = p.id) ORDER BY p.full_name"
        )
        if name in active
    ]
    assert len(names) >= 2
    issue_repo, push_repo = names[1].split("/", 1)[1], names[-2].split("/", 1)[1]
    title = f"e2e incremental crash {uuid.uuid4().hex[:6]}"
    sim_control(
        deployment.sim_url, "state/create_issue", {"repo": issue_repo, "title": title, "labels": ["bug"]}
    )
    shas = sim_control(deployment.sim_url, "state/push_commits", {"repo": push_repo, "n": 2})["result"]

    run_id = deployment.trigger("github_incremental_sync", {"owner": "acme"})
    state, waited = deployment.wait_for_run("github_incremental_sync", run_id, timeout=240)
    assert state == "success", f"see {deployment.home}"
    changed = {f"acme/{issue_repo}", f"acme/{push_repo}"}

    rows = dict(
        deployment.query(
            "SELECT repository, state FROM sync_repository_runs WHERE dag_id = %s AND run_id = %s",
            ("github_incremental_sync", run_id),
        )
    )
    assert rows == dict.fromkeys(changed, "success")

    mapped = deployment.task_instances("github_incremental_sync", run_id, task_id="sync_repository")
    assert {ti.rendered_map_index for ti in mapped} == changed
    assert {ti.state.value for ti in mapped} == {"success"}

    assert deployment.query("SELECT count(*) FROM bugs WHERE title = %s", (title,)) == [(1,)]
    assert deployment.query("SELECT count(*) FROM commits WHERE sha = ANY(%s)", (shas,)) == [(2,)]
    deployment.report(
        "scenario2_incremental",
        {"run_s": round(waited, 1), "mapped": sorted(changed), "repositories_total": len(names)},
    )
