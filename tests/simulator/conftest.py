"""Fixtures of the simulator tests: started simulators and HTTP sessions (real HTTP, no mocks).

``sim`` (a fresh simulator per test) is the shared fixture of ``tests/support/simulators.py``;
this file only says which organisation these tests use and adds what talking HTTP needs.
It must not mock anything: the simulator tests speak real HTTP to a real server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from github_sim import Simulator, SimulatorConfig
from tests.support.simulators import OWNER, simulator_config
from tests.support.simulators import biggest_repository as big_repo
from tests.support.simulators import empty_repository as empty_repo

TOKEN = "ghp_test_token_one"
OTHER_TOKEN = "ghp_test_token_two"
# A fast organisation: 12 repositories, one big one.
SMALL_FIELDS: dict[str, Any] = {"repos": 12, "seed": 1, "big_repos": 1}

# What the simulator tests import from here (big_repo, empty_repo: the shared lookups under their old names).
__all__ = ["OTHER_TOKEN", "OWNER", "TOKEN", "auth", "big_repo", "empty_repo", "small_config", "walk"]


def auth(token: str = TOKEN) -> dict[str, str]:
    """Authorization header GitHub accepts for a token."""
    return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}


def small_config(**overrides: Any) -> SimulatorConfig:
    """A fast simulator config: 12 repositories, one big one."""
    return simulator_config(**{**SMALL_FIELDS, **overrides})


@pytest.fixture
def simulator_fields() -> dict[str, Any]:
    """``sim`` here: :func:`small_config` (tests mutate state, faults and budgets, so one per test)."""
    return dict(SMALL_FIELDS)


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


def walk(session: requests.Session, url: str) -> tuple[list[dict[str, Any]], list[requests.Response]]:
    """Follow ``rel="next"`` links to the end; return every item and every response."""
    items: list[dict[str, Any]] = []
    responses: list[requests.Response] = []
    next_url: str | None = url
    while next_url:
        resp = session.get(next_url, timeout=10)
        assert resp.status_code == 200, resp.text
        responses.append(resp)
        items.extend(resp.json())
        next_url = resp.links.get("next", {}).get("url")
    return items, responses
