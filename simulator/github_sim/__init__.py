"""A local GitHub REST API simulator for tests, benchmarks and the credential-free demo.

The package follows GitHub's REST documentation, not github-sync's code: it uses the standard
library only (GitHub App support, :mod:`github_sim.apps`, imports PyJWT and cryptography when an
App is configured) and must never import the product it is used to test.

Usage::

    from github_sim import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(owner="acme", repos=20, seed=1)) as sim:
        requests.get(f"{sim.url}/orgs/acme/repos", headers={"Authorization": "Bearer x"})
"""

from __future__ import annotations

from github_sim.app import Simulator
from github_sim.config import AppConfig, InstallationConfig, SimulatorConfig
from github_sim.faults import FaultConfig

__all__ = ["AppConfig", "FaultConfig", "InstallationConfig", "Simulator", "SimulatorConfig"]
