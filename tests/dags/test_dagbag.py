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
            "import github_sync, github_sync.simulator, github_sync.relay; print(github_sync.__version__)",
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
    assert "full_name" in task.partial_kwargs["map_index_template"]
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
