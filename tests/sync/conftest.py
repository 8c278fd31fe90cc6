"""Fixtures for in-process sync runs (no Airflow): simulator, hook, one or two databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from github_sync.github.hook import GitHubHook
from github_sync.github.http_cache import PostgresHttpCache
from github_sync.github.retry import RetryPolicy
from github_sync.store.migrations import apply_migrations
from tests.conftest import PG_SERVER_DSN

TOKEN = "ghp_sync_tests_token_0123456789"


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


def make_hook(sim: Any, database_url: str, token: str = TOKEN) -> GitHubHook:
    """A hook on the simulator whose ETag cache lives in ``database_url``."""
    return GitHubHook(
        base_url=sim.url,
        token=token,
        http_cache=PostgresHttpCache(database_url),
        retry_policy=RetryPolicy(
            max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02, backoff_jitter_s=0
        ),
    )
