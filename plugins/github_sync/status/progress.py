"""Progress and ETA of a running sync, computed from what the repository tasks recorded.

Pure functions: the caller passes the counts and timestamps read from
``sync_runs`` / ``sync_repository_runs`` and the database's current time, so the
arithmetic is testable without a database or a clock.

Must not: read the database or the system clock, or know the snapshot's JSON (the
caller, :mod:`github_sync.status.live_runs`, puts the estimate into it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

# The ETA follows the rate of the last completions rather than the whole run's average:
# a sync that hits GitHub's rate limit (or a batch of big repositories) slows down, and
# the estimate should say so within a few repositories rather than after half the run.
RECENT_WINDOW = 8
# Below this many completions the recent window is too noisy; the whole-run rate is used.
MIN_RECENT_COMPLETIONS = RECENT_WINDOW + 1
# Guards the divisions against a zero elapsed time (clock granularity, same-second rows).
MIN_ELAPSED_S = 0.001
SECONDS_PER_MINUTE = 60.0


@dataclass(frozen=True)
class ProgressEstimate:
    """How far a run is and when it should end.

    Attributes:
        total: repositories the run will process (never below ``done + running``).
        done: repositories with a final state (success, failed, skipped).
        running: repositories being processed (or deferred) right now.
        percent: ``done / total`` in percent, ``None`` while the total is unknown.
        elapsed_s: seconds since the run started.
        rate_per_min: observed completions per minute, ``None`` before the first one.
        eta_s: estimated seconds until the last repository finishes, ``None`` without a rate.
    """

    total: int
    done: int
    running: int
    percent: float | None
    elapsed_s: float
    rate_per_min: float | None
    eta_s: float | None

    def to_dict(self) -> dict[str, Any]:
        """The estimate as JSON-ready values (rounded for display)."""
        data = asdict(self)
        for key in ("percent", "elapsed_s", "rate_per_min", "eta_s"):
            if data[key] is not None:
                data[key] = round(data[key], 1)
        return data


def observed_rate(
    *, done: int, started_at: datetime, now: datetime, completions: Sequence[datetime] = ()
) -> float | None:
    """Repositories completed per second, from the recent completions when there are enough.

    Args:
        done: repositories with a final state.
        started_at: when the run started.
        now: the current time (same clock as the timestamps).
        completions: finish times of the done repositories, any order.

    Returns:
        The rate in repositories per second, or ``None`` when nothing has completed yet.
    """
    if done <= 0:
        return None
    ordered = sorted(completions)
    if len(ordered) >= MIN_RECENT_COMPLETIONS:
        # Rate over [the completion just before the window, now]: the idle time since the
        # last completion counts, so a stalled run's ETA grows instead of freezing.
        reference = ordered[-MIN_RECENT_COMPLETIONS]
        window_s = max((now - reference).total_seconds(), MIN_ELAPSED_S)
        return RECENT_WINDOW / window_s
    elapsed_s = max((now - started_at).total_seconds(), MIN_ELAPSED_S)
    return done / elapsed_s


def estimate_progress(
    *,
    total: int,
    done: int,
    running: int,
    started_at: datetime,
    now: datetime,
    completions: Sequence[datetime] = (),
) -> ProgressEstimate:
    """Progress of a run and its ETA from the observed completion rate.

    Args:
        total: ``sync_runs.repositories_total`` (0 while the repository list is unknown).
        done: repositories with a final state.
        running: repositories in progress (running or deferred).
        started_at: when the run started.
        now: the current time, from the same clock as ``started_at`` (the database's).
        completions: finish times of the done repositories.

    Returns:
        The estimate; ``eta_s`` is 0 once every repository is done.
    """
    # The total is written by the run's first task; mapped tasks may be recorded before a
    # re-opened run updates it, so never report more done than total.
    total = max(total, done + running)
    elapsed_s = max((now - started_at).total_seconds(), 0.0)
    rate = observed_rate(done=done, started_at=started_at, now=now, completions=completions)
    remaining = total - done
    if remaining <= 0 and total > 0:
        eta_s: float | None = 0.0
    elif rate:
        eta_s = remaining / rate
    else:
        eta_s = None
    return ProgressEstimate(
        total=total,
        done=done,
        running=running,
        percent=100.0 * done / total if total else None,
        elapsed_s=elapsed_s,
        rate_per_min=rate * SECONDS_PER_MINUTE if rate else None,
        eta_s=eta_s,
    )
