"""Apply stored webhook deliveries to the dashboard tables (the ``github_webhook_events`` DAG's work).

Everything goes through the same normalizer and loader as the syncs, straight from the
payload: no GitHub API call is needed for the supported events, because each payload carries
the full issue, pull request, commits or repository.

Ordering and staleness. Deliveries are applied in the order the relay received them
(``received_at``, then ``delivery_id``), grouped by repository. Older data never overwrites
newer: bugs and pull requests through the loader's ``updated_at`` guard; projects here (their
loader spec has no guard): a payload whose repository ``updated_at`` is older than the stored
one only moves ``last_commit`` forward. A row tombstoned by a delivery is not revived by a
delivery received before that removal (``removed_at`` is the removing delivery's
``received_at``).

Each delivery is applied and marked ``processed`` in one transaction of its own, so a bad
delivery is rolled back and marked ``failed`` with its reason without blocking the others.

This module owns how stored deliveries become rows and how a run's outcomes are recorded;
it takes a plain psycopg connection and must not import Airflow or
:mod:`github_sync.orchestration` (the DAG's task body,
:func:`github_sync.orchestration.tasks.apply_webhook_deliveries`, calls it). It is one
piece, longer than most, because the staleness rules above hold only if every event's
upsert, tombstone and status mark go through the same few guarded functions.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from github_sync.config import WEBHOOK_DAG_ID
from github_sync.github.owners import OwnerError, check_repository
from github_sync.store import loader, projects
from github_sync.store.run_records import RepositoryOutcome, close_run, open_run, record_repository_outcome
from github_sync.transform.labels import LabelRules
from github_sync.transform.normalizer import (
    MalformedPayloadError,
    is_pull_request,
    normalize_commit,
    normalize_issue,
    normalize_pull_request,
    normalize_repository,
)
from github_sync.transform.timestamps import latest

log = logging.getLogger(__name__)

SUPPORTED_EVENTS = frozenset({"ping", "push", "issues", "issue_comment", "pull_request", "repository"})
# Actions that remove an issue or a repository from its owner, and the tombstone reason.
REMOVAL_ACTIONS: Mapping[str, str] = {"deleted": "deleted", "transferred": "transferred"}
# The relay caps a run at 1,000 ids by default (10,000 at most); the DAG accepts up to that.
MAX_DELIVERY_IDS = 10_000
MAX_DELIVERY_ID_LENGTH = 128
# GitHub lists at most this many commits in a push payload; more means the list was cut.
PUSH_COMMITS_CAP = 2_048
NO_REPOSITORY = "(no repository)"
MISSING_DELIVERIES = "(missing deliveries)"
# How many failures are spelled out in the exception message (all are in the table).
MAX_FAILURES_IN_MESSAGE = 20
DONE_STATUSES = frozenset({"processed", "ignored"})


class WebhookConfError(ValueError):
    """The run's conf is not ``{"delivery_ids": [<non-empty strings>]}``; the message says what is wrong."""


class WebhookDeliveriesFailed(RuntimeError):
    """At least one delivery of the run failed; the message names each one and why."""


@dataclass(frozen=True)
class StoredDelivery:
    """A row of ``webhook_deliveries`` as the DAG needs it."""

    delivery_id: str
    event: str
    action: str | None
    repository_id: int | None
    repository: str | None
    payload: Mapping[str, Any]
    status: str
    received_at: datetime

    @property
    def kind(self) -> str:
        """``event.action`` (or just the event), for logs and counts."""
        return f"{self.event}.{self.action}" if self.action else self.event

    @property
    def repository_label(self) -> str:
        """The repository the outcome is recorded under."""
        return self.repository or NO_REPOSITORY


@dataclass(frozen=True)
class ApplyResult:
    """What applying one delivery wrote."""

    project_id: int | None = None
    records: int = 0
    note: str | None = None


