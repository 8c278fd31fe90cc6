"""A full sync authenticated as a GitHub App whose installation tokens expire during the run.

The connection is the provider's documented App form (``app_id``, ``installation_id``,
``private_key`` in extra, nothing else of github-sync's); the simulator issues tokens that
live ``TOKEN_LIFETIME_S`` seconds of real time, much less than the run, and refuses them
with 401 afterwards. The run must finish with every row and no failed task, the
simulator's log showing the tokens it issued along the way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from github_sim import AppConfig, InstallationConfig, Simulator
from github_sim.apps import generate_app_key
from github_sync.config import DATABASE_CONN_ID, GITHUB_CONN_ID, connection_env, postgres_connection
from tests.dags.test_full_sync import expected_from_simulator, table_counts

APP_ID = 90210
INSTALLATION_ID = 31
# Real seconds: the run below takes several times this long on this machine.
TOKEN_LIFETIME_S = 8
# Latency per request, so that the run outlives several tokens.
LATENCY_MS = 25


def test_a_full_sync_outlives_its_installation_tokens(
    dagbag: Any,
    monkeypatch: pytest.MonkeyPatch,
    start_simulator: Callable[..., Simulator],
    pg_conn: psycopg.Connection[Any],
    pg_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="github_sim")
    private_pem, public_pem = generate_app_key()
    app = AppConfig(
        app_id=APP_ID,
        slug="leadership-dashboard",
        public_key_pem=public_pem,
        installations=[InstallationConfig(installation_id=INSTALLATION_ID, account="acme")],
        token_lifetime_s=TOKEN_LIFETIME_S,
    )
    sim = start_simulator(repos=24, seed=5, apps=[app], latency_ms=LATENCY_MS, start_time=None)
    github = {
        "conn_type": "github",
        "host": sim.url,
        "extra": {"app_id": APP_ID, "installation_id": INSTALLATION_ID, "private_key": private_pem},
    }
    for name, value in connection_env(
        {GITHUB_CONN_ID: github, DATABASE_CONN_ID: postgres_connection(pg_database)}
    ).items():
        monkeypatch.setenv(name, value)

    run = dagbag.get_dag("github_full_sync").test()

    assert run.state == "success"
    assert not [
        ti.task_id for ti in run.get_task_instances() if ti.state != "success" and ti.state != "skipped"
    ]
    assert table_counts(pg_conn) == expected_from_simulator(sim, run.run_after)
    issued = sim.tokens_issued()[INSTALLATION_ID]
    assert issued >= 3, issued
    assert caplog.text.count(f"installation {INSTALLATION_ID}: access token issued") == issued
    # Every token bought ahead of its expiry or, after a 401, once again: nothing else was refused.
    assert sim.stats()["by_status"].get(401, 0) <= issued
