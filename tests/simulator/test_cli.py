"""The ``github-sim`` console script starts a server that answers."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import requests

STARTUP_TIMEOUT_S = 20


def test_cli_starts_and_answers() -> None:
    cmd = [sys.executable, "-m", "github_sync.simulator.cli", "--port", "0", "--repos", "15", "--seed", "3"]
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
