"""Realistic run history for the status tests, written the way the tasks write it.

Each run goes through the product's own writers (``open_run``,
``record_repository_outcome``, ``close_run``, ``write_import_log``), then its timestamps
are moved into the past so durations and ordering are known to the tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from github_sync.store.import_log import write_import_log
from github_sync.store.run_records import RepositoryOutcome, close_run, open_run, record_repository_outcome

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
    # owners: the run's list (``details.owners``, the contract of multi-owner runs); None
    # writes a row of before that list, with only the text ``owner``.
    owners: tuple[str, ...] | None = None
    owner: str = "acme"

    @property
    def dag_id(self) -> str:
        return DAG_BY_MODE[self.mode]

    @property
    def owner_text(self) -> str:
        """``sync_runs.owner``: the owners joined with ", " (or the legacy single owner)."""
        return ", ".join(self.owners) if self.owners else self.owner

    def includes(self, owner: str) -> bool:
        """Whether the run synced ``owner`` (case-insensitive), by the data contract."""
        listed = self.owners or tuple(part.strip() for part in self.owner.split(","))
        return owner.lower() in {o.lower() for o in listed}


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
        open_run(cur, dag_id=run.dag_id, run_id=run.run_id, mode=run.mode, owner=run.owner_text,
                 repositories_total=run.total or len(run.repos))  # fmt: skip
        if run.owners is not None:
            # What the listing task records (add_run_details), copied to import_logs.metadata.
            cur.execute(
                "UPDATE sync_runs SET details = details || jsonb_build_object('owners', %s::jsonb) "
                "WHERE dag_id = %s AND run_id = %s",
                (json.dumps(list(run.owners)), run.dag_id, run.run_id),
            )
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


@dataclass(frozen=True)
class SeedProject:
    """A ``projects`` row (only what the owner views read)."""

    full_name: str
    removed: bool = False

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]


# Projects of the owners' seed: acme's live repositories (and one removed), octo's two.
# "Ghost" has no project: it is only known from an old run.
OWNER_PROJECTS = (
    *(SeedProject(f"acme/svc-{i}") for i in range(4)),
    SeedProject("acme/monolith"),
    SeedProject("acme/legacy"),
    SeedProject("acme/retired", removed=True),
    SeedProject("octo/app-0"),
    SeedProject("octo/app-1"),
)
# Far from any id or URL the simulator uses, so a real sync in the same database never
# collides with the seeded projects.
SEED_GITHUB_ID_BASE = 9_000_000_000


def owner_runs() -> list[SeedRun]:
    """Runs of a second owner, a two-owner run and an old run of a third, on top of :func:`history_runs`.

    No full run: the full mode's figures stay those of :func:`history_runs`.
    """
    hours = timedelta(hours=1)
    return [
        SeedRun("incremental", "manual__octo-1", "success", 45, 30 * hours,
                (Repo("octo/app-0", records=7, requests=5, not_modified=1, duration_s=20),
                 Repo("octo/app-1", records=3, requests=4, not_modified=2, duration_s=12)),
                owners=("octo",)),
        # The list spells the login differently: owners compare case-insensitively.
        SeedRun("incremental", "manual__octo-2", "failed", 20, 8 * hours,
                (Repo("octo/app-1", state="failed", records=0, requests=6, not_modified=0, duration_s=15,
                      error="HTTP 500 from /repos/octo/app-1/pulls"),),
                owners=("Octo",)),
        SeedRun("incremental", "manual__acme-and-octo", "success", 120, 3 * hours,
                (Repo("acme/svc-3", records=2, requests=3, not_modified=1, duration_s=30),
                 Repo("octo/app-0", records=4, requests=3, not_modified=0, duration_s=90)),
                owners=("acme", "octo")),
        # Written before runs listed their owners: only sync_runs.owner / metadata.owner.
        SeedRun("webhook", "manual__ghost-delivery", "success", 3, 50 * hours,
                (Repo("Ghost/tool", records=1, requests=1, not_modified=0, duration_s=2),),
                owner="Ghost"),
    ]  # fmt: skip


def seed_owners(conn: psycopg.Connection) -> list[SeedRun]:
    """Add :data:`OWNER_PROJECTS` and :func:`owner_runs` (call after :func:`seed_history`)."""
    now = datetime.now(UTC)
    with conn.cursor() as cur:
        for index, project in enumerate(OWNER_PROJECTS):
            name = project.full_name.split("/", 1)[1]
            cur.execute(
                "INSERT INTO projects (github_id, owner, name, full_name, github_url, removed_at) "
                "VALUES (%s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)",
                (SEED_GITHUB_ID_BASE + index, project.owner, name, project.full_name,
                 f"https://seed.invalid/{project.full_name}", project.removed),
            )  # fmt: skip
    conn.commit()
    runs = owner_runs()
    for run in runs:
        write_run(conn, run, now=now)
    return runs


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's ``percentile_cont`` (linear interpolation), to compute expectations."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