def validate_conf(conf: object) -> list[str]:
    """Return the delivery ids of a run's conf, or raise naming the problem.

    Args:
        conf: ``dag_run.conf``.

    Returns:
        The ids, in the given order, without duplicates.

    Raises:
        WebhookConfError: The conf is not ``{"delivery_ids": [...]}`` with 1 to MAX_DELIVERY_IDS
            non-empty strings.
    """
    if not isinstance(conf, Mapping):
        raise WebhookConfError(
            f"conf must be an object like {{'delivery_ids': [...]}}, got {type(conf).__name__}"
        )
    if "delivery_ids" not in conf:
        raise WebhookConfError("conf has no 'delivery_ids' (the relay sends {'delivery_ids': [...]})")
    ids = conf["delivery_ids"]
    if not isinstance(ids, list) or not ids:
        raise WebhookConfError(
            f"conf['delivery_ids'] must be a non-empty list of delivery ids, got {ids!r:.200}"
        )
    if len(ids) > MAX_DELIVERY_IDS:
        raise WebhookConfError(f"conf['delivery_ids'] has {len(ids)} ids; at most {MAX_DELIVERY_IDS} per run")
    bad = [i for i in ids if not isinstance(i, str) or not i.strip() or len(i) > MAX_DELIVERY_ID_LENGTH]
    if bad:
        raise WebhookConfError(
            f"conf['delivery_ids'] must hold non-empty strings of at most {MAX_DELIVERY_ID_LENGTH} "
            f"characters; invalid: {bad[:5]!r:.200}"
        )
    return list(dict.fromkeys(ids))


def load_deliveries(cursor: psycopg.Cursor[Any], delivery_ids: Sequence[str]) -> list[StoredDelivery]:
    """Read deliveries in application order (``received_at``, then ``delivery_id``)."""
    cursor.execute(
        "SELECT delivery_id, event, action, repository_id, repository, payload, status, received_at "
        "FROM webhook_deliveries WHERE delivery_id = ANY(%s) ORDER BY received_at, delivery_id",
        (list(delivery_ids),),
    )
    return [StoredDelivery(*row) for row in cursor.fetchall()]


def _revoked_after(
    cursor: psycopg.Cursor[Any], table: str, where: Mapping[str, Any], received_at: datetime
) -> bool:
    # True when the row was tombstoned at or after this delivery was received: the delivery
    # describes the object before its removal and must not revive it.
    conditions = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(column)) for column in where)
    query = sql.SQL("SELECT removed_at FROM {} WHERE {}").format(sql.Identifier(table), conditions)
    cursor.execute(query, tuple(where.values()))
    row = cursor.fetchone()
    return row is not None and row[0] is not None and row[0] >= received_at


def apply_repository(
    cursor: psycopg.Cursor[Any], repo: Mapping[str, Any], *, received_at: datetime
) -> tuple[int, int]:
    """Upsert a payload's repository without letting older metadata win; return ``(project_id, written)``.

    Args:
        cursor: A cursor in the delivery's transaction.
        repo: The payload's ``repository`` object.
        received_at: When the delivery was received (staleness against tombstones).

    Returns:
        The project id and the number of rows written (0 or 1).
    """
    row = normalize_repository(repo)
    stored = projects.lock_project(cursor, row["github_id"])
    if stored is not None:
        if stored.removed_at is not None and stored.removed_at >= received_at:
            log.info("Repository %s was removed after this delivery; not reviving it", row["full_name"])
            return stored.project_id, 0
        if "topics" not in repo:
            # Older payload shapes carry no topics: keep what a sync stored rather than erase it.
            row["tags"] = stored.tags
        # pushed_at only moves forward, whatever the order of deliveries.
        row["last_commit"] = latest(stored.last_commit, row["last_commit"])
        if (
            stored.updated_at is not None
            and row["updated_at"] is not None
            and row["updated_at"] < stored.updated_at
        ):
            return stored.project_id, projects.set_last_commit(cursor, stored.project_id, row["last_commit"])
    project_id, changed = loader.upsert_project(cursor, row)
    return project_id, int(changed)


