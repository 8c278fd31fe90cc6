"""The trigger form: the Params of the sync DAGs (validated by Airflow when a run is triggered).

Owns each Param's schema, title, description and default. The rules themselves are not
defined here: owner and repository names come from :mod:`github_sync.github.owners`, the
commit window's default from :mod:`github_sync.sync.repository`, the archived default
from :mod:`github_sync.sync.discovery`. Building the Params is done at parse time and must
not do I/O (the environment is read, nothing else).
"""

from __future__ import annotations

import logging
import os

from airflow.sdk import Param

from github_sync.config import DEMO_OWNER, ENV_GITHUB_OWNER
from github_sync.github.owners import (
    ALLOW_LIST_ENTRY_PATTERN,
    MAX_ALLOW_LIST,
    MAX_ALLOW_LIST_ENTRY_LENGTH,
    MAX_FULL_NAME_LENGTH,
    MAX_LOGIN_LENGTH,
    MAX_OWNERS,
    OWNER_PATTERN,
    REPOSITORY_PATTERN,
    OwnerError,
    parse_owner_list,
)
from github_sync.sync.discovery import DEFAULT_INCLUDE_ARCHIVED
from github_sync.sync.repository import DEFAULT_COMMITS_SINCE_DAYS

log = logging.getLogger(__name__)

# Ten years: beyond that a commit window is a mistake rather than a choice.
MAX_COMMITS_SINCE_DAYS = 3650
# The form's example for the single-repository sync.
EXAMPLE_REPOSITORY = f"{DEMO_OWNER}/repo"


def default_owners() -> list[str]:
    """The scheduled runs' owners: ``GITHUB_OWNER`` (comma-separated, read at parse time, no I/O).

    A malformed value falls back to no owner, so the DAG still imports; its runs then fail
    at once saying that no owner is set (and the DAG processor logs the variable's rule).
    """
    raw = os.environ.get(ENV_GITHUB_OWNER, DEMO_OWNER)
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
            items={"type": "string", "pattern": OWNER_PATTERN, "maxLength": MAX_LOGIN_LENGTH},
            maxItems=MAX_OWNERS,
            title="GitHub owners",
            description="Organisations and users whose repositories are synced, one per line. "
            "For a user account, its private repositories are synced only with that user's own token.",
        ),
        "owner": Param(
            None,
            type=["null", "string"],
            pattern=OWNER_PATTERN,
            maxLength=MAX_LOGIN_LENGTH,
            title="One owner (shorthand)",
            description="Sync only this organisation or user; overrides 'GitHub owners' when set.",
        ),
        "repos": Param(
            [],
            type=["null", "array"],
            items={
                "type": "string",
                "pattern": ALLOW_LIST_ENTRY_PATTERN,
                "maxLength": MAX_ALLOW_LIST_ENTRY_LENGTH,
            },
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
    """The commit window, shared by every sync DAG (the mapped operator renders it)."""
    return Param(
        DEFAULT_COMMITS_SINCE_DAYS,
        type="integer",
        minimum=1,
        maximum=MAX_COMMITS_SINCE_DAYS,
        title="Days of commit history",
        description="Commits newer than this many days are kept.",
    )


def repository_params() -> dict[str, Param]:
    """Params of the single-repository sync."""
    return {
        "repository": Param(
            EXAMPLE_REPOSITORY,
            type="string",
            pattern=REPOSITORY_PATTERN,
            maxLength=MAX_FULL_NAME_LENGTH,
            title="Repository",
            description="The repository to sync, as owner/name.",
        ),
        "commits_since_days": commits_since_days_param(),
    }
