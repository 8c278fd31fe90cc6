"""Baseline B: MeltanoLabs ``tap-github`` (PyPI ``meltanolabs-tap-github``), a popular dedicated tool.

The tap is installed in its OWN virtual environment under ``tests/benchmarks/.venvs/``
(gitignored; nothing is added to the project's lock) by :func:`ensure_tap`, with ``uv``
when available, else ``python -m venv`` + ``pip``. It is pointed at the simulator with its
``api_url_base`` setting and the ``organizations: [acme]`` mode (``/orgs/acme/repos``).
One fix was needed to run it at all: the tap checks each token against the hard-coded
``https://api.github.com/rate_limit`` whatever ``api_url_base`` says, so it is started
through ``tap_github_shim.py``, which sends that one request to ``api_url_base`` instead.

Scope, equivalent to the product's and Baseline A's:

* invocation 1: ``repositories``, ``issues`` (``state=all``), ``pull_requests``
  (``state=all``), no ``start_date``: all issues and pull requests;
* invocation 2: ``commits`` with ``start_date`` = 90 days ago (the same commit window as
  the others). The tap has one ``start_date`` for every stream, so the window needs its
  own invocation; that costs one more listing of the organisation's repositories (the
  parent stream), which is counted.

Incremental state is carried between runs (``--state``, one state file per invocation, the
last ``STATE`` message of the previous run). Records are not loaded anywhere: the Singer
messages on stdout are counted per stream (``RECORD``), so the figure is the tap's cost
alone (a target would only add to it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.benchmarks.common import BENCH_DIR

log = logging.getLogger(__name__)

TAP_PACKAGE = "meltanolabs-tap-github==1.30.1"
VENV = Path(os.environ.get("GITHUB_SYNC_BENCH_VENVS", BENCH_DIR / ".venvs")) / "tap-github"
TAP_BIN = VENV / "bin" / "tap-github"
TAP_PYTHON = VENV / "bin" / "python"
SHIM = BENCH_DIR / "tap_github_shim.py"
COMMITS_SINCE_DAYS = 90
INVOCATIONS: dict[str, tuple[str, ...]] = {
    "main": ("repositories", "issues", "pull_requests"),
    "commits": ("commits",),
}


def ensure_tap() -> Path:
    """Install the tap into its own venv if it is not there yet; return the executable."""
    if TAP_BIN.exists():
        return TAP_BIN
    VENV.parent.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv")
    log.info("Installing %s into %s", TAP_PACKAGE, VENV)
    if uv:
        subprocess.run([uv, "venv", "--python", "3.11", str(VENV)], check=True, capture_output=True)
        subprocess.run(
            [uv, "pip", "install", "--python", str(VENV / "bin" / "python"), TAP_PACKAGE], check=True
        )
    else:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", TAP_PACKAGE], check=True)
    return TAP_BIN


@dataclass
class TapRun:
    """One measured tap run (both invocations)."""

    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    records: Counter[str] = field(default_factory=Counter)


@dataclass
class MeltanoBaseline:
    """The tap against one simulator, with its working files (config, catalogs, state) in ``workdir``."""

    api_url: str
    token: str
    owner: str
    workdir: Path

    def _config(self, invocation: str) -> Path:
        config: dict[str, Any] = {
            "auth_token": self.token,
            "organizations": [self.owner],
            "api_url_base": self.api_url,
            # The simulator has GitHub's 5,000/h; the default buffer (1,000) would only
            # make the tap wait earlier, never change what it requests.
            "rate_limit_buffer": 100,
        }
        if invocation == "commits":
            since = datetime.now(UTC) - timedelta(days=COMMITS_SINCE_DAYS)
            config["start_date"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        path = self.workdir / f"config-{invocation}.json"
        path.write_text(json.dumps(config))
        return path

    def _catalog(self, invocation: str, config: Path) -> Path:
        path = self.workdir / f"catalog-{invocation}.json"
        if path.exists():
            return path
        discovered = subprocess.run(
            [*self._command(), "--config", str(config), "--discover"],
            env=self._env(),
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        catalog = json.loads(discovered.stdout)
        wanted = INVOCATIONS[invocation]
        for stream in catalog["streams"]:
            selected = stream["tap_stream_id"] in wanted
            for entry in stream.get("metadata", []):
                if not entry.get("breadcrumb"):
                    entry["metadata"]["selected"] = selected
        path.write_text(json.dumps(catalog))
        return path

    def _command(self) -> list[str]:
        # The shim fixes the tap's hard-coded token-check URL; see tap_github_shim.py.
        return [str(TAP_PYTHON), str(SHIM)]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AIRFLOW"))}
        env["TAP_GITHUB_SHIM_API_URL_BASE"] = self.api_url
        return env

    def reset_state(self) -> None:
        """Forget the incremental state (the next run is a full one)."""
        for invocation in INVOCATIONS:
            (self.workdir / f"state-{invocation}.json").unlink(missing_ok=True)

    def run(self) -> TapRun:
        """Run both invocations once, carrying each one's state forward; return the figures."""
        ensure_tap()
        self.workdir.mkdir(parents=True, exist_ok=True)
        total = TapRun()
        for invocation in INVOCATIONS:
            config = self._config(invocation)
            catalog = self._catalog(invocation, config)
            state_path = self.workdir / f"state-{invocation}.json"
            cmd = [*self._command(), "--config", str(config), "--catalog", str(catalog)]
            if state_path.exists():
                cmd += ["--state", str(state_path)]
            log_path = self.workdir / f"tap-{invocation}.log"
            started = time.perf_counter()
            with log_path.open("w") as log_file:
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=log_file, text=True, env=self._env()
                )
                assert proc.stdout is not None
                last_state: Any = None
                for line in proc.stdout:
                    # Singer messages, one JSON object per line; only the type and stream are needed.
                    if line.startswith('{"type":"RECORD"') or line.startswith('{"type": "RECORD"'):
                        message = json.loads(line)
                        total.records[message["stream"]] += 1
                    elif '"STATE"' in line[:30]:
                        last_state = json.loads(line)["value"]
                _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            total.wall_s += time.perf_counter() - started
            total.peak_rss_mb = max(total.peak_rss_mb, usage.ru_maxrss / 1024)
            if proc.returncode != 0:
                tail = log_path.read_text()[-2000:]
                raise RuntimeError(f"tap-github ({invocation}) exited with {proc.returncode}: {tail}")
            if last_state is not None:
                state_path.write_text(json.dumps(last_state))
        return total
