"""Scale: 10,000 small repositories (``repo_mix="small"``) generate and list completely over HTTP.

The organisation listing sorts once per state version, not per page
(``GitHubApi._repos_sorted``), so walking all 100 pages costs about what rendering them costs.
"""

from __future__ import annotations

import time

import requests

from github_sim import Simulator
from github_sim.cli import build_parser, config_from_args
from github_sim.dataset import repo_kinds
from tests.simulator.conftest import OWNER, auth, small_config, walk

SCALE_REPOS = 10_000


def test_ten_thousand_small_repositories_list_completely() -> None:
    started = time.perf_counter()
    with Simulator(small_config(repos=SCALE_REPOS, big_repos=None, repo_mix="small")) as sim:
        generated = time.perf_counter() - started
        with sim.state.lock:
            repos = sim.state.repos()
            assert len(repos) == SCALE_REPOS
            assert not any(r.archived or not r.commits or len(r.issues) > 30 for r in repos)
            ids = {r.id for r in repos}
        with requests.Session() as http:
            http.headers.update(auth())
            listed, pages = walk(http, f"{sim.url}/orgs/{OWNER}/repos?per_page=100")
            assert len(pages) == 100 and {r["id"] for r in listed} == ids
            stamps = [r["created_at"] for r in listed]
            assert stamps == sorted(stamps, reverse=True)
            # A mutation is seen by the next page served (the cached order is per state version).
            name = listed[-1]["name"]
            sim.clock.advance(3600 * 24 * 400)
            sim.state.push_commits(name)
            top = http.get(f"{sim.url}/orgs/{OWNER}/repos?sort=pushed&per_page=1").json()
            assert top[0]["name"] == name
    assert generated < 60, f"generating {SCALE_REPOS} small repositories took {generated:.1f} s"


def test_small_mix_leaves_the_default_mix_alone() -> None:
    default = small_config(repos=300, big_repos=None)
    kinds = repo_kinds(default)
    assert {"big", "medium", "empty", "archived"} <= set(kinds)
    assert repo_kinds(small_config(repos=300, big_repos=None, repo_mix="small")) == ["small"] * 300
    assert repo_kinds(small_config(repos=300, big_repos=None)) == kinds  # same seed, same kinds
    assert config_from_args(build_parser().parse_args(["--small-repos"])).repo_mix == "small"
    assert config_from_args(build_parser().parse_args([])).repo_mix == "default"
