"""Fixtures of the hook tests: a fresh simulator per test and hooks wired to its clock."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from github_sync.github.hook import GitHubHook
from github_sync.github.retry import RetryPolicy

# Small, fast retry settings; the simulated clock absorbs the waits.
FAST_RETRY = dict(backoff_initial_s=0.01, backoff_max_s=0.05, backoff_jitter_s=0.01)


@pytest.fixture
def sim() -> Iterator[Any]:
    """A started simulator: 6 repositories, one of them big (>1,000 issues, cursor pages)."""
    from github_sim import Simulator, SimulatorConfig

    simulator = Simulator(SimulatorConfig(owner="acme", repos=6, seed=1, big_repos=1, latency_ms=0))
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def token() -> str:
    """A distinctive token per test: its own rate-limit bucket in the simulator."""
    return f"ghp_TEST{uuid.uuid4().hex}"


class SimSleep:
    """Injected ``sleep`` that advances the simulator clock instead of waiting."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.calls: list[float] = []
        self.hooks: list[Callable[[SimSleep], None]] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.sim.clock.advance(seconds)
        for hook in self.hooks:
            hook(self)


@pytest.fixture
def sim_sleep(sim: Any) -> SimSleep:
    """The injected sleep of :func:`make_hook`."""
    return SimSleep(sim)


@pytest.fixture
def make_hook(sim: Any, token: str, sim_sleep: SimSleep) -> Iterator[Callable[..., GitHubHook]]:
    """Build hooks against the simulator, on its clock; closed after the test."""
    hooks: list[GitHubHook] = []

    def factory(**kwargs: Any) -> GitHubHook:
        kwargs.setdefault("base_url", sim.url)
        kwargs.setdefault("token", token)
        kwargs.setdefault("sleep", sim_sleep)
        kwargs.setdefault("clock", sim.clock.now)
        kwargs.setdefault("retry_policy", RetryPolicy(rng=random.Random(7), **FAST_RETRY))
        hook = GitHubHook(**kwargs)
        hooks.append(hook)
        return hook

    yield factory
    for hook in hooks:
        hook.close()


def repo_of(sim: Any, name: str) -> Any:
    """The simulator's internal repository object."""
    repo = sim.state.repo(name)
    assert repo is not None, name
    return repo


def big_repo_name(sim: Any) -> str:
    """Name of the repository with more than 1,000 issues."""
    return max(sim.state.repos(), key=lambda r: len(r.issues)).name
