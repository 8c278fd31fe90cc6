"""The JSON bodies of the status API, as pydantic models: the contract of the dashboard and API clients.

Each route declares one of these as its response model, so ``/github-sync/openapi.json``
documents every body; the queries build them. The JSON is the one the API always served
(the dashboard's script and the tests read it): timestamps are Python's ``isoformat()``
text (:data:`~github_sync.store.import_log.IsoDateTime`), absent values are ``null``.

Must not: run SQL or know where a figure comes from (that is the query modules'), or
rename or drop a key: clients read them by name.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, field_serializer

from github_sync.store.import_log import IsoDateTime, RepositoryCounts

# Figures are served rounded: durations to the millisecond, per-repository averages to 2 digits.
DURATION_DIGITS = 3
AVERAGE_DIGITS = 2


def rounded(value: float | None, digits: int = DURATION_DIGITS) -> float | None:
    """``value`` rounded for display; ``None`` stays ``None``."""
    return round(float(value), digits) if value is not None else None


def grid_path(dag_id: str, run_id: str) -> str:
    """The Airflow UI path of a DAG run (relative to Airflow's base URL)."""
    return f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def optional_grid_path(dag_id: str | None, run_id: str | None) -> str | None:
    """:func:`grid_path`, or ``None`` for a row that does not name its run."""
    return grid_path(dag_id, run_id) if dag_id and run_id else None


class ErrorBody(BaseModel):
    """What a failed request answers (404: no such run; 503: the database is unreachable)."""

    detail: str


# Statistics --------------------------------------------------------------------------


class RunReference(BaseModel):
    """A logged run, as the statistics point at it (last sync, last success)."""

    dag_id: str | None
    run_id: str | None
    state: str | None
    timestamp: IsoDateTime
    records_imported: int
    duration_s: float | None
    grid_path: str | None


class RunStatistics(BaseModel):
    """Figures over the logged runs of a window."""

    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    """``succeeded / runs``; ``None`` without runs."""
    avg_duration_s: float | None
    p95_duration_s: float | None
    records_imported: int
    records_failed: int
    requests: int
    budget_spent: int
    not_modified: int
    not_modified_share: float | None
    """Share of the requests answered 304 (free of budget); ``None`` without requests."""


class ModeStatistics(RunStatistics):
    """:class:`RunStatistics` of one sync mode, with its latest runs (not limited to the window)."""

    last_sync: RunReference | None
    last_success: RunReference | None


class StatisticsResponse(BaseModel):
    """``GET /api/stats``."""

    window_days: int
    owner: str | None
    generated_at: IsoDateTime
    overall: RunStatistics
    modes: dict[str, ModeStatistics]
    """Every sync mode (those without runs too), then any other mode found in the logs."""


# History and run detail --------------------------------------------------------------


class HistoryItem(BaseModel):
    """One logged run (an ``import_logs`` row)."""

    id: int
    timestamp: IsoDateTime
    dag_id: str | None
    run_id: str | None
    mode: str | None
    state: str | None
    owner: str | None
    """The owners as recorded in one text (several joined with ``", "``)."""
    owners: list[str]
    records_imported: int
    records_failed: int
    error_count: int
    started_at: IsoDateTime | None
    finished_at: IsoDateTime | None
    duration_s: float | None
    requests: int | None
    budget_spent: int | None
    not_modified: int | None
    retries: int | None
    rate_limit_remaining: int | None
    repositories: RepositoryCounts | None
    grid_path: str | None

    @field_serializer("repositories")
    def _absent_counts_as_empty(self, counts: RepositoryCounts | None) -> RepositoryCounts | dict[str, int]:
        # A row without counts (never written by the sync, but possible by hand) has
        # always been served as {}: clients test the object's keys, not for null.
        return counts if counts is not None else {}


class HistoryResponse(BaseModel):
    """``GET /api/history``: a page of logged runs, newest first."""

    total: int
    limit: int
    offset: int
    items: list[HistoryItem]


class RepositoryRun(BaseModel):
    """One repository's outcome in a run (a ``sync_repository_runs`` row)."""

    repository: str
    project_id: int | None
    state: str
    try_number: int
    records: int
    requests: int
    budget_spent: int
    not_modified: int
    retries: int
    rate_limit_remaining: int | None
    error: str | None
    started_at: IsoDateTime | None
    finished_at: IsoDateTime | None
    duration_s: float | None


class RunDetail(BaseModel):
    """``GET /api/runs/{dag_id}/{run_id}``: a run, running or logged, with every repository."""

    dag_id: str
    run_id: str
    mode: str | None
    owner: str | None
    owners: list[str]
    state: str | None
    started_at: IsoDateTime | None
    finished_at: IsoDateTime | None
    duration_s: float | None
    repositories_total: int | None
    details: dict[str, Any]
    """``sync_runs.details`` as the run-level tasks recorded them (``{}`` once only logged)."""
    log: HistoryItem | None
    errors: list[str]
    counts: dict[str, int]
    """Repositories by state."""
    repositories: list[RepositoryRun]
    """Failed first, then by name."""
    grid_path: str


# Budget, repositories, owners --------------------------------------------------------


class RateLimitResponse(BaseModel):
    """``GET /api/rate-limit``: GitHub's latest known remaining budget and the last hour's spending."""

    remaining: int | None
    observed_at: IsoDateTime | None
    source: Literal["repository_run", "import_log"] | None
    """Where the figure was observed: a repository's outcome, or a run's log."""
    dag_id: str | None
    run_id: str | None
    repository: str | None
    spent_last_hour: int
    requests_last_hour: int
    window_hours: int


class SlowRepository(BaseModel):
    """A repository by its sync durations."""

    repository: str
    runs: int
    avg_duration_s: float | None
    max_duration_s: float | None
    avg_requests: float | None


class FailingRepository(BaseModel):
    """A repository that failed in the window, with its latest failure."""

    repository: str
    failures: int
    runs: int
    last_error: str | None
    last_failed_at: IsoDateTime | None
    dag_id: str
    run_id: str
    grid_path: str


class RepositoriesResponse(BaseModel):
    """``GET /api/repositories``: the slowest and the most often failing repositories."""

    window_days: int
    owner: str | None
    slowest: list[SlowRepository]
    failing: list[FailingRepository]


class OwnerSummary(BaseModel):
    """A GitHub owner the status knows, with its live (not removed) repositories."""

    owner: str
    repositories: int


class OwnersResponse(BaseModel):
    """``GET /api/owners``, ordered by login."""

    owners: list[OwnerSummary]


# Live runs ---------------------------------------------------------------------------


class ShardPosition(BaseModel):
    """A repository a shard (a mapped task syncing several) is syncing right now."""

    shard: str
    repository: str


class RunSnapshot(BaseModel):
    """Where a run stands: the body of ``/api/progress`` entries and of every stream event."""

    dag_id: str
    run_id: str
    mode: str
    owner: str | None
    owners: list[str]
    state: str
    started_at: IsoDateTime
    finished_at: IsoDateTime | None
    succeeded: int
    failed: int
    skipped: int
    deferred: int
    records: int
    requests: int
    budget_spent: int
    not_modified: int
    current_repositories: list[str]
    current_shards: list[ShardPosition] = []
    failed_repositories: list[str]
    total: int
    done: int
    running: int
    percent: float | None
    elapsed_s: float
    rate_per_min: float | None
    eta_s: float | None
    grid_path: str


class VanishedRunSnapshot(RunSnapshot):
    """A followed run whose row disappeared: its last snapshot, failed, with why."""

    error: str


class ProgressResponse(BaseModel):
    """``GET /api/progress``: the runs in progress, oldest first."""

    generated_at: IsoDateTime
    owner: str | None
    runs: list[RunSnapshot]
