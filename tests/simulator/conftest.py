"""Fixtures of the simulator tests: started simulators and HTTP sessions (real HTTP, no mocks)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from github_sim import Simulator, SimulatorConfig

TOKEN = "ghp_test_token_one"
OTHER_TOKEN = "ghp_test_token_two"
OWNER = "acme"


def auth(token: str = TOKEN) -> dict[str, str]:
    """Authorization header GitHub accepts for a token."""
    return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}


def small_config(**overrides: object) -> SimulatorConfig:
    """A fast simulator config: 12 repositories, one big one."""
    values: dict[str, object] = {"owner": OWNER, "repos": 12, "seed": 1, "big_repos": 1}
    values.update(overrides)
    return SimulatorConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A fresh simulator per test (tests mutate state, faults and budgets)."""
    with Simulator(small_config()) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[Simulator]:
    """A read-only simulator shared by a module (do not mutate it)."""
    with Simulator(small_config()) as simulator:
        yield simulator


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A keep-alive session sending the test token."""
    with requests.Session() as session:
        session.headers.update(auth())
        yield session


def big_repo(simulator: Simulator) -> str:
    """Name of the repository with the most issues."""
    with simulator.state.lock:
        return max(simulator.state.repos(), key=lambda r: len(r.issues)).name


def empty_repo(simulator: Simulator) -> str:
    """Name of a repository without commits."""
    with simulator.state.lock:
        return next(r.name for r in simulator.state.repos() if not r.commits)


def walk(session: requests.Session, url: str) -> tuple[list[dict], list[requests.Response]]:
    """Follow ``rel="next"`` links to the end; return every item and every response."""
    items: list[dict] = []
    responses: list[requests.Response] = []
    next_url: str | None = url
    while next_url:
        resp = session.get(next_url, timeout=10)
        assert resp.status_code == 200, resp.text
        responses.append(resp)
        items.extend(resp.json())
        next_url = resp.links.get("next", {}).get("url")
    return items, responses
