"""The ``github-sim`` console script starts a server that answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from tests.support.simulators import ready_url

# The console script of the github-sim distribution, installed next to this interpreter.
GITHUB_SIM = str(Path(sys.executable).with_name("github-sim"))
STARTUP_TIMEOUT_S = 20


def test_cli_starts_and_answers() -> None:
    cmd = [GITHUB_SIM, "--port", "0", "--repos", "15", "--seed", "3"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        url = ready_url(proc, timeout=STARTUP_TIMEOUT_S)
        resp = requests.get(
            f"{url}/orgs/acme/repos?per_page=100", headers={"Authorization": "token t"}, timeout=5
        )
        assert resp.status_code == 200 and len(resp.json()) == 15
        assert requests.get(f"{url}/_sim/stats", timeout=5).json()["requests_total"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_cli_help_lists_the_options() -> None:
    result = subprocess.run([GITHUB_SIM, "--help"], capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.startswith("usage: github-sim") and "--reset-interval-s" in result.stdout


def test_cli_visibility_flags() -> None:
    from github_sim import Simulator
    from github_sim.cli import build_parser, config_from_args

    argv = ["--port", "0", "--repos", "6", "--owner", "octo", "--owner-type", "User", "--private-repos", "2"]
    argv += ["--owner-token", "mine", "--outsider-token", "stranger", "--outsider-token", "other"]
    config = config_from_args(build_parser().parse_args(argv))
    assert config.owner_tokens == ["mine"] and config.outsider_tokens == ["stranger", "other"]
    assert config.private_repos == 2
    defaults = config_from_args(build_parser().parse_args([]))
    assert defaults.owner_tokens is None and defaults.outsider_tokens == [] and defaults.private_repos is None
    with Simulator(config) as sim:
        mine = requests.get(f"{sim.url}/user/repos", headers={"Authorization": "token mine"}, timeout=5)
        assert len(mine.json()) == 6 and sum(r["private"] for r in mine.json()) == 2
        theirs = requests.get(f"{sim.url}/user/repos", headers={"Authorization": "token stranger"}, timeout=5)
        assert theirs.json() == []
