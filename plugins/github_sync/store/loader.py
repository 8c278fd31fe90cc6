"""Idempotent, batched upserts into the dashboard tables, their tombstones, and the SQL re-ageing of bugs.

Owns the column-ownership rules below and the table specs that declare them (projects, bugs,
pull requests, commits, metrics). It must not commit, call GitHub, or hold statements on the
sync's own state: hand-written SQL on ``projects`` is :mod:`github_sync.store.projects`, cursors
are :mod:`github_sync.store.cursors`, read-backs :mod:`github_sync.store.synced_rows`. It is one
piece (over 300 lines) because the specs and the statement builder are one contract: every rule a
spec declares is enforced by the one builder, for both the VALUES and the COPY path, and
:func:`rescore_open_bugs` writes under the same rules.

The loader works on a DB-API connection (psycopg 3) that the caller owns, usually
``PostgresHook("github_sync_db").get_conn()``; it never commits, so the caller decides
the unit of work (one repository = one transaction). ``PostgresHook.insert_rows`` is
not used for the data tables because it commits every ``commit_every`` rows and updates
every column on conflict, which would break both the per-repository transaction and
the column ownership rules below.

Rules every upsert follows:

* Only sync-owned columns are written: a table's ``columns`` never include the
  dashboard-owned ones (``projects.complexity``, ``projects.client_appeal``).
* A row is only rewritten when something in it changed (``IS DISTINCT FROM``), so a
  re-sync of unchanged data writes nothing and ``synced_at`` means "last changed by
  the sync".
* Rows carrying GitHub's ``updated_at`` are never overwritten by an older version of
  themselves (out-of-order webhook deliveries, overlapping runs).
* Columns only some sources have (a PR's refs and line counts are in webhooks and the
  pulls endpoint, not in the issues listing) keep their stored value when the
  incoming row has none.

Besides the upserts, :func:`rescore_open_bugs` re-ages the priority of open issues in SQL
(the one score part that moves with time alone), with the same rules: only changed rows
are written, and they get ``synced_at = now()``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import islice
from typing import Any

import psycopg
from psycopg import sql

from github_sync.store import projects
from github_sync.transform import scoring

log = logging.getLogger(__name__)

# PostgreSQL accepts at most 65,535 bind parameters per statement.
MAX_BIND_PARAMETERS = 65_535
MAX_BATCH_ROWS = 1_000
# From this many rows on, a batch goes through COPY into a temporary staging table and one
# INSERT ... SELECT: about 4x faster for bulk loads (building and binding a statement with
# tens of thousands of parameters dominates the VALUES path). A page of 100 rows stays on
# the VALUES path, where creating the staging table would cost more than it saves.
COPY_MIN_ROWS = 500
COPY_BATCH_ROWS = 10_000


# Set when a row's object vanished from GitHub (the row is kept); cleared when it is seen again.
TOMBSTONE_COLUMNS = ("removed_at", "removed_reason")


@dataclass(frozen=True)
class TableSpec:
    """How rows of one table are upserted.

    Attributes:
        name: the table.
        key: the conflict target (a unique constraint's columns).
        columns: the sync-owned columns written from the row dicts (key included).
        keep_when_null: columns whose stored value wins over an incoming NULL.
        newer_than: a column the incoming row must be at least as new as to win.
    """

    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    keep_when_null: tuple[str, ...] = ()
    newer_than: str | None = None
    # Tombstone columns that any live upsert clears (the object is visible again).
    clears: tuple[str, ...] = ()

    @property
    def batch_rows(self) -> int:
        return max(1, min(MAX_BATCH_ROWS, MAX_BIND_PARAMETERS // len(self.columns)))

    @property
    def staging_table(self) -> str:
        return f"github_sync_stage_{self.name}"

    def upsert_statement(self, rows: int) -> sql.Composed:
        """``INSERT ... VALUES (...) x rows ... ON CONFLICT`` for a batch of ``rows`` rows."""
        row_placeholder = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(self.columns)))
        return self._upsert(sql.SQL("VALUES {}").format(sql.SQL(", ").join([row_placeholder] * rows)))

    def upsert_from_staging_statement(self) -> sql.Composed:
        """The same upsert reading its rows from the staging table (the COPY path)."""
        return self._upsert(
            sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(map(sql.Identifier, self.columns)), sql.Identifier(self.staging_table)
            )
        )

    def _upsert(self, source: sql.Composable) -> sql.Composed:
        table = sql.Identifier(self.name)
        updated = [c for c in self.columns if c not in self.key]
        assignments: list[sql.Composable] = []
        for column in updated:
            ident = sql.Identifier(column)
            if column in self.keep_when_null:
                assignments.append(sql.SQL("{c} = COALESCE(EXCLUDED.{c}, {t}.{c})").format(c=ident, t=table))
            else:
                assignments.append(sql.SQL("{c} = EXCLUDED.{c}").format(c=ident))
        for column in self.clears:
            assignments.append(sql.SQL("{} = NULL").format(sql.Identifier(column)))
        assignments.append(sql.SQL("synced_at = now()"))
        current = sql.SQL(", ").join(
            sql.SQL("{}.{}").format(table, sql.Identifier(c)) for c in (*updated, *self.clears)
        )
        incoming = sql.SQL(", ").join(
            (
                sql.SQL("COALESCE(EXCLUDED.{c}, {t}.{c})").format(c=sql.Identifier(c), t=table)
                if c in self.keep_when_null
                else sql.SQL("EXCLUDED.{}").format(sql.Identifier(c))
            )
            for c in updated
        )
        incoming_clears = sql.SQL(", ").join(sql.SQL("NULL") for _ in self.clears)
        if self.clears:
            incoming = sql.SQL("{}, {}").format(incoming, incoming_clears)
        condition = sql.SQL("ROW({}) IS DISTINCT FROM ROW({})").format(current, incoming)
        if self.newer_than:
            condition = sql.SQL("EXCLUDED.{c} >= {t}.{c} AND {rest}").format(
                c=sql.Identifier(self.newer_than), t=table, rest=condition
            )
        return sql.SQL(
            "INSERT INTO {table} ({columns}) {source} "
            "ON CONFLICT ({key}) DO UPDATE SET {assignments} WHERE {condition}"
        ).format(
            table=table,
            columns=sql.SQL(", ").join(map(sql.Identifier, self.columns)),
            source=source,
            key=sql.SQL(", ").join(map(sql.Identifier, self.key)),
            assignments=sql.SQL(", ").join(assignments),
            condition=condition,
        )


PROJECTS = TableSpec(
    name="projects",
    key=("github_id",),
    columns=(
        "github_id", "owner", "name", "full_name", "description", "github_url", "language", "tags",
        "stars", "forks", "open_issues", "default_branch", "is_fork", "last_commit", "status",
        "created_at", "updated_at",
    ),
    clears=TOMBSTONE_COLUMNS,
)  # fmt: skip
BUGS = TableSpec(
    name="bugs",
    key=("github_id",),
    columns=(
        "github_id", "project_id", "bug_number", "number", "title", "description", "severity", "status",
        "sla_hours", "priority_score", "priority_base", "is_blocker", "labels", "assignees", "author",
        "github_url", "created_at", "updated_at", "resolved_at",
    ),
    newer_than="updated_at",
    clears=TOMBSTONE_COLUMNS,
)  # fmt: skip
PULL_REQUESTS = TableSpec(
    name="pull_requests",
    key=("project_id", "number"),
    columns=(
        "project_id", "number", "title", "description", "state", "draft", "author", "labels", "base_ref",
        "head_ref", "additions", "deletions", "changed_files", "github_url", "created_at", "updated_at",
        "closed_at", "merged_at",
    ),
    keep_when_null=("base_ref", "head_ref", "additions", "deletions", "changed_files"),
    newer_than="updated_at",
    clears=TOMBSTONE_COLUMNS,
)  # fmt: skip
COMMITS = TableSpec(
    name="commits",
    key=("project_id", "sha"),
    columns=("project_id", "sha", "author_login", "author_name", "message", "committed_at", "github_url"),
)
PROJECT_METRICS = TableSpec(
    name="project_metrics",
    key=("project_id", "date"),
    columns=(
        "project_id", "date", "commits_count", "contributors", "lines_of_code", "tech_stack",
        "health_score", "open_issues", "has_ci", "has_tests",
    ),
)  # fmt: skip

SYNCED_TABLE_SPECS: tuple[TableSpec, ...] = (PROJECTS, BUGS, PULL_REQUESTS, COMMITS, PROJECT_METRICS)
TOMBSTONED_TABLES = frozenset(spec.name for spec in SYNCED_TABLE_SPECS if spec.clears == TOMBSTONE_COLUMNS)


def _batched(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def upsert_rows(
    cursor: psycopg.Cursor[Any], spec: TableSpec, rows: Iterable[Mapping[str, Any]], **fixed: Any
) -> int:
    """Upsert ``rows`` into ``spec.name`` in batches; return how many rows were written.

    Args:
        cursor: a DB-API cursor of a psycopg 3 connection; the caller commits.
        spec: the table's upsert rules.
        rows: row dicts (extra keys are ignored; missing sync-owned keys are an error);
            streamed, at most one batch is held in memory.
        **fixed: values that apply to every row (e.g. ``project_id``).

    Returns:
        The number of rows inserted or changed (unchanged rows are not counted).
    """
    written = 0
    can_copy = hasattr(cursor, "copy")  # psycopg 3; other drivers take the VALUES path
    for batch in _batched(rows, COPY_BATCH_ROWS if can_copy else spec.batch_rows):
        values = [_values(spec, row, fixed) for row in batch]
        if can_copy and len(values) >= COPY_MIN_ROWS:
            written += _upsert_by_copy(cursor, spec, values)
            continue
        for start in range(0, len(values), spec.batch_rows):
            chunk = values[start : start + spec.batch_rows]
            cursor.execute(spec.upsert_statement(len(chunk)), [v for row in chunk for v in row])
            written += max(cursor.rowcount, 0)
    return written


def _values(spec: TableSpec, row: Mapping[str, Any], fixed: Mapping[str, Any]) -> tuple[Any, ...]:
    merged = {**row, **fixed}
    missing = [c for c in spec.columns if c not in merged]
    if missing:
        raise KeyError(f"{spec.name} row is missing {missing}")
    return tuple(merged[c] for c in spec.columns)


def _upsert_by_copy(cursor: psycopg.Cursor[Any], spec: TableSpec, values: list[tuple[Any, ...]]) -> int:
    stage = sql.Identifier(spec.staging_table)
    columns = sql.SQL(", ").join(map(sql.Identifier, spec.columns))
    # Column types only (no defaults, so no sequence is consumed); emptied at commit, and
    # after each batch below so that a second batch in the same transaction starts empty.
    cursor.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA"
        ).format(stage, columns, sql.Identifier(spec.name))
    )
    with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, columns)) as copy:
        for row in values:
            copy.write_row(row)
    cursor.execute(spec.upsert_from_staging_statement())
    written = max(cursor.rowcount, 0)
    cursor.execute(sql.SQL("TRUNCATE {}").format(stage))
    return written


def upsert_project(cursor: psycopg.Cursor[Any], row: Mapping[str, Any]) -> tuple[int, bool]:
    """Upsert one repository; return ``(project_id, changed)``.

    A live repository takes its URL over from a removed one that used to have it
    (deleted, then re-created under the same name).
    """
    projects.release_url_of_removed(cursor, github_url=row["github_url"], github_id=row["github_id"])
    changed = upsert_rows(cursor, PROJECTS, [row]) > 0
    return projects.project_id_for(cursor, row["github_id"]), changed


def upsert_metrics(cursor: psycopg.Cursor[Any], project_id: int, day: date, row: Mapping[str, Any]) -> int:
    """Upsert the metrics row of ``project_id`` for ``day`` (the run's date)."""
    return upsert_rows(cursor, PROJECT_METRICS, [row], project_id=project_id, date=day)


def mark_removed(
    cursor: psycopg.Cursor[Any],
    table: str,
    *,
    reason: str,
    removed_at: datetime,
    where: Mapping[str, Any],
    not_in: tuple[str, Sequence[Any]] | None = None,
) -> int:
    """Tombstone live rows of ``table`` matching ``where`` (column = value); rows are kept.

    Args:
        not_in: ``(column, values)``: only rows whose column is not among the values, i.e.
            what a complete listing no longer shows.
    """
    if table not in TOMBSTONED_TABLES:
        raise ValueError(f"{table} has no tombstone columns")
    conditions = [sql.SQL("{} = %s").format(sql.Identifier(column)) for column in where]
    params: list[Any] = [removed_at, reason, *where.values()]
    if not_in is not None:
        conditions.append(sql.SQL("NOT ({} = ANY(%s))").format(sql.Identifier(not_in[0])))
        params.append(list(not_in[1]))
    cursor.execute(
        sql.SQL(
            "UPDATE {} SET removed_at = %s, removed_reason = %s, synced_at = now() "
            "WHERE {} AND removed_at IS NULL"
        ).format(sql.Identifier(table), sql.SQL(" AND ").join(conditions)),
        params,
    )
    return max(cursor.rowcount, 0)


def rescore_open_bugs(
    cursor: psycopg.Cursor[Any], *, as_of: datetime, project_ids: Sequence[int] | None = None
) -> int:
    """Re-age the priority of open issues as of ``as_of``, in SQL; return how many rows changed.

    ``priority_score`` is ``clamp(priority_base + age points)`` (:mod:`github_sync.transform.scoring`), and
    only the age points move while an issue stays unchanged on GitHub. This recomputes the score
    of every live (``removed_at`` NULL), not closed (a closed issue stopped ageing when it was
    closed) bug from its stored ``priority_base`` and ``created_at``, in one ``UPDATE`` and
    without any API request, so every run can call it. The rules and constants are
    scoring's own, passed as parameters: for every row the result is what
    :func:`github_sync.transform.scoring.priority_score` gives for the same issue at ``as_of``.

    Rows whose ``priority_base`` is NULL (written before migration 0003, until the sync
    rewrites them) are left alone. Only rows whose score rises are written (an older
    ``as_of`` never lowers a score), rows locked by a concurrent transaction are skipped
    until the next run, and the written ones get
    ``synced_at = now()`` like any other change by the sync; a second call with the same
    ``as_of`` writes nothing. The caller commits.

    Args:
        cursor: a DB-API cursor of a psycopg 3 connection.
        as_of: the run's time (aware).
        project_ids: only the bugs of these projects; all projects when None.

    Returns:
        The number of rows whose ``priority_score`` changed.

    Raises:
        ValueError: ``as_of`` is naive (PostgreSQL would read it in the session's time zone).
    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError(f"as_of must be a timezone-aware datetime, got naive {as_of.isoformat()}")
    # scoring.age_points: full weeks open (never negative), times the points per week, at most
    # MAX_AGE_POINTS; scoring.priority_score: clamp(base + age). div() on the exact numeric epoch
    # seconds truncates toward zero, which is floor once negatives are raised to 0, so week
    # boundaries fall exactly where Python's timedelta floor division puts them (to the us).
    score = sql.SQL(
        "GREATEST(%(score_min)s::integer, LEAST(%(score_max)s::integer, priority_base + LEAST("
        "%(max_age_points)s::integer, GREATEST(0, div(extract(epoch FROM %(as_of)s::timestamptz - created_at), "
        "extract(epoch FROM %(week)s::interval))) * %(points_per_week)s::integer)))"
    )
    conditions = [sql.SQL("removed_at IS NULL AND status <> 'closed' AND priority_base IS NOT NULL")]
    params: dict[str, Any] = {
        "score_min": scoring.SCORE_MIN,
        "score_max": scoring.SCORE_MAX,
        "max_age_points": scoring.MAX_AGE_POINTS,
        "points_per_week": scoring.AGE_POINTS_PER_WEEK,
        "week": scoring.WEEK,
        "as_of": as_of,
    }
    if project_ids is not None:
        conditions.append(sql.SQL("project_id = ANY(%(project_ids)s::bigint[])"))
        params["project_ids"] = list(project_ids)
    # Only upwards: ages only grow, so a run with an older as_of (a cleared old run, a long full
    # sync beside a newer incremental one) never makes an issue younger. SKIP LOCKED: rows a
    # concurrent repository transaction holds are re-scored by the next run instead of
    # blocking this one (or deadlocking with it).
    cursor.execute(
        sql.SQL(
            "UPDATE bugs SET priority_score = {score}, synced_at = now() WHERE id IN ("
            "SELECT id FROM bugs WHERE {conditions} AND priority_score < {score} FOR UPDATE SKIP LOCKED)"
        ).format(score=score, conditions=sql.SQL(" AND ").join(conditions)),
        params,
    )
    return max(cursor.rowcount, 0)
