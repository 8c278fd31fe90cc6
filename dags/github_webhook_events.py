"""github_webhook_events: apply the webhook deliveries the relay stored (triggered by the relay).

The relay triggers one run per coalesced batch with ``conf = {"delivery_ids": [...]}``
(ids only; the payloads are in ``webhook_deliveries``). One run at a time, so deliveries
are applied in the order they arrived and runs never contend for the same rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, get_current_context, task

from github_sync.orchestration.assets import ASSETS_BY_MODE
from github_sync.orchestration.callbacks import import_log_callbacks
from github_sync.orchestration.params import DEFAULT_ARGS
from github_sync.webhooks.apply import WEBHOOK_DAG_ID, run_from_context

# A failed delivery is usually a bad payload, which a retry does not fix; one quick retry
# covers a database hiccup (processed deliveries are skipped on the retry).
WEBHOOK_TASK_ARGS = {**DEFAULT_ARGS, "retries": 1, "retry_delay": timedelta(seconds=10)}


@dag(
    dag_id=WEBHOOK_DAG_ID,
    description="Apply GitHub webhook deliveries stored by github-sync-relay",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    # Runs are created by the relay; a paused DAG would only queue them.
    is_paused_upon_creation=False,
    default_args=WEBHOOK_TASK_ARGS,
    tags=["github-sync", "webhooks"],
    **import_log_callbacks("webhook"),
)
def github_webhook_events() -> None:
    @task(outlets=list(ASSETS_BY_MODE["webhook"]))
    def apply_deliveries() -> dict:
        return run_from_context(get_current_context(), outlets=ASSETS_BY_MODE["webhook"])

    apply_deliveries()


github_webhook_events()
