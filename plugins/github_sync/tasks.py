"""The bodies of the sync DAGs' Python tasks; the DAG files only declare them.

Each function takes the Airflow context (or what it needs of it) and returns a small,
JSON-able summary for XCom - never payloads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from github_sync.config import DATABASE_CONN_ID, GITHUB_CONN_ID
from github_sync.discovery import discover_repositories
from github_sync.normalizer import normalize_repository
from github_sync.repository_sync import RepositoryTarget
from github_sync.retention import prune
from github_sync.run_records import add_run_details, close_run, open_run, summarize_run
from github_sync.runtime import (
    RunInfo,
    build_github_hook,
    close_github_hook,
    connect_database,
    label_rules_from_variable,
)

log = logging.getLogger(__name__)


class SyncRunFailed(RuntimeError):
    """More repositories failed than the run tolerates; the message names each one and why."""


def _validate_owner(owner: object) -> str:
    if not isinstance(owner, str) or not owner.strip() or "/" in owner:
        raise ValueError(
            f"Param 'owner' must be a GitHub user or organisation login (set it when triggering, or "
            f"GITHUB_OWNER for scheduled runs), got {owner!r}"
        )
    return owner.strip()


def list_repositories(
    context: Any,
    *,
    mode: str,
    owner: object,
    repos: Sequence[str] | None,
    include_archived: bool,
) -> list[dict[str, Any]]:
    """First task of the full and incremental syncs: record the projects, return the targets.

    The label-rules Variable is validated here, before anything is written.
    """
    run = RunInfo.from_context(context)
    owner = _validate_owner(owner)
    label_rules_from_variable()
    hook = build_github_hook(GITHUB_CONN_ID, DATABASE_CONN_ID)
    conn = connect_database(DATABASE_CONN_ID)
    try:
        discovery = discover_repositories(
            hook,
            conn,
            owner=owner,
            allow=list(repos or []),
            include_archived=bool(include_archived),
            as_of=run.as_of,
        )
        with conn.cursor() as cursor:
            open_run(
                cursor,
                dag_id=run.dag_id,
                run_id=run.run_id,
                mode=mode,
                owner=owner,
                repositories_total=len(discovery.targets),
            )
            add_run_details(
                cursor,
                dag_id=run.dag_id,
                run_id=run.run_id,
                stats=hook.stats,
                details={
                    "owner_type": discovery.owner_type,
                    "repositories_listed": discovery.listed,
                    "repositories_removed": list(discovery.removed),
                    "estimated_requests": discovery.estimate.requests,
                },
            )
        conn.commit()
    finally:
        conn.close()
        close_github_hook(hook)
    return [target.to_mapping() for target in discovery.targets]


def detect_changed_repositories(
    context: Any,
    *,
    owner: object,
    repos: Sequence[str] | None,
    include_archived: bool,
) -> list[dict[str, Any]]:
    """First task of the incremental sync: list, probe, and return only the changed repositories.

    Unchanged repositories get the run date's metrics row carried forward here, without
    a request and without a task of their own.
    """
    from github_sync.change_detection import detect_changes

    targets = list_repositories(
        context, mode="incremental", owner=owner, repos=repos, include_archived=include_archived
    )
    run = RunInfo.from_context(context)
    hook = build_github_hook(GITHUB_CONN_ID, DATABASE_CONN_ID)
    conn = connect_database(DATABASE_CONN_ID)
    try:
        detection = detect_changes(
            hook, conn, [RepositoryTarget.from_mapping(t) for t in targets], as_of=run.as_of
        )
        with conn.cursor() as cursor:
            add_run_details(
                cursor,
                dag_id=run.dag_id,
                run_id=run.run_id,
                stats=hook.stats,
                repositories_total=len(detection.changed),
                details={
                    "repositories_probed": len(targets),
                    "repositories_changed": len(detection.changed),
                    "change_reasons": detection.reasons,
                },
            )
        conn.commit()
    finally:
        conn.close()
        close_github_hook(hook)
    return [target.to_mapping() for target in detection.changed]


def resolve_repository(context: Any, *, repository: object) -> list[dict[str, Any]]:
    """First task of ``github_repo_sync``: fetch one repository, record it, return it as the only target."""
    run = RunInfo.from_context(context)
    if not isinstance(repository, str) or repository.count("/") != 1 or not all(repository.split("/")):
        raise ValueError(f"Param 'repository' must be 'owner/name', got {repository!r}")
    label_rules_from_variable()
    hook = build_github_hook(GITHUB_CONN_ID, DATABASE_CONN_ID)
    conn = connect_database(DATABASE_CONN_ID)
    try:
        from github_sync import loader

        response = hook.get(f"/repos/{repository}")
        repo = response.json
        with conn.cursor() as cursor:
            project_id, _ = loader.upsert_project(cursor, normalize_repository(repo))
            open_run(
                cursor,
                dag_id=run.dag_id,
                run_id=run.run_id,
                mode="repository",
                owner=repository.split("/")[0],
                repositories_total=1,
            )
            add_run_details(cursor, dag_id=run.dag_id, run_id=run.run_id, stats=hook.stats)
        conn.commit()
    finally:
        conn.close()
        close_github_hook(hook)
    target = RepositoryTarget(
        full_name=str(repo["full_name"]), project_id=project_id, default_branch=repo.get("default_branch")
    )
    return [target.to_mapping()]


def summarize(context: Any, *, failure_tolerance: object = 0, prune_state: bool = False) -> dict[str, Any]:
    """Last task: close the run and decide its state by the documented rule.

    The rule: the run fails when more repositories failed than ``failure_tolerance``
    (default 0); repositories skipped on purpose (gone, empty, blocked) never fail it.
    Either way the failed repositories and their errors are named here and in
    ``import_logs``. With ``prune_state`` (the weekly full sync) old cached responses
    and delivered webhooks are pruned too (:mod:`github_sync.retention`).
    """
    run = RunInfo.from_context(context)
    tolerance = int(failure_tolerance or 0)
    conn = connect_database(DATABASE_CONN_ID)
    try:
        with conn.cursor() as cursor:
            summary = summarize_run(cursor, dag_id=run.dag_id, run_id=run.run_id)
            failed = summary.failed > tolerance
            if prune_state:
                prune(cursor, now=run.as_of)
            close_run(
                cursor,
                dag_id=run.dag_id,
                run_id=run.run_id,
                state="failed" if failed else "success",
                details={"failure_tolerance": tolerance},
            )
        conn.commit()
    finally:
        conn.close()
    result = {
        "repositories": summary.total,
        "succeeded": summary.succeeded,
        "failed": summary.failed,
        "skipped": summary.skipped,
        "records_imported": summary.records_imported,
        "requests": summary.requests,
        "budget_spent": summary.budget_spent,
        "not_modified": summary.not_modified,
    }
    for repository, reason in summary.skips:
        log.warning("Skipped %s: %s", repository, reason)
    for repository, error in summary.failures:
        log.error("Failed %s: %s", repository, error)
    log.info("Run summary: %s", result)
    if failed:
        names = ", ".join(f"{repo} ({error})" for repo, error in summary.failures)
        raise SyncRunFailed(f"{summary.failed} repositories failed (tolerance {tolerance}): {names}")
    return result
