"""github_webhook_events: apply the webhook deliveries the relay stored (triggered by the relay).

The relay triggers one run per coalesced batch with ``conf = {"delivery_ids": [...]}``
(ids only; the payloads are in ``webhook_deliveries``). One run at a time, so deliveries
are applied in the order they arrived and runs never contend for the same rows.

A declaration only: the task body is
:func:`github_sync.orchestration.tasks.apply_webhook_deliveries`; nothing here may do I/O
at parse time or import from github_sync anything but the integration package.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task

from github_sync.orchestration import tasks
from github_sync.orchestration.assets import ASSETS_BY_MODE
from github_sync.orchestration.dag_building import dag_arguments


@dag(
    **dag_arguments("webhook"),
    description="Apply GitHub webhook deliveries stored by github-sync-relay",
    schedule=None,
    max_active_runs=1,
    # Runs are created by the relay; a paused DAG would only queue them.
    is_paused_upon_creation=False,
)
def github_webhook_events() -> None:
    @task(outlets=list(ASSETS_BY_MODE["webhook"]))
    def apply_deliveries() -> dict[str, Any]:
        return tasks.apply_webhook_deliveries(get_current_context(), outlets=ASSETS_BY_MODE["webhook"])

    apply_deliveries()


github_webhook_events()
