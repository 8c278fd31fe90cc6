"""The one place tests build, start and stop an in-process GitHub simulator.

A pytest plugin (registered by ``tests/conftest.py``) with:

* ``start_simulator``: a factory fixture; ``start_simulator(repos=10, seed=3)`` starts a
  :class:`~github_sim.Simulator` for the test and stops it afterwards, whatever happens;
* ``sim``: a fresh started simulator per test. Its configuration is ``simulator_fields``
  (a fixture a package's conftest overrides for its own default organisation), then the
  fields of the closest ``@pytest.mark.simulator(...)`` mark (a test's, a class's or the
  module's ``pytestmark``), so a module needs no fixture of its own for a different
  organisation;
* lookups tests share: :func:`repository`, :func:`biggest_repository`, :func:`empty_repository`;
* :func:`ready_url`: the URL a ``github-sim`` process announces on its ready line (the CLI
  test and the benchmarks start it with ``--port 0``).

It reads the simulator through its public API only (``state.repos()``, ``state.repo()``,
``state.lock``) and must not reach into private state or import the product.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from github_sim import Simulator, SimulatorConfig
from github_sim.records import Repo
from tests.polling import wait_until

#: The owner of every simulated organisation the tests use.
OWNER = "acme"
#: ``@pytest.mark.simulator(**SimulatorConfig fields)``: the organisation of the test's ``sim``.
SIMULATOR_MARK = "simulator"
#: What ``github-sim`` logs once it listens; it carries the chosen port when started with ``--port 0``.
READY_LINE = re.compile(r"github-sim ready url=(http://\S+)")


def pytest_configure(config: pytest.Config) -> None:
    """Declare the mark (the suite runs with ``--strict-markers``)."""
    config.addinivalue_line(
        "markers", f"{SIMULATOR_MARK}(**fields): SimulatorConfig fields of the test's `sim` fixture"
    )


def simulator_config(**fields: Any) -> SimulatorConfig:
    """A :class:`SimulatorConfig` of an ``acme`` organisation with ``fields`` set."""
    return SimulatorConfig(**{"owner": OWNER, **fields})


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., Simulator]]:
    """Start simulators for one test (keyword arguments: ``SimulatorConfig`` fields); all stopped after it."""
    started: list[Simulator] = []

    def start(**fields: Any) -> Simulator:
        simulator = Simulator(simulator_config(**fields))
        started.append(simulator)
        return simulator.start()

    try:
        yield start
    finally:
        for simulator in reversed(started):
            simulator.stop()


@pytest.fixture
def simulator_fields() -> dict[str, Any]:
    """``SimulatorConfig`` fields of ``sim`` in this package (a conftest overrides this fixture)."""
    return {}


@pytest.fixture
def sim(
    request: pytest.FixtureRequest,
    simulator_fields: dict[str, Any],
    start_simulator: Callable[..., Simulator],
) -> Simulator:
    """A fresh started simulator: ``simulator_fields``, then the closest ``simulator`` mark's fields."""
    mark = request.node.get_closest_marker(SIMULATOR_MARK)
    return start_simulator(**{**simulator_fields, **(mark.kwargs if mark else {})})


def repository(simulator: Simulator, name: str) -> Repo:
    """The simulator's record of the live repository ``name`` (fails the test when there is none)."""
    with simulator.state.lock:
        repo = simulator.state.repo(name)
    assert repo is not None, f"the simulator has no repository {name!r}"
    return repo


def biggest_repository(simulator: Simulator) -> str:
    """Name of the repository with the most issues (the one whose listing pages with cursors)."""
    with simulator.state.lock:
        return max(simulator.state.repos(), key=lambda r: len(r.issues)).name


def empty_repository(simulator: Simulator) -> str:
    """Name of a repository without commits."""
    with simulator.state.lock:
        return next(r.name for r in simulator.state.repos() if not r.commits)


def ready_url(process: subprocess.Popen[str], *, timeout: float) -> str:
    """The URL on the ready line of a ``github-sim`` process started with ``stderr=PIPE, text=True``.

    Its stderr is read by a daemon thread until the process ends (so the pipe never fills and
    the timeout holds even while the process is silent); fails at once if the process exits first.
    """
    stderr = process.stderr
    assert stderr is not None, "start github-sim with stderr=subprocess.PIPE"
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(stderr), name="github-sim-stderr", daemon=True).start()

    def url() -> str | None:
        found = next((m.group(1) for m in map(READY_LINE.search, list(lines)) if m), None)
        if found is None and process.poll() is not None:
            pytest.fail(f"github-sim exited ({process.returncode}) without its ready line: {lines}")
        return found

    return wait_until(url, timeout=timeout, message="the ready line of github-sim")
