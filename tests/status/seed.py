"""Realistic run history for the status tests, written the way the tasks write it.

Each run goes through the product's own writers (``open_run``,
``record_repository_outcome``, ``close_run``, ``write_import_log``), then its timestamps
are moved into the past so durations and ordering are known to the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from github_sync.run_records import (
    RepositoryOutcome,
    close_run,
    open_run,
    record_repository_outcome,
    write_import_log,
)

DAG_BY_MODE = {
    "full": "github_full_sync",
    "incremental": "github_incremental_sync",
    "webhook": "github_webhook_sync",
}


@dataclass(frozen=True)
class Repo:
    """One repository's outcome in a seeded run."""

    name: str
    state: str = "success"
    records: int = 10
    requests: int = 4
    not_modified: int = 1
    duration_s: float = 5.0
    rate_limit_remaining: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class SeedRun:
    """A finished (or running) run of the seed."""

    mode: str
    run_id: str
    state: str
    duration_s: float
    ended_ago: timedelta
    repos: tuple[Repo, ...]
    total: int | None = None

    @property
    def dag_id(self) -> str:
        return DAG_BY_MODE[self.mode]


def _repos(prefix: str, n: int, **overrides: Any) -> tuple[Repo, ...]:
    return tuple(Repo(name=f"acme/{prefix}-{i}", **overrides) for i in range(n))


def history_runs() -> list[SeedRun]:
    """Ten finished runs over the three modes; two failed."""
    hours = timedelta(hours=1)
    return [
        SeedRun("full", "scheduled__2026-10-04T03:00:00+00:00", "success", 600, 26 * 24 * hours,
                _repos("svc", 4, records=120, requests=12, not_modified=0, duration_s=140)),
        SeedRun("full", "scheduled__2026-10-11T03:00:00+00:00", "success", 900, 19 * 24 * hours,
                (*_repos("svc", 3, records=100, requests=10, not_modified=2, duration_s=200),
                 Repo("acme/monolith", records=900, requests=60, not_modified=0, duration_s=610))),
        SeedRun("full", "manual__2026-10-20T09:15:00+00:00", "failed", 1200, 10 * 24 * hours,
                (*_repos("svc", 2, records=80, requests=9, not_modified=3, duration_s=150),
                 Repo("acme/monolith", state="failed", records=40, requests=70, duration_s=1100,
                      error="HTTP 502 from /repos/acme/monolith/issues"),
                 Repo("acme/legacy", state="failed", records=0, requests=3, duration_s=20,
                      error="HTTP 451 repository access blocked"))),
        *[
            SeedRun("incremental", f"scheduled__2026-10-2{i}T0{i}:00:00+00:00", "success", d,
                    timedelta(hours=100 - 10 * i),
                    _repos("svc", 3, records=5 + i, requests=3, not_modified=2, duration_s=d / 3))
            for i, d in enumerate((30.0, 40.0, 50.0, 60.0))
        ],
        SeedRun("incremental", "scheduled__2026-10-25T00:00:00+00:00", "failed", 100, timedelta(hours=20),
                (Repo("acme/svc-0", records=4, requests=3, not_modified=2, duration_s=10),
                 Repo("acme/legacy", state="failed", records=0, requests=2, not_modified=0, duration_s=8,
                      error="HTTP 451 repository access blocked"))),
        SeedRun("webhook", "manual__webhook-delivery-1", "success", 2, timedelta(hours=5),
                (Repo("acme/svc-1", records=2, requests=1, not_modified=0, duration_s=1.5,
                      rate_limit_remaining=4100),)),
        SeedRun("webhook", "manual__webhook-delivery-2", "success", 4, timedelta(hours=2),
                (Repo("acme/svc-2", records=3, requests=2, not_modified=0, duration_s=3,
                      rate_limit_remaining=4321),)),
    ]  # fmt: skip


@dataclass
class Seeded:
    """What the seed wrote, for the tests' expectations."""

    runs: list[SeedRun] = field(default_factory=list)


def clear_run_tables(conn: psycopg.Connection) -> None:
    """Empty the run tables (tests/conftest.py's ``pg_conn`` only empties the synced data)."""
    conn.execute("TRUNCATE sync_repository_runs, sync_runs, import_logs RESTART IDENTITY")
    conn.commit()


def write_run(conn: psycopg.Connection, run: SeedRun, *, now: datetime, finished: bool = True) -> None:
    """Write one run through the product's writers and move it to its place in time."""
    finished_at = now - run.ended_ago
    started_at = finished_at - timedelta(seconds=run.duration_s)
    with conn.cursor() as cur:
        open_run(cur, dag_id=run.dag_id, run_id=run.run_id, mode=run.mode, owner="acme",
                 repositories_total=run.total or len(run.repos))  # fmt: skip
        for repo in run.repos:
            outcome = RepositoryOutcome(
                repository=repo.name,
                state=repo.state,
                records=repo.records,
                requests=repo.requests,
                budget_spent=repo.requests - repo.not_modified,
                not_modified=repo.not_modified,
                rate_limit_remaining=repo.rate_limit_remaining,
                error=repo.error,
            )
            done = repo.state != "running"
            record_repository_outcome(
                cur, dag_id=run.dag_id, run_id=run.run_id, outcome=outcome, try_number=1, finished=done
            )
            repo_start = started_at + timedelta(seconds=1)
            cur.execute(
                "UPDATE sync_repository_runs SET started_at = %s, finished_at = CASE WHEN %s THEN %s END "
                "WHERE dag_id = %s AND run_id = %s AND repository = %s",
                (repo_start, done, repo_start + timedelta(seconds=repo.duration_s), run.dag_id, run.run_id,
                 repo.name),
            )  # fmt: skip
        cur.execute(
            "UPDATE sync_runs SET started_at = %s WHERE dag_id = %s AND run_id = %s",
            (started_at, run.dag_id, run.run_id),
        )
        if finished:
            close_run(cur, dag_id=run.dag_id, run_id=run.run_id, state=run.state, details={})
            cur.execute(
                "UPDATE sync_runs SET finished_at = %s WHERE dag_id = %s AND run_id = %s",
                (finished_at, run.dag_id, run.run_id),
            )
            write_import_log(cur, dag_id=run.dag_id, run_id=run.run_id, state=run.state, now=finished_at)
    conn.commit()


def seed_history(conn: psycopg.Connection) -> Seeded:
    """Write :func:`history_runs` into an emptied database."""
    clear_run_tables(conn)
    now = datetime.now(UTC)
    seeded = Seeded()
    for run in history_runs():
        write_run(conn, run, now=now)
        seeded.runs.append(run)
    return seeded


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's ``percentile_cont`` (linear interpolation), to compute expectations."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
