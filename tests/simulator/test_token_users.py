"""Tokens of one user share that user's primary budget (``SimulatorConfig.token_users``), over real HTTP."""

from __future__ import annotations

import pytest
import requests

from github_sim import Simulator
from tests.simulator.conftest import OWNER, auth

A1, A2, B1, LONE = "ghp_alice_one", "ghp_alice_two", "ghp_bob_one", "ghp_unmapped"
TOKEN_USERS = {A1: "alice", A2: "alice", B1: "bob"}

pytestmark = pytest.mark.simulator(repos=6, big_repos=0, private_repos=2, token_users=TOKEN_USERS)


def test_tokens_of_one_user_share_a_budget(sim: Simulator) -> None:
    url = f"{sim.url}/orgs/{OWNER}/repos"
    for _ in range(3):
        assert requests.get(url, headers=auth(A1), timeout=10).status_code == 200
    assert sim.rate_limit_remaining(A1) == sim.rate_limit_remaining(A2) == 4997
    assert sim.rate_limit_remaining(B1) == 5000
    resp = requests.get(url, headers=auth(A2), timeout=10)
    assert resp.headers["x-ratelimit-remaining"] == "4996" and resp.headers["x-ratelimit-used"] == "4"
    other = requests.get(url, headers=auth(B1), timeout=10)
    assert other.headers["x-ratelimit-remaining"] == "4999"
    rate = requests.get(f"{sim.url}/rate_limit", headers=auth(A1), timeout=10).json()
    assert rate["rate"]["remaining"] == 4996  # and /rate_limit stays free
    assert sim.rate_limit_remaining(A2) == 4996


def test_exhausting_one_token_exhausts_the_users_other_tokens(sim: Simulator) -> None:
    url = f"{sim.url}/orgs/{OWNER}"
    sim.set_rate_limit_remaining(A2, 0)
    limited = requests.get(url, headers=auth(A1), timeout=10)
    assert limited.status_code == 403 and limited.json()["message"].startswith(
        "API rate limit exceeded for user ID"
    )
    assert requests.get(url, headers=auth(B1), timeout=10).status_code == 200
    assert requests.get(url, headers=auth(LONE), timeout=10).status_code == 200
    # The control API acts on the same budget.
    requests.post(f"{sim.url}/_sim/rate-limit", json={"token": A1, "remaining": 10}, timeout=10)
    read = requests.get(f"{sim.url}/_sim/rate-limit", params={"token": A2}, timeout=10).json()
    assert read["remaining"] == 10
    assert requests.get(url, headers=auth(A2), timeout=10).status_code == 200


def test_unmapped_tokens_keep_a_budget_each(sim: Simulator) -> None:
    requests.get(f"{sim.url}/orgs/{OWNER}", headers=auth(LONE), timeout=10)
    assert sim.rate_limit_remaining(LONE) == 4999
    assert sim.rate_limit_remaining("ghp_another") == 5000


def test_user_answers_the_mapped_login_as_a_member(sim: Simulator) -> None:
    me = requests.get(f"{sim.url}/user", headers=auth(A1), timeout=10).json()
    assert me["login"] == "alice"
    assert requests.get(f"{sim.url}/user", headers=auth(A2), timeout=10).json()["id"] == me["id"]
    assert requests.get(f"{sim.url}/user", headers=auth(B1), timeout=10).json()["login"] == "bob"
    # Members of the organisation see its private repositories.
    repos = requests.get(f"{sim.url}/orgs/{OWNER}/repos", headers=auth(B1), timeout=10).json()
    assert sum(r["private"] for r in repos) == 2


@pytest.mark.simulator(
    owner="octo",
    owner_type="User",
    repos=4,
    big_repos=0,
    private_repos=1,
    token_users={A1: "octo", B1: "bob"},
)
def test_user_owner_tokens_by_login(sim: Simulator) -> None:
    assert requests.get(f"{sim.url}/user", headers=auth(A1), timeout=10).json()["login"] == "octo"
    own = requests.get(f"{sim.url}/user/repos", headers=auth(A1), timeout=10).json()
    assert sum(r["private"] for r in own) == 1
    # bob is not the owner: the private repository does not exist for him.
    assert requests.get(f"{sim.url}/user", headers=auth(B1), timeout=10).json()["login"] == "bob"
    theirs = requests.get(f"{sim.url}/users/octo/repos", headers=auth(B1), timeout=10).json()
    assert not any(r["private"] for r in theirs)
    assert requests.get(f"{sim.url}/user/repos", headers=auth(B1), timeout=10).json() == []