def _upsert_issue_or_pr(
    cursor: psycopg.Cursor[Any],
    issue: Mapping[str, Any],
    *,
    project_id: int,
    received_at: datetime,
    as_of: datetime,
    rules: LabelRules,
) -> tuple[int, str, dict[str, Any]]:
    # Returns (written, table, key) so that a removal can tombstone the same row.
    if is_pull_request(issue):
        # issue_comment on a pull request: the "issue" is the PR in its issue form.
        pr_row = normalize_pull_request(issue, as_of=as_of)
        where = {"project_id": project_id, "number": pr_row["number"]}
        if _revoked_after(cursor, "pull_requests", where, received_at):
            return 0, "pull_requests", where
        return (
            loader.upsert_rows(cursor, loader.PULL_REQUESTS, [pr_row], project_id=project_id),
            "pull_requests",
            where,
        )
    bug_row = normalize_issue(issue, as_of=as_of, rules=rules)
    where = {"github_id": bug_row["github_id"]}
    if _revoked_after(cursor, "bugs", where, received_at):
        return 0, "bugs", where
    return loader.upsert_rows(cursor, loader.BUGS, [bug_row], project_id=project_id), "bugs", where


def _payload_object(payload: Mapping[str, Any], key: str, delivery: StoredDelivery) -> Mapping[str, Any]:
    value = payload.get(key)
    if not isinstance(value, Mapping):
        raise MalformedPayloadError(f"{delivery.kind} delivery {delivery.delivery_id} has no {key!r} object")
    return value


def apply_delivery(
    cursor: psycopg.Cursor[Any], delivery: StoredDelivery, *, as_of: datetime, rules: LabelRules | None = None
) -> ApplyResult:
    """Apply one delivery to the dashboard tables (the caller owns the transaction).

    * ``ping``: nothing is written.
    * ``issues`` / ``issue_comment``: the payload's issue is upserted (a PR's issue form goes to
      pull_requests); ``issues.deleted`` / ``issues.transferred`` then tombstone the bug.
    * ``pull_request``: the payload's pull request is upserted.
    * ``push``: the payload's commits are upserted when the push is to the default branch (the
      commits table holds the default branch only); the project's ``last_commit`` follows
      ``pushed_at``.
    * ``repository``: the project is upserted (renamed, archived -> shipped, ...);
      ``deleted`` / ``transferred`` tombstone it.

    Every event but ping also upserts the payload's repository (guarded against older data).

    Args:
        cursor: A cursor of the transaction the delivery is applied in.
        delivery: The stored delivery.
        as_of: The run's time (issue priority ageing).
        rules: Label rules (the shipped defaults when None).

    Returns:
        The project and the number of rows written.

    Raises:
        MalformedPayloadError: The payload lacks what its event needs.
        ValueError: The event is not supported (the relay stores those as ignored).
    """
    event, action, payload = delivery.event, delivery.action, delivery.payload
    if event not in SUPPORTED_EVENTS:
        raise ValueError(f"event {event!r} is not supported by {WEBHOOK_DAG_ID}")
    if event == "ping":
        return ApplyResult(note="ping")
    rules = rules or LabelRules.default()
    received_at = delivery.received_at
    repo = _payload_object(payload, "repository", delivery)
    project_id, written = apply_repository(cursor, repo, received_at=received_at)

    if event in ("issues", "issue_comment"):
        issue = _payload_object(payload, "issue", delivery)
        count, table, where = _upsert_issue_or_pr(
            cursor, issue, project_id=project_id, received_at=received_at, as_of=as_of, rules=rules
        )
        written += count
        reason = REMOVAL_ACTIONS.get(action or "") if event == "issues" else None
        if reason is not None:
            written += loader.mark_removed(cursor, table, reason=reason, removed_at=received_at, where=where)
        if action == "transferred" and event == "issues":
            written += _apply_transfer_target(
                cursor, payload, repo, received_at=received_at, as_of=as_of, rules=rules
            )
    elif event == "pull_request":
        pr_row = normalize_pull_request(_payload_object(payload, "pull_request", delivery), as_of=as_of)
        where = {"project_id": project_id, "number": pr_row["number"]}
        if not _revoked_after(cursor, "pull_requests", where, received_at):
            written += loader.upsert_rows(cursor, loader.PULL_REQUESTS, [pr_row], project_id=project_id)
    elif event == "push":
        written += _apply_push(cursor, delivery, repo, project_id)
    elif event == "repository":
        reason = REMOVAL_ACTIONS.get(action or "")
        if reason is not None:
            written += loader.mark_removed(
                cursor, "projects", reason=reason, removed_at=received_at, where={"id": project_id}
            )
    return ApplyResult(project_id=project_id, records=written)


