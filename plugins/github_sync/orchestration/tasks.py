"""The bodies of the DAGs' run-level Python tasks; the DAG files only declare them.

Owns what the first task of each DAG does (list, detect changes, resolve one repository,
apply webhook deliveries; the syncs' first tasks return shards, :mod:`github_sync.sync.shards`)
and what the summary decides. Each body takes the Airflow
context, reads its Params from it, runs inside
:func:`~github_sync.orchestration.run_guard.run_level_task` and returns a small, JSON-able
summary for XCom - never payloads.

The work itself belongs to :mod:`github_sync.sync`, :mod:`github_sync.store` and
:mod:`github_sync.webhooks`; this module only wires the run's resources to it and must not
grow sync logic of its own. It is one module for all run-level bodies, a little over 300
lines, so that the order every first task keeps (schema, then Params and Variable, then
writes) reads in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from github_sync.config import auto_migrate_enabled, pool_slots
from github_sync.github.listings import REPOSITORY_RESOURCE
from github_sync.github.owners import check_allow_list, check_repository, resolve_owners
from github_sync.orchestration.run_guard import (
    SUMMARY_STAGE,
    TARGETS_STAGE,
    RunVerdictFailed,
    run_level_task,
)
from github_sync.orchestration.runtime import TaskResources, label_rules_from_variable
from github_sync.store.loader import rescore_open_bugs, upsert_project
from github_sync.store.migrations import ensure_schema
from github_sync.store.retention import prune
from github_sync.store.run_records import (
    RunSummary,
    add_run_details,
    close_run,
    failure_verdict,
    open_run,
    read_run_details,
    summarize_run,
)
from github_sync.sync.change_detection import detect_changes
from github_sync.sync.discovery import Discovery, discover_owners, organisation_owners
from github_sync.sync.repository import RepositoryTarget
from github_sync.sync.shards import plan_shards
from github_sync.transform.normalizer import normalize_repository
from github_sync.webhooks.apply import process_deliveries, validate_conf

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context

log = logging.getLogger(__name__)

DEFAULT_MAX_MAP_LENGTH = 1024
# A failed run's message names at most this many repositories (all are in import_logs).
MAX_NAMED_FAILURES = 20
DEFAULT_FAILURE_TOLERANCE = 0
# The run's details keep the reasons of at most this many changed repositories.
MAX_RECORDED_REASONS = 1000


def prepare_target_database(conn: psycopg.Connection[Any]) -> None:
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

    return int(conf.getint("core", "max_map_length", fallback=DEFAULT_MAX_MAP_LENGTH))


def mapped_shards(targets: Sequence[RepositoryTarget]) -> list[dict[str, Any]]:
    """The ``sync_repository`` map's input: the targets in shards Airflow can map and the pool can run."""
    shards = plan_shards(targets, pool_slots=pool_slots(), max_tasks=max_map_length())
    if len(shards) < len(targets):
        log.info("%d repositories in %d shards (%s)", len(targets), len(shards),
                 ", ".join(f"{len(shard.repositories)}" for shard in shards[:5]) + (", ..." if len(shards) > 5 else ""))  # fmt: skip
    return [shard.to_mapping() for shard in shards]


@dataclass(frozen=True)
class TargetParams:
    """Which repositories a run syncs, from its Params (``owner``, the shorthand, wins over ``owners``)."""

    owner: object
    owners: object
    # As given: checked by check_allow_list in _discover, after the schema exists (so its
    # failure is recorded), because a run's conf can come from the REST API unchecked.
    repos: object
    include_archived: bool

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TargetParams:
        return cls(
            owner=params.get("owner"),
            owners=params.get("owners"),
            repos=params.get("repos"),
            include_archived=bool(params["include_archived"]),
        )


def _discover(task: TaskResources, *, mode: str, params: TargetParams) -> list[Discovery]:
    """List the owners' repositories, record their projects and open the run; return each owner's listing."""
    run, hook, conn = task.run, task.hook, task.conn
    # The schema first, so that even a bad Param's failure reaches import_logs on a fresh database.
    prepare_target_database(conn)
    owners = resolve_owners(params.owner, params.owners)
    allow = check_allow_list(params.repos, source="Param 'repos'")
    label_rules_from_variable()  # validated before anything is written
    discoveries = discover_owners(
        hook, conn, owners=owners, allow=allow, include_archived=params.include_archived,
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
    return discoveries


def _targets(discoveries: Sequence[Discovery]) -> list[RepositoryTarget]:
    return [target for discovery in discoveries for target in discovery.targets]


def list_repositories(context: Context, *, mode: str) -> list[dict[str, Any]]:
    """First task of the full sync: record the owners' projects, return the targets.

    Params and the label-rules Variable are validated before anything is written.
    """
    with run_level_task(context, mode=mode, stage=TARGETS_STAGE) as task:
        targets = _targets(_discover(task, mode=mode, params=TargetParams.from_params(context["params"])))
        shards = mapped_shards(targets)  # a bad GITHUB_SYNC_POOL_SLOTS fails here, recorded
    return shards


def detect_changed_repositories(context: Context) -> list[dict[str, Any]]:
    """First task of the incremental sync: list, probe, and return only the changed repositories.

    Unchanged repositories get the run date's metrics row carried forward here, without
    a request and without a task of their own.
    """
    with run_level_task(context, mode="incremental", stage=TARGETS_STAGE) as task:
        run, hook, conn = task.run, task.hook, task.conn
        discoveries = _discover(task, mode="incremental", params=TargetParams.from_params(context["params"]))
        targets = _targets(discoveries)
        listed = hook.stats
        detection = detect_changes(
            hook, conn, targets, as_of=run.as_of, organisations=organisation_owners(discoveries)
        )
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
                    # The first of them (all are in the task's log and their own rows).
                    "change_reasons": dict(sorted(detection.reasons.items())[:MAX_RECORDED_REASONS]),
                    "organisation_issue_listings": detection.organisation_signals,
                },
            )
        conn.commit()
        shards = mapped_shards(detection.changed)
    return shards


