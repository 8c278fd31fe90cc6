"""Fixtures of the hook tests: a fresh simulator per test and hooks wired to its clock.

The simulator (``sim``) and the hook building blocks come from ``tests/support``; this file
only says which organisation the hook tests use and how their hooks retry and sleep.
Nothing here may wait in real time: every hook sleeps on the simulator's clock.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest

from github_sim import Simulator
from github_sync.github.retry import RetryPolicy
from tests.support.hooks import HookFactory, SimSleep
from tests.support.simulators import biggest_repository as big_repo_name
from tests.support.simulators import repository as repo_of


class RetryTimings(TypedDict):
    """Backoff arguments of :class:`RetryPolicy` (``RetryPolicy(**FAST_RETRY)``)."""

    backoff_initial_s: float
    backoff_max_s: float
    backoff_jitter_s: float


# Small, fast retry settings; the simulated clock absorbs the waits.
FAST_RETRY = RetryTimings(backoff_initial_s=0.01, backoff_max_s=0.05, backoff_jitter_s=0.01)
# Every hook's jitter comes from its own generator with this seed: the same waits every run.
RETRY_SEED = 7

# What the hook tests import from here (repo_of, big_repo_name: the shared lookups under their old names).
__all__ = ["FAST_RETRY", "SimSleep", "big_repo_name", "repo_of"]


@pytest.fixture
def simulator_fields() -> dict[str, Any]:
    """``sim`` here: 6 repositories, one of them big (>1,000 issues, cursor pages), no latency."""
    return {"repos": 6, "seed": 1, "big_repos": 1, "latency_ms": 0}


@pytest.fixture
def token() -> str:
    """A distinctive token per test: its own rate-limit bucket in the simulator."""
    return f"ghp_TEST{uuid.uuid4().hex}"


@pytest.fixture
def sim_sleep(sim: Simulator) -> SimSleep:
    """The injected sleep of :func:`make_hook`."""
    return SimSleep(sim)


@pytest.fixture
def make_hook(sim: Simulator, token: str, sim_sleep: SimSleep) -> Iterator[HookFactory]:
    """Build hooks against the simulator, on its clock; closed after the test."""
    factory = HookFactory(
        sim,
        token=token,
        defaults=lambda: {
            "sleep": sim_sleep,
            "clock": sim.clock.now,
            "retry_policy": RetryPolicy(rng=random.Random(RETRY_SEED), **FAST_RETRY),
        },
    )
    try:
        yield factory
    finally:
        factory.close()
