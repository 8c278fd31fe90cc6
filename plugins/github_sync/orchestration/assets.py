"""The Airflow Assets the sync DAGs refresh: one per dashboard table, for data-aware scheduling.

A downstream DAG (a dbt model of the dashboard, a report) declares
``schedule=[PROJECTS, BUGS]`` and runs when a sync has refreshed them. Only a run whose
summary succeeded emits the events (outlets are emitted when their task succeeds); each
event's ``extra`` carries the run's summary (counts, requests, owners).

The URIs use an ``x-`` scheme (Airflow's convention for schemes without a provider) with
the target connection's id: no connection lookup at parse time. This module only names
the Assets; emitting their events is the deciding task's business
(:mod:`github_sync.orchestration.tasks`).
"""

from __future__ import annotations

from airflow.sdk import Asset

from github_sync.config import DATABASE_CONN_ID

ASSET_SCHEME = "x-github-sync"


def table_asset(table: str) -> Asset:
    return Asset(name=f"github_sync.{table}", uri=f"{ASSET_SCHEME}://{DATABASE_CONN_ID}/public/{table}")


PROJECTS = table_asset("projects")
BUGS = table_asset("bugs")
PULL_REQUESTS = table_asset("pull_requests")
COMMITS = table_asset("commits")
PROJECT_METRICS = table_asset("project_metrics")

# What each mode writes: the repository syncs write every table; webhooks never compute metrics.
ASSETS_BY_MODE: dict[str, tuple[Asset, ...]] = {
    "full": (PROJECTS, BUGS, PULL_REQUESTS, COMMITS, PROJECT_METRICS),
    "incremental": (PROJECTS, BUGS, PULL_REQUESTS, COMMITS, PROJECT_METRICS),
    "repository": (PROJECTS, BUGS, PULL_REQUESTS, COMMITS, PROJECT_METRICS),
    "webhook": (PROJECTS, BUGS, PULL_REQUESTS, COMMITS),
}
