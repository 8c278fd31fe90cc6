"""The bodies of the sync DAGs' Python tasks; the DAG files only declare them.

Each function takes the Airflow context (or what it needs of it) and returns a small,
JSON-able summary for XCom - never payloads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from github_sync.config import DATABASE_CONN_ID, auto_migrate_enabled
from github_sync.github.owners import check_repository, resolve_owners
from github_sync.orchestration.run_guard import ListingTooLong, RunVerdictFailed, run_stage
from github_sync.orchestration.runtime import (
    RunInfo,
    connect_database,
    github_session,
    label_rules_from_variable,
)
from github_sync.store.loader import rescore_open_bugs
from github_sync.store.migrations import ensure_schema
from github_sync.store.retention import prune
from github_sync.store.run_records import (
    add_run_details,
    close_run,
    failure_verdict,
    open_run,
    read_run_details,
    summarize_run,
)
from github_sync.sync.discovery import discover_owners
from github_sync.sync.repository import RepositoryTarget
from github_sync.transform.normalizer import normalize_repository

log = logging.getLogger(__name__)

# The run-level tasks, as recorded in sync_runs.details.stages: the first task of every sync
# DAG (whatever its task id) produces the targets; the summary decides the run.
TARGETS_STAGE = "targets"
SUMMARY_STAGE = "summary"
DEFAULT_MAX_MAP_LENGTH = 1024
# A failed run's message names at most this many repositories (all are in import_logs).
MAX_NAMED_FAILURES = 20


def prepare_target_database(conn: Any) -> None:
    """Bring the target schema up to date, or check it when automatic migration is off.

    The first thing every DAG's first task does, so that installing the package into an
    existing Airflow and triggering a run just works (the migrations are idempotent and
    take an advisory lock, so concurrent runs are safe).
    """
    applied = ensure_schema(conn, auto_migrate=auto_migrate_enabled())
    if applied:
        log.info("Target schema brought up to date: applied %s", ", ".join(applied))


def max_map_length() -> int:
    """Airflow's ``[core] max_map_length``: a longer list fails the task that returns it."""
    from airflow.sdk.configuration import conf

    return conf.getint("core", "max_map_length", fallback=DEFAULT_MAX_MAP_LENGTH)


def check_mappable(targets: Sequence[Any]) -> None:
    limit = max_map_length()
    if len(targets) > limit:
        raise ListingTooLong(
            f"{len(targets)} repositories to sync exceed Airflow's [core] max_map_length ({limit}): raise "
            f"it (AIRFLOW__CORE__MAX_MAP_LENGTH={len(targets)} or more) or limit the run with the Param 'repos'"
        )


def _discover(hook: Any, conn: Any, run: RunInfo, *, mode: str, owner_params: tuple[object, object],
              repos: Sequence[str] | None, include_archived: bool) -> list[RepositoryTarget]:  # fmt: skip
    # The schema first, so that even a bad Param's failure reaches import_logs on a fresh database.
    prepare_target_database(conn)
    owners = resolve_owners(*owner_params)  # (owner, owners)
    label_rules_from_variable()  # validated before anything is written
    discoveries = discover_owners(
        hook, conn, owners=owners, allow=list(repos or []), include_archived=bool(include_archived),
        as_of=run.as_of,
    )  # fmt: skip
    targets = [target for discovery in discoveries for target in discovery.targets]
    with conn.cursor() as cursor:
        rescored = rescore_open_bugs(cursor, as_of=run.as_of, project_ids=[t.project_id for t in targets])
        open_run(
            cursor, dag_id=run.dag_id, run_id=run.run_id, mode=mode, owner=", ".join(owners),
            repositories_total=len(targets),
        )  # fmt: skip
        add_run_details(
            cursor,
            dag_id=run.dag_id,
            run_id=run.run_id,
            stats=hook.stats,
            details={
                "owners": owners,
                "owner_listings": {
                    d.owner: {"type": d.owner_type, "visibility": d.visibility, "listed": d.listed}
                    for d in discoveries
                },
                "owner_type": discoveries[0].owner_type if len(discoveries) == 1 else "several",
                "repositories_listed": sum(d.listed for d in discoveries),
                "repositories_removed": [name for d in discoveries for name in d.removed],
                "estimated_requests": sum(d.estimate.requests for d in discoveries),
                "bugs_rescored": rescored,
            },
        )
    conn.commit()
    return targets


def list_repositories(
    context: Any,
    *,
    mode: str,
    owner: object = None,
    owners: object = None,
    repos: Sequence[str] | None,
    include_archived: bool,
) -> list[dict[str, Any]]:
    """First task of the full sync: record the owners' projects, return the targets.

    Params (``owner``, the one-owner shorthand, wins over ``owners``) and the label-rules
    Variable are validated before anything is written.
    """
    run = RunInfo.from_context(context)
    with run_stage(run, mode=mode, stage=TARGETS_STAGE):
        with github_session() as (hook, conn):
            targets = _discover(hook, conn, run, mode=mode, owner_params=(owner, owners), repos=repos,
                                include_archived=include_archived)  # fmt: skip
        check_mappable(targets)
    return [target.to_mapping() for target in targets]


