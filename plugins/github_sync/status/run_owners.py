"""Which GitHub owners a run synced, read in SQL and in Python alike, and the owners the status knows.

A run may sync several owners. Its owners are the JSON array ``sync_runs.details ->
'owners'`` (copied to ``import_logs.metadata -> 'owners'``); rows written before that
list existed only have the text ``owner`` (one login, or several joined with ``", "``).
:func:`owners_sql` and :func:`recorded_owners` are the SQL and Python readings of that
one rule, kept side by side so they cannot drift. Logins compare case-insensitively.

Must not: accept an owner filter that was not validated as a GitHub login (the API does
that), or build SQL from a value: filters are always query parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg.rows import dict_row

from github_sync.github.owners import is_github_login
from github_sync.status.responses import OwnersResponse, OwnerSummary
from github_sync.store.import_log import SOURCE, metadata_sql

if TYPE_CHECKING:
    import psycopg


def owners_sql(array: str, text: str, *, lower: bool = True) -> str:
    """SQL for a run's owners as ``text[]``: the JSON ``array`` when set, else ``text`` split on commas."""
    item = "lower({})" if lower else "{}"
    return (
        f"(CASE WHEN jsonb_typeof({array}) = 'array' AND {array} <> '[]'::jsonb "
        f"THEN ARRAY(SELECT {item.format('btrim(login)')} FROM jsonb_array_elements_text({array}) AS login) "
        f"ELSE ARRAY(SELECT {item.format('btrim(login)')} FROM unnest(string_to_array({text}, ',')) AS login) "
        "END)"
    )


# The lower-case owners of an import_logs row and of a sync_runs row (alias r).
LOG_OWNERS = owners_sql(metadata_sql("owners", as_text=False), metadata_sql("owner"))
RUN_OWNERS = owners_sql("r.details -> 'owners'", "r.owner")
# A sync_repository_runs row's repository is ``owner/name``.
REPOSITORY_OWNER = "lower(split_part(repository, '/', 1))"


def add_owner_param(owner: str | None, params: dict[str, Any]) -> bool:
    """Put the (validated) owner filter into ``params`` as ``%(owner)s``; tell whether there is one."""
    if owner is None:
        return False
    params["owner"] = owner.lower()
    return True


def recorded_owners(owners: object, owner_text: str | None) -> list[str]:
    """A run's owners as recorded: the JSON list when it has any, else the joined text split."""
    if isinstance(owners, list) and owners:
        return [str(login) for login in owners]
    return [part.strip() for part in (owner_text or "").split(",") if part.strip()]


def known_owners(conn: psycopg.Connection[Any]) -> OwnersResponse:
    """The GitHub owners the status knows: of live projects and of recorded runs.

    An owner is listed once whatever the case of its login (the projects' spelling wins,
    else the newest run's); ``repositories`` counts its live (not removed) projects, 0 for
    an owner only seen in runs. Values that are not logins (never written by the sync) are
    left out, so every listed owner is a valid ``owner`` filter.
    """
    run_owners = owners_sql("r.details -> 'owners'", "r.owner", lower=False)
    log_owners = owners_sql(metadata_sql("owners", as_text=False), metadata_sql("owner"), lower=False)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""
            WITH seen AS (
                SELECT login, r.started_at AS at FROM sync_runs r CROSS JOIN LATERAL unnest({run_owners}) AS login
                UNION ALL
                SELECT login, "timestamp" FROM import_logs CROSS JOIN LATERAL unnest({log_owners}) AS login
                WHERE source = %(source)s
            ),
            ran AS (
                SELECT DISTINCT ON (lower(login)) lower(login) AS key, login
                FROM seen WHERE login <> '' ORDER BY lower(login), at DESC
            ),
            live AS (
                SELECT lower(owner) AS key, mode() WITHIN GROUP (ORDER BY owner) AS login, count(*) AS repositories
                FROM projects WHERE removed_at IS NULL GROUP BY lower(owner)
            )
            SELECT coalesce(live.login, ran.login) AS owner, coalesce(live.repositories, 0) AS repositories
            FROM live FULL JOIN ran USING (key)
            ORDER BY key
            """,
            {"source": SOURCE},
        )
        rows = cur.fetchall()
    return OwnersResponse(
        owners=[
            OwnerSummary(owner=row["owner"], repositories=int(row["repositories"]))
            for row in rows
            if is_github_login(row["owner"])
        ]
    )
