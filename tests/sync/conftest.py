"""Fixtures for in-process sync runs (no Airflow): simulator, hook, one or two databases.

``sim`` is the shared fixture of ``tests/support/simulators.py``; here it is a 10-repository
organisation (seed 3). A module that needs another organisation marks itself, e.g.
``pytestmark = pytest.mark.simulator(repos=8, seed=4)``, instead of defining its own ``sim``.
No Airflow here: these fixtures must not import it (tests/dags runs the DAGs).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from github_sim import Simulator
from github_sync.github.hook import GitHubHook
from github_sync.github.http_cache import PostgresHttpCache
from github_sync.github.retry import RetryPolicy
from github_sync.store.migrations import apply_migrations
from tests.conftest import PG_SERVER_DSN
from tests.support.hooks import simulator_hook

TOKEN = "ghp_sync_tests_token_0123456789"


@pytest.fixture
def simulator_fields() -> dict[str, Any]:
    """``sim`` here: 10 repositories, seed 3 (some with hundreds of issues and commits)."""
    return {"repos": 10, "seed": 3}


@pytest.fixture
def make_database() -> Iterator[Callable[[], str]]:
    """Create extra migrated databases (e.g. one for a reference full sync); dropped after the test."""
    created: list[str] = []

    def make() -> str:
        name = f"github_sync_ref_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_SERVER_DSN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        url = PG_SERVER_DSN.rsplit("/", 1)[0] + f"/{name}"
        with psycopg.connect(url) as conn:
            apply_migrations(conn)
        return url

    yield make
    with psycopg.connect(PG_SERVER_DSN, autocommit=True) as admin:
        for name in created:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_hook(sim: Simulator, database_url: str, token: str = TOKEN) -> GitHubHook:
    """A hook on the simulator whose ETag cache lives in ``database_url``."""
    return simulator_hook(
        sim,
        token=token,
        http_cache=PostgresHttpCache(database_url),
        # Quick retries: a failing request fails the test in milliseconds.
        retry_policy=RetryPolicy(
            max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02, backoff_jitter_s=0
        ),
    )
