"""Params and defaults shared by the sync DAGs (validated by Airflow when a run is triggered)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param

from github_sync.config import ENV_GITHUB_OWNER

# GitHub logins: alphanumerics and single hyphens, at most 39 characters.
OWNER_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$"
REPOSITORY_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$"

DEFAULT_FULL_SYNC_SCHEDULE = "0 3 * * 0"  # weekly, Sunday 03:00 UTC: reconciles everything
DEFAULT_INCREMENTAL_SCHEDULE = "@hourly"
ENV_FULL_SYNC_SCHEDULE = "GITHUB_SYNC_FULL_SCHEDULE"
ENV_INCREMENTAL_SCHEDULE = "GITHUB_SYNC_INCREMENTAL_SCHEDULE"
NO_SCHEDULE = ("", "none", "manual")


def schedule_from_env(variable: str, default: str) -> str | None:
    """A DAG's schedule: ``default``, or the environment's override (``none`` for manual only).

    Read at parse time from the environment, which is not I/O; an invalid cron expression
    makes the DAG fail to import with Airflow's message naming it.
    """
    value = os.environ.get(variable)
    if value is None:
        return default
    return None if value.strip().lower() in NO_SCHEDULE else value.strip()


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "github-sync",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}


# What every sync DAG declares alike.
SYNC_DAG_ARGS: dict[str, Any] = {
    "start_date": datetime(2026, 1, 1),
    "catchup": False,
    "default_args": DEFAULT_ARGS,
    "tags": ["github-sync"],
}


def owner_param() -> Param:
    # Read at parse time from the environment (no I/O): the scheduled runs' owner.
    return Param(
        os.environ.get(ENV_GITHUB_OWNER, "acme"),
        type="string",
        pattern=OWNER_PATTERN,
        title="GitHub owner",
        description="User or organisation whose repositories are synced.",
    )


def sync_params() -> dict[str, Param]:
    """Params of the full and incremental syncs."""
    return {
        "owner": owner_param(),
        "repos": Param(
            [],
            type="array",
            items={"type": "string", "pattern": r"^[A-Za-z0-9._/-]+$"},
            title="Repositories",
            description="Optional allow-list of repository names; empty means all.",
        ),
        "include_archived": Param(False, type="boolean", description="Also sync archived repositories."),
        "commits_since_days": Param(
            90, type="integer", minimum=1, maximum=3650, description="Days of commit history to keep."
        ),
        "failure_tolerance": Param(
            0,
            type="integer",
            minimum=0,
            description="How many repositories may fail before the run is marked failed.",
        ),
    }


def repository_params() -> dict[str, Param]:
    """Params of the single-repository sync."""
    return {
        "repository": Param(
            "acme/repo",
            type="string",
            pattern=REPOSITORY_PATTERN,
            title="Repository",
            description="The repository to sync, as owner/name.",
        ),
        "commits_since_days": Param(90, type="integer", minimum=1, maximum=3650),
    }