def _apply_transfer_target(
    cursor: psycopg.Cursor[Any],
    payload: Mapping[str, Any],
    old_repo: Mapping[str, Any],
    *,
    received_at: datetime,
    as_of: datetime,
    rules: LabelRules,
) -> int:
    """Upsert a transferred issue where it now lives, when the payload says (``changes.new_*``).

    The new repository is recorded as a project even if it belongs to another owner: the
    dashboard then shows where the issue went, and its own sync fills in the rest.
    """
    changes = payload.get("changes")
    if not isinstance(changes, Mapping):
        return 0
    new_issue, new_repo = changes.get("new_issue"), changes.get("new_repository")
    if not isinstance(new_issue, Mapping) or not isinstance(new_repo, Mapping):
        return 0
    if new_repo.get("id") == old_repo.get("id"):
        return 0  # not a move between repositories; nothing to add
    new_project_id, written = apply_repository(cursor, new_repo, received_at=received_at)
    count, _table, _where = _upsert_issue_or_pr(
        cursor, new_issue, project_id=new_project_id, received_at=received_at, as_of=as_of, rules=rules
    )
    return written + count


def _apply_push(
    cursor: psycopg.Cursor[Any], delivery: StoredDelivery, repo: Mapping[str, Any], project_id: int
) -> int:
    payload = delivery.payload
    default_branch = repo.get("default_branch") or repo.get("master_branch")
    ref = payload.get("ref")
    if payload.get("deleted") or not default_branch or ref != f"refs/heads/{default_branch}":
        # Tags, other branches and branch deletions: only the project's pushed_at changes.
        return 0
    commits = payload.get("commits") or []
    if not isinstance(commits, list):
        raise MalformedPayloadError(f"push delivery {delivery.delivery_id} has a non-list 'commits'")
    if len(commits) >= PUSH_COMMITS_CAP:
        # No API call from here: the next incremental sync reads the rest of the history.
        log.warning("Push %s lists %d commits (GitHub's cap); the rest comes with the next sync",
                    delivery.delivery_id, len(commits))  # fmt: skip
    rows = [normalize_commit(c) for c in commits if isinstance(c, Mapping)]
    return loader.upsert_rows(cursor, loader.COMMITS, rows, project_id=project_id)


def _mark(cursor: psycopg.Cursor[Any], delivery_id: str, status: str, error: str | None, run_id: str) -> None:
    cursor.execute(
        "UPDATE webhook_deliveries SET status = %s, error = %s, processed_at = now(), "
        "dag_run_id = COALESCE(dag_run_id, %s) WHERE delivery_id = %s",
        (status, error, run_id, delivery_id),
    )


@dataclass(frozen=True)
class WebhookRun:
    """The DAG run the deliveries are applied for (its outcomes are recorded under it)."""

    dag_id: str
    run_id: str
    try_number: int
    as_of: datetime
    rules: LabelRules


@dataclass(frozen=True)
class DeliveryBatch:
    """A run's deliveries grouped by repository (in application order), and the ids not stored."""

    requested: int
    groups: dict[str, list[StoredDelivery]]
    missing: list[str]

    @property
    def owners(self) -> list[str]:
        """The owners of the batch's repositories, for the run's row."""
        owners = {owner for owner in map(_owner_of, self.groups) if owner is not None}
        return sorted(owners, key=str.lower)


