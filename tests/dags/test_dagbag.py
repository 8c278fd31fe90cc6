"""The DAG folder imports cleanly and declares what the product promises."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from github_sync.config import GITHUB_POOL

SYNC_DAGS = ("github_full_sync", "github_incremental_sync", "github_repo_sync")


def test_the_package_imports_in_the_installed_environment() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import github_sync, github_sim, github_sync.webhooks.relay; print(github_sync.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == __import__("github_sync").__version__


def test_dag_folder_has_no_import_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {*SYNC_DAGS, "github_webhook_events"}


@pytest.mark.parametrize("dag_id", SYNC_DAGS)
def test_repository_work_is_mapped_in_the_github_pool_with_readable_names(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    task = dag.task_dict["sync_repository"]
    assert task.partial_kwargs["pool"] == GITHUB_POOL
    assert task.partial_kwargs["map_index_template"] == "{{ task.shard['label'] }}"
    assert dag.on_success_callback and dag.on_failure_callback
    assert dag.task_dict["summary"].trigger_rule == "all_done"


def test_schedules(dagbag: Any) -> None:
    assert dagbag.dags["github_full_sync"].schedule == "0 3 * * 0"
    assert dagbag.dags["github_incremental_sync"].schedule == "@hourly"
    assert dagbag.dags["github_repo_sync"].schedule is None
    assert dagbag.dags["github_webhook_events"].schedule is None


@pytest.mark.parametrize(
    ("dag_id", "param", "bad_value"),
    [
        ("github_full_sync", "owner", "not a/login"),
        ("github_full_sync", "commits_since_days", 0),
        ("github_incremental_sync", "repos", "not-a-list"),
        ("github_repo_sync", "repository", "no-slash"),
    ],
)
def test_invalid_params_are_refused_with_the_reason(
    dagbag: Any, dag_id: str, param: str, bad_value: Any
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        dagbag.dags[dag_id].params.get_param(param).resolve(bad_value)


@pytest.mark.parametrize("dag_id", SYNC_DAGS)
def test_the_trigger_form_reads_as_a_form(dagbag: Any, dag_id: str) -> None:
    # Airflow's form shows a Param's title (else its raw name) and description, and marks a
    # field required unless its schema type admits null.
    params = dagbag.dags[dag_id].params
    for name in params:
        param = params.get_param(name)
        assert param.schema.get("title") and param.description, name
    if dag_id != "github_repo_sync":
        for optional in ("owner", "repos"):
            assert "null" in params.get_param(optional).schema["type"]
            params.get_param(optional).resolve(None)
        owners = params.get_param("owners").schema
        assert owners["type"] == "array" and owners["items"]["type"] == "string"
        assert params.get_param("include_archived").value is True


@pytest.mark.parametrize("bad_owners", [["not a login"], ["ok", "-leading-hyphen"], "acme"])
def test_invalid_owner_lists_are_refused_by_the_form(dagbag: Any, bad_owners: Any) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        dagbag.dags["github_full_sync"].params.get_param("owners").resolve(bad_owners)


@pytest.mark.parametrize("dag_id", [*SYNC_DAGS, "github_webhook_events"])
def test_only_the_deciding_task_emits_the_refreshed_tables_as_assets(dagbag: Any, dag_id: str) -> None:
    from github_sync.orchestration.assets import ASSETS_BY_MODE

    dag = dagbag.dags[dag_id]
    emitting = {task.task_id: task for task in dag.tasks if task.outlets}
    mode = {"github_full_sync": "full", "github_incremental_sync": "incremental",
            "github_repo_sync": "repository", "github_webhook_events": "webhook"}[dag_id]  # fmt: skip
    leaf = "apply_deliveries" if mode == "webhook" else "summary"
    assert set(emitting) == {leaf}
    assert list(emitting[leaf].outlets) == list(ASSETS_BY_MODE[mode])


@pytest.mark.parametrize("value", ["not a login", ""])
def test_a_malformed_github_owner_does_not_hide_the_dags(airflow_db: None, value: str) -> None:
    # Airflow validates a scheduled DAG's Param defaults at parse time: a bad GITHUB_OWNER must
    # leave the DAGs importable (their runs then fail saying no owner is set).
    import os

    code = (
        "from airflow.dag_processing.dagbag import DagBag; import os; "
        "bag = DagBag(dag_folder=os.environ['AIRFLOW__CORE__DAGS_FOLDER']); "
        "print(sorted(bag.import_errors)); print(bag.dags['github_full_sync'].params['owners'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "GITHUB_OWNER": value}, timeout=300)  # fmt: skip
    assert result.stdout.splitlines()[-2:] == ["[]", "[]"]
