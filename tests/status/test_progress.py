"""ETA computation (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from github_sync.status.progress import RECENT_WINDOW, estimate_progress, observed_rate

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_no_rate_before_the_first_completion() -> None:
    estimate = estimate_progress(
        total=10, done=0, running=2, started_at=START, now=START + timedelta(seconds=30)
    )
    assert estimate.eta_s is None and estimate.rate_per_min is None
    assert estimate.percent == 0.0 and estimate.elapsed_s == 30


def test_whole_run_rate_with_few_completions() -> None:
    completions = [START + timedelta(seconds=10 * i) for i in range(1, 4)]
    estimate = estimate_progress(
        total=12,
        done=3,
        running=1,
        started_at=START,
        now=START + timedelta(seconds=30),
        completions=completions,
    )
    # 3 done in 30 s -> 0.1/s; 9 remaining -> 90 s.
    assert estimate.rate_per_min == pytest.approx(6.0)
    assert estimate.eta_s == pytest.approx(90.0)
    assert estimate.percent == 25.0


def test_recent_window_follows_a_slowdown() -> None:
    # 20 fast completions (1 s apart), then the last 9 every 10 s: the ETA uses the slow pace.
    fast = [START + timedelta(seconds=i) for i in range(1, 21)]
    slow = [fast[-1] + timedelta(seconds=10 * i) for i in range(1, 10)]
    now = slow[-1]
    rate = observed_rate(done=29, started_at=START, now=now, completions=fast + slow)
    assert rate == pytest.approx(RECENT_WINDOW / 80.0)
    whole = 29 / (now - START).total_seconds()
    assert rate < whole


def test_a_stalled_run_gets_a_growing_eta() -> None:
    completions = [START + timedelta(seconds=i) for i in range(1, 11)]
    soon = estimate_progress(total=20, done=10, running=1, started_at=START, now=completions[-1],
                             completions=completions)  # fmt: skip
    stalled_now = completions[-1] + timedelta(minutes=5)
    later = estimate_progress(total=20, done=10, running=1, started_at=START, now=stalled_now,
                              completions=completions)  # fmt: skip
    assert later.eta_s > soon.eta_s


def test_total_never_below_what_was_seen_and_done_means_zero_eta() -> None:
    unknown = estimate_progress(
        total=0, done=3, running=2, started_at=START, now=START + timedelta(seconds=5)
    )
    assert unknown.total == 5
    finished = estimate_progress(
        total=4, done=4, running=0, started_at=START, now=START + timedelta(seconds=5)
    )
    assert finished.eta_s == 0.0 and finished.percent == 100.0
    assert estimate_progress(total=0, done=0, running=0, started_at=START, now=START).percent is None


def test_to_dict_rounds() -> None:
    estimate = estimate_progress(
        total=3, done=1, running=1, started_at=START, now=START + timedelta(seconds=7)
    )
    data = estimate.to_dict()
    assert data["percent"] == 33.3 and data["eta_s"] == 14.0