@dataclass
class RunTally:
    """What the run did so far, delivery by delivery."""

    applied: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    already_done: int = 0


def _owner_of(repository: str) -> str | None:
    # The same rule as every other boundary; "(no repository)" and the like have no owner.
    try:
        owner, _ = check_repository(repository, source="delivery repository")
    except OwnerError:
        return None
    return owner


def _apply_one(
    conn: psycopg.Connection[Any], delivery: StoredDelivery, run: WebhookRun
) -> ApplyResult | None:
    """Apply and mark one delivery in its own transaction; None when another run already did it."""
    with conn.cursor() as cursor:
        # The row lock makes a concurrent run (a manual re-trigger) wait, then see 'processed'.
        cursor.execute("SELECT status FROM webhook_deliveries WHERE delivery_id = %s FOR UPDATE",
                       (delivery.delivery_id,))  # fmt: skip
        row = cursor.fetchone()
        if row is None or row[0] in DONE_STATUSES:
            conn.rollback()
            return None
        result = apply_delivery(cursor, delivery, as_of=run.as_of, rules=run.rules)
        _mark(cursor, delivery.delivery_id, "processed", None, run.run_id)
    conn.commit()
    return result


def _fail_one(
    conn: psycopg.Connection[Any], delivery: StoredDelivery, exc: Exception, run: WebhookRun
) -> str:
    """Roll back one delivery only and mark it failed with the reason; return that reason."""
    conn.rollback()
    error = f"{type(exc).__name__}: {exc}"
    with conn.cursor() as cursor:
        _mark(cursor, delivery.delivery_id, "failed", error, run.run_id)
    conn.commit()
    log.error("Delivery %s (%s, %s) failed: %s", delivery.delivery_id, delivery.kind,
              delivery.repository_label, error)  # fmt: skip
    return error


def _load_batch(conn: psycopg.Connection[Any], delivery_ids: Sequence[str]) -> DeliveryBatch:
    with conn.cursor() as cursor:
        deliveries = load_deliveries(cursor, delivery_ids)
    conn.commit()
    found = {d.delivery_id for d in deliveries}
    groups: dict[str, list[StoredDelivery]] = {}
    for delivery in deliveries:
        groups.setdefault(delivery.repository_label, []).append(delivery)
    missing = [i for i in delivery_ids if i not in found]
    return DeliveryBatch(requested=len(delivery_ids), groups=groups, missing=missing)


def _open_webhook_run(conn: psycopg.Connection[Any], run: WebhookRun, batch: DeliveryBatch) -> None:
    with conn.cursor() as cursor:
        open_run(cursor, dag_id=run.dag_id, run_id=run.run_id, mode="webhook",
                 owner=", ".join(batch.owners) or None,
                 repositories_total=len(batch.groups) + (1 if batch.missing else 0))  # fmt: skip
    conn.commit()


def _apply_repository_group(
    conn: psycopg.Connection[Any],
    repository: str,
    deliveries: Sequence[StoredDelivery],
    run: WebhookRun,
    tally: RunTally,
) -> RepositoryOutcome:
    """Apply one repository's deliveries in order; a failed one is recorded and the rest go on."""
    outcome = RepositoryOutcome(repository=repository, state="success")
    errors: list[str] = []
    for delivery in deliveries:
        if delivery.status in DONE_STATUSES:
            tally.already_done += 1
            continue
        try:
            result = _apply_one(conn, delivery, run)
        except Exception as exc:
            error = _fail_one(conn, delivery, exc, run)
            outcome.records_failed += 1
            errors.append(f"{delivery.delivery_id} ({delivery.kind}): {error}")
            continue
        if result is None:
            tally.already_done += 1
            continue
        tally.applied[delivery.kind] += 1
        outcome.records += result.records
        outcome.project_id = result.project_id or outcome.project_id
    if errors:
        outcome.state = "failed"
        outcome.error = "; ".join(errors)
        tally.failures.extend(f"{repository}: {e}" for e in errors)
    return outcome