def resolve_repository(context: Context) -> list[dict[str, Any]]:
    """First task of ``github_repo_sync``: fetch one repository, record it, return it as the only target."""
    with run_level_task(context, mode="repository", stage=TARGETS_STAGE) as task:
        run, hook, conn = task.run, task.hook, task.conn
        prepare_target_database(conn)
        repository = context["params"]["repository"]
        owner, name = check_repository(repository, source="Param 'repository'")
        label_rules_from_variable()
        repo = hook.get(REPOSITORY_RESOURCE.path_for(f"{owner}/{name}")).json
        with conn.cursor() as cursor:
            project_id, _ = upsert_project(cursor, normalize_repository(repo))
            rescored = rescore_open_bugs(cursor, as_of=run.as_of, project_ids=[project_id])
            open_run(cursor, dag_id=run.dag_id, run_id=run.run_id, mode="repository", owner=owner,
                     repositories_total=1)  # fmt: skip
            add_run_details(cursor, dag_id=run.dag_id, run_id=run.run_id, stats=hook.stats,
                            details={"owners": [owner], "bugs_rescored": rescored})  # fmt: skip
        conn.commit()
        target = RepositoryTarget(
            full_name=str(repo["full_name"]), project_id=project_id, default_branch=repo.get("default_branch")
        )
        shards = mapped_shards([target])
    return shards


def apply_webhook_deliveries(context: Context, *, outlets: Sequence[Asset] = ()) -> dict[str, Any]:
    """The webhook DAG's task: bring the schema up, validate the conf, apply the deliveries.

    The work is :func:`github_sync.webhooks.apply.process_deliveries`; a successful run's
    summary becomes the ``extra`` of the events of ``outlets``.
    """
    with run_level_task(context, mode="webhook", stage=TARGETS_STAGE, github=False) as task:
        run = task.run
        prepare_target_database(task.conn)
        delivery_ids = validate_conf(context["dag_run"].conf)
        rules = label_rules_from_variable()
        summary = process_deliveries(
            task.conn,
            dag_id=run.dag_id,
            run_id=run.run_id,
            try_number=run.try_number,
            as_of=run.as_of,
            delivery_ids=delivery_ids,
            rules=rules,
        )
    _emit_outlet_events(context, outlets, {"dag_id": run.dag_id, "run_id": run.run_id, **summary})
    return summary


def summarize(
    context: Context, *, mode: str, prune_state: bool = False, outlets: Sequence[Asset] = ()
) -> dict[str, Any]:
    """Last task: close the run and decide its state by the documented rule (:func:`failure_verdict`).

    The Param ``failure_tolerance`` (when the DAG has it) is how many failed repositories
    the run tolerates. Either way the failed repositories and their errors are named here
    and in ``import_logs``. With ``prune_state`` (the weekly full sync) old cached responses
    and delivered webhooks are pruned too (:mod:`github_sync.store.retention`). A successful
    run's summary becomes the ``extra`` of the events of ``outlets`` (the refreshed tables).
    """
    with run_level_task(context, mode=mode, stage=SUMMARY_STAGE, github=False) as task:
        run, conn = task.run, task.conn
        tolerance = int(context["params"].get("failure_tolerance") or DEFAULT_FAILURE_TOLERANCE)
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
        result = _run_result(details, summary)
        if verdict.problems:
            names = ", ".join(f"{repo} ({error})" for repo, error in summary.failures[:MAX_NAMED_FAILURES])
            raise RunVerdictFailed("; ".join(verdict.problems) + (f": {names}" if names else ""))
    _emit_outlet_events(
        context, outlets, {"dag_id": run.dag_id, "run_id": run.run_id, "mode": mode, **result}
    )
    return result


def _run_result(details: Mapping[str, Any], summary: RunSummary) -> dict[str, Any]:
    """The summary task's XCom (and Asset extra); logs each skipped and failed repository."""
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
    return result


def _emit_outlet_events(context: Context, outlets: Sequence[Asset], extra: Mapping[str, Any]) -> None:
    # Outlets are emitted when the task succeeds; their extra tells consumers what the run did.
    if not outlets:
        return
    outlet_events = context["outlet_events"]
    for asset in outlets:
        outlet_events[asset].extra = dict(extra)
