"""Params and defaults shared by the sync DAGs (validated by Airflow when a run is triggered)."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param

from github_sync.config import ENV_GITHUB_OWNER
from github_sync.github.owners import (
    MAX_OWNERS,
    OWNER_PATTERN,
    REPOSITORY_PATTERN,
    OwnerError,
    parse_owner_list,
)
from github_sync.sync.discovery import DEFAULT_INCLUDE_ARCHIVED
from github_sync.sync.repository import DEFAULT_COMMITS_SINCE_DAYS

log = logging.getLogger(__name__)

# The scheduled runs' owner when GITHUB_OWNER is not set (the simulator's demo organisation).
DEFAULT_OWNER = "acme"
# An allow-list longer than this is better written as separate owners or runs.
MAX_ALLOW_LIST = 1000

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


def default_owners() -> list[str]:
    """The scheduled runs' owners: ``GITHUB_OWNER`` (comma-separated, read at parse time, no I/O).

    A malformed value falls back to no owner, so the DAG still imports; its runs then fail
    at once saying that no owner is set (and the DAG processor logs the variable's rule).
    """
    raw = os.environ.get(ENV_GITHUB_OWNER, DEFAULT_OWNER)
    try:
        return parse_owner_list(raw, source=ENV_GITHUB_OWNER)
    except OwnerError as exc:
        log.error("%s; scheduled runs have no owner until it is fixed", exc)
        return []


def sync_params() -> dict[str, Param]:
    """Params of the full and incremental syncs (each with a title and a description for the form)."""
    return {
        "owners": Param(
            default_owners(),
            type="array",
            # No minItems: Airflow validates a scheduled DAG's defaults at parse time, and an
            # empty default (GITHUB_OWNER unset or malformed) must fail the run with the
            # reason, not hide the DAG behind an import error.
            items={"type": "string", "pattern": OWNER_PATTERN},
            maxItems=MAX_OWNERS,
            title="GitHub owners",
            description="Organisations and users whose repositories are synced, one per line. "
            "For a user account, its private repositories are synced only with that user's own token.",
        ),
        "owner": Param(
            None,
            type=["null", "string"],
            pattern=OWNER_PATTERN,
            title="One owner (shorthand)",
            description="Sync only this organisation or user; overrides 'GitHub owners' when set.",
        ),
        "repos": Param(
            [],
            type=["null", "array"],
            items={"type": "string", "pattern": r"^([A-Za-z0-9][A-Za-z0-9-]{0,38}/)?[A-Za-z0-9._-]{1,100}$"},
            maxItems=MAX_ALLOW_LIST,
            title="Only these repositories",
            description="Optional allow-list, one per line: name, or owner/name when syncing several owners. "
            "Empty syncs every repository.",
        ),
        "include_archived": Param(
            DEFAULT_INCLUDE_ARCHIVED,
            type="boolean",
            title="Include archived repositories",
            description="Archived repositories are shown as shipped; after their first read they cost only "
            "free conditional requests. Turn off to leave their issues, PRs and commits out.",
        ),
        "commits_since_days": commits_since_days_param(),
        "failure_tolerance": Param(
            0,
            type="integer",
            minimum=0,
            title="Failed repositories tolerated",
            description="How many repositories may fail before the run is marked failed. A run in which "
            "no repository could be synced fails whatever this says.",
        ),
    }


def commits_since_days_param() -> Param:
    return Param(
        DEFAULT_COMMITS_SINCE_DAYS,
        type="integer",
        minimum=1,
        maximum=3650,
        title="Days of commit history",
        description="Commits newer than this many days are kept.",
    )


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
        "commits_since_days": commits_since_days_param(),
    }
