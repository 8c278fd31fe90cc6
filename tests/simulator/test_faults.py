"""Injected faults: page-size 502s, failing paths, random 5xx, slow answers, connection resets."""

from __future__ import annotations

import time

import pytest
import requests

from github_sim import Simulator
from tests.simulator.conftest import OWNER, TOKEN, big_repo


def test_page_size_fault_for_one_repo(sim: Simulator, http: requests.Session) -> None:
    name = big_repo(sim)
    sim.faults.max_page_size_before_502 = 50
    sim.faults.page_size_repos = {name}
    assert http.get(f"{sim.url}/repos/{OWNER}/{name}/issues?per_page=100").status_code == 502
    assert http.get(f"{sim.url}/repos/{OWNER}/{name}/issues?per_page=50").status_code == 200
    assert http.get(f"{sim.url}/orgs/{OWNER}/repos?per_page=100").status_code == 200  # other listings fine
    sim.faults.page_size_repos = None
    sim.faults.page_size_status = 504
    assert http.get(f"{sim.url}/orgs/{OWNER}/repos?per_page=100").status_code == 504


def test_fail_paths_and_random_5xx(sim: Simulator, http: requests.Session) -> None:
    sim.faults.fail_paths = {r"/languages$": 503}
    with sim.state.lock:
        name = sim.state.repos()[0].name
    assert http.get(f"{sim.url}/repos/{OWNER}/{name}/languages").status_code == 503
    sim.faults.fail_paths = {}
    budget = sim.rate_limit_remaining(TOKEN)
    sim.faults.random_5xx_rate = 0.5
    statuses = [http.get(f"{sim.url}/orgs/{OWNER}").status_code for _ in range(40)]
    failures = [s for s in statuses if s >= 500]
    assert 5 < len(failures) < 35 and set(failures) <= {500, 502, 503, 504}
    assert sim.rate_limit_remaining(TOKEN) == budget - statuses.count(200)  # injected 5xx spend nothing


def test_latency_and_slow(http: requests.Session) -> None:
    from tests.simulator.conftest import small_config

    with Simulator(small_config(latency_ms=120)) as sim:
        start = time.perf_counter()
        http.get(f"{sim.url}/orgs/{OWNER}")
        assert time.perf_counter() - start >= 0.12
        sim.faults.slow_ms = 200
        start = time.perf_counter()
        http.get(f"{sim.url}/orgs/{OWNER}")
        assert time.perf_counter() - start >= 0.32


def test_connection_reset(sim: Simulator) -> None:
    sim.faults.reset_connection_rate = 1.0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sim.url}/orgs/{OWNER}", headers={"Authorization": "token x"}, timeout=5)
    sim.faults.reset_connection_rate = 0.0
    assert requests.get(f"{sim.url}/orgs/{OWNER}", timeout=5).status_code == 200