def detect_changed_repositories(
    context: Any,
    *,
    owner: object = None,
    owners: object = None,
    repos: Sequence[str] | None,
    include_archived: bool,
) -> list[dict[str, Any]]:
    """First task of the incremental sync: list, probe, and return only the changed repositories.

    Unchanged repositories get the run date's metrics row carried forward here, without
    a request and without a task of their own.
    """
    from github_sync.sync.change_detection import detect_changes

    run = RunInfo.from_context(context)
    with run_stage(run, mode="incremental", stage=TARGETS_STAGE):
        with github_session() as (hook, conn):
            targets = _discover(hook, conn, run, mode="incremental", owner_params=(owner, owners), repos=repos,
                                include_archived=include_archived)  # fmt: skip
            listed = hook.stats
            detection = detect_changes(hook, conn, targets, as_of=run.as_of)
            with conn.cursor() as cursor:
                add_run_details(
                    cursor,
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    stats=hook.stats.since(listed),
                    repositories_total=len(detection.changed),
                    details={
                        "repositories_probed": len(targets),
                        "repositories_changed": len(detection.changed),
                        "change_reasons": detection.reasons,
                    },
                )
            conn.commit()
        check_mappable(detection.changed)
    return [target.to_mapping() for target in detection.changed]


def resolve_repository(context: Any, *, repository: object) -> list[dict[str, Any]]:
    """First task of ``github_repo_sync``: fetch one repository, record it, return it as the only target."""
    from github_sync.store import loader

    run = RunInfo.from_context(context)
    with run_stage(run, mode="repository", stage=TARGETS_STAGE):
        with github_session() as (hook, conn):
            prepare_target_database(conn)
            owner, _ = check_repository(repository, source="Param 'repository'")
            label_rules_from_variable()
            repo = hook.get(f"/repos/{repository}").json
            with conn.cursor() as cursor:
                project_id, _ = loader.upsert_project(cursor, normalize_repository(repo))
                rescored = rescore_open_bugs(cursor, as_of=run.as_of, project_ids=[project_id])
                open_run(cursor, dag_id=run.dag_id, run_id=run.run_id, mode="repository", owner=owner,
                         repositories_total=1)  # fmt: skip
                add_run_details(cursor, dag_id=run.dag_id, run_id=run.run_id, stats=hook.stats,
                                details={"owners": [owner], "bugs_rescored": rescored})  # fmt: skip
            conn.commit()
    target = RepositoryTarget(
        full_name=str(repo["full_name"]), project_id=project_id, default_branch=repo.get("default_branch")
    )
    return [target.to_mapping()]


def summarize(
    context: Any,
    *,
    mode: str,
    failure_tolerance: object = 0,
    prune_state: bool = False,
    outlets: Sequence[Any] = (),
) -> dict[str, Any]:
    """Last task: close the run and decide its state by the documented rule (:func:`failure_verdict`).

    Either way the failed repositories and their errors are named here and in
    ``import_logs``. With ``prune_state`` (the weekly full sync) old cached responses and
    delivered webhooks are pruned too (:mod:`github_sync.store.retention`). A successful run's
    summary becomes the ``extra`` of the events of ``outlets`` (the refreshed tables).
    """
    run = RunInfo.from_context(context)
    with run_stage(run, mode=mode, stage=SUMMARY_STAGE):
        tolerance = int(failure_tolerance or 0)
        conn = connect_database(DATABASE_CONN_ID)
        try:
            with conn.cursor() as cursor:
                details, expected = read_run_details(cursor, dag_id=run.dag_id, run_id=run.run_id) or ({}, 0)
                summary = summarize_run(cursor, dag_id=run.dag_id, run_id=run.run_id)
                verdict = failure_verdict(
                    details, summary, expected=expected, tolerance=tolerance, targets_stage=TARGETS_STAGE
                )
                pruned = prune(cursor, now=run.as_of) if prune_state else None
                close_run(
                    cursor,
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    state="failed" if verdict.problems else "success",
                    details={"failure_tolerance": tolerance, "run_errors": list(verdict.unexplained),
                             **({"pruned": pruned} if pruned is not None else {})},
                )  # fmt: skip
            conn.commit()
        finally:
            conn.close()
        result = {
            "owners": details.get("owners", []),
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
        if verdict.problems:
            names = ", ".join(f"{repo} ({error})" for repo, error in summary.failures[:MAX_NAMED_FAILURES])
            raise RunVerdictFailed("; ".join(verdict.problems) + (f": {names}" if names else ""))
    if outlets:
        outlet_events = context["outlet_events"]
        for asset in outlets:
            outlet_events[asset].extra = {"dag_id": run.dag_id, "run_id": run.run_id, "mode": mode, **result}
    return result
