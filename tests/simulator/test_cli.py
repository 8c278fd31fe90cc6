"""The ``github-sim`` console script starts a server that answers."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import requests

STARTUP_TIMEOUT_S = 20


def test_cli_starts_and_answers() -> None:
    cmd = [sys.executable, "-m", "github_sim.cli", "--port", "0", "--repos", "15", "--seed", "3"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        url = None
        while time.monotonic() < deadline and url is None:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            m = re.search(r"github-sim ready url=(http://\S+)", line)
            url = m.group(1) if m else None
        assert url, "no ready line"
        resp = requests.get(
            f"{url}/orgs/acme/repos?per_page=100", headers={"Authorization": "token t"}, timeout=5
        )
        assert resp.status_code == 200 and len(resp.json()) == 15
        assert requests.get(f"{url}/_sim/stats", timeout=5).json()["requests_total"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


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