def _missing_outcome(missing: Sequence[str], tally: RunTally) -> RepositoryOutcome:
    """The outcome that names the ids of the conf that are not in ``webhook_deliveries``."""
    error = f"not in webhook_deliveries: {', '.join(missing[:MAX_FAILURES_IN_MESSAGE])}"
    tally.failures.append(f"{len(missing)} deliveries {error}")
    return RepositoryOutcome(
        repository=MISSING_DELIVERIES, state="failed", records_failed=len(missing), error=error
    )


def _record_outcome(conn: psycopg.Connection[Any], run: WebhookRun, outcome: RepositoryOutcome) -> None:
    with conn.cursor() as cursor:
        record_repository_outcome(
            cursor, dag_id=run.dag_id, run_id=run.run_id, outcome=outcome, try_number=run.try_number
        )
    conn.commit()


def _close_webhook_run(
    conn: psycopg.Connection[Any], run: WebhookRun, batch: DeliveryBatch, tally: RunTally
) -> dict[str, Any]:
    """Close the run's row with its summary; return the summary."""
    summary = {
        "deliveries": batch.requested,
        "applied": sum(tally.applied.values()),
        "failed": len(tally.failures) - (1 if batch.missing else 0),
        "missing": len(batch.missing),
        "already_done": tally.already_done,
        "repositories": len(batch.groups),
        "events": dict(tally.applied),
    }
    with conn.cursor() as cursor:
        close_run(cursor, dag_id=run.dag_id, run_id=run.run_id, state="failed" if tally.failures else "success",
                  details={"webhook": summary, "owners": batch.owners})  # fmt: skip
    conn.commit()
    log.info("Webhook run summary: %s", summary)
    return summary


def _raise_if_failed(failures: Sequence[str]) -> None:
    if not failures:
        return
    shown = "; ".join(failures[:MAX_FAILURES_IN_MESSAGE])
    hidden = len(failures) - MAX_FAILURES_IN_MESSAGE
    more = f" (and {hidden} more)" if hidden > 0 else ""
    raise WebhookDeliveriesFailed(f"{len(failures)} webhook deliveries failed: {shown}{more}")


def process_deliveries(
    conn: psycopg.Connection[Any],
    *,
    dag_id: str,
    run_id: str,
    try_number: int,
    as_of: datetime,
    delivery_ids: Sequence[str],
    rules: LabelRules | None = None,
) -> dict[str, Any]:
    """Apply the deliveries of one DAG run and record the run's outcomes.

    Deliveries already ``processed`` (a task retry, a repeated trigger) are skipped. Outcomes are
    recorded per repository in ``sync_repository_runs`` (so the run's ``import_logs`` row counts
    the records), the run is closed in ``sync_runs``, and the function raises at the end if any
    delivery failed.

    Args:
        conn: A psycopg connection to the target database (committed here, per delivery).
        dag_id: The DAG id.
        run_id: The DAG run id.
        try_number: The task's try (the latest try's outcome wins).
        as_of: The run's time.
        delivery_ids: The ids from the run's conf.
        rules: Label rules (the shipped defaults when None).

    Returns:
        A small summary for XCom.

    Raises:
        WebhookDeliveriesFailed: Some deliveries failed or are missing; each is named.
    """
    run = WebhookRun(dag_id=dag_id, run_id=run_id, try_number=try_number, as_of=as_of,
                     rules=rules or LabelRules.default())  # fmt: skip
    batch = _load_batch(conn, delivery_ids)
    _open_webhook_run(conn, run, batch)
    tally = RunTally()
    for repository, deliveries in batch.groups.items():
        _record_outcome(conn, run, _apply_repository_group(conn, repository, deliveries, run, tally))
    if batch.missing:
        _record_outcome(conn, run, _missing_outcome(batch.missing, tally))
    summary = _close_webhook_run(conn, run, batch, tally)
    _raise_if_failed(tally.failures)
    return summary
