"""The ``/_sim/...`` control API for out-of-process users (Airflow e2e tests, benchmarks, demo).

Routes (JSON in, JSON out):
    GET  /_sim/stats                       counters (same as ``Simulator.stats()``)
    POST /_sim/reset-stats                 zero the counters
    GET  /_sim/clock                       ``{"now": iso}``
    POST /_sim/clock/advance               ``{"seconds": n}``
    POST /_sim/clock/set                   ``{"now": iso}``
    GET  /_sim/faults                      the fault knobs
    POST /_sim/faults                      ``{knob: value, ...}``; ``{"reset": true}`` switches all off
    GET  /_sim/rate-limit?token=T          ``{"remaining": n, "limit": n, ...}`` (the budget T spends:
                                           its user's or installation's); ``?installation_id=N``
                                           reads an installation's
    POST /_sim/rate-limit                  ``{"token": T, "remaining": n}`` or
                                           ``{"installation_id": N, "remaining": n}``
    GET  /_sim/apps                        Apps, installations, tokens issued per installation
    POST /_sim/webhook                     ``{"url": U, "secret": S}`` or ``{"url": null}``
    POST /_sim/state/{mutation}            keyword arguments of the ``SimState`` mutation
    GET  /_sim/info                        owner, repository names, url

A thin dispatcher onto the :class:`Simulator`'s Python API: it must not offer anything the
Python API lacks, and it never touches GitHub's routes (``/_sim`` is not a GitHub path).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from github_sim.render import iso
from github_sim.state import MUTATIONS, NotFoundError

if TYPE_CHECKING:
    from github_sim.app import Simulator

log = logging.getLogger(__name__)


class ControlApi:
    """Dispatches ``/_sim/`` requests to the simulator's Python API."""

    def __init__(self, sim: Simulator) -> None:
        """Serve the control API of ``sim``."""
        self.sim = sim

    def handle(self, method: str, path: str, query: dict[str, str], raw: bytes) -> tuple[int, Any]:
        """Return (status, JSON body) for one control request."""
        try:
            args: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError:
            return 400, {"message": "body is not JSON"}
        sim = self.sim
        route = path.removeprefix("/_sim").strip("/")
        try:
            if route == "stats" and method == "GET":
                return 200, sim.stats()
            if route == "reset-stats" and method == "POST":
                sim.reset_stats()
                return 200, sim.stats()
            if route == "clock" and method == "GET":
                return 200, {"now": iso(sim.clock.now())}
            if route == "clock/advance" and method == "POST":
                return 200, {"now": iso(sim.clock.advance(float(args.get("seconds", 0))))}
            if route == "clock/set" and method == "POST":
                return 200, {
                    "now": iso(sim.clock.set(datetime.fromisoformat(args["now"].replace("Z", "+00:00"))))
                }
            if route == "faults":
                if method == "POST":
                    if args.pop("reset", False):
                        sim.faults.reset()
                    sim.faults.update(args)
                return 200, sim.faults.as_dict()
            if route == "rate-limit":
                token = args.get("token", query.get("token")) or None
                raw_id = args.get("installation_id", query.get("installation_id"))
                installation_id = int(raw_id) if raw_id not in (None, "") else None
                if method == "POST":
                    sim.set_rate_limit_remaining(
                        token, int(args["remaining"]), installation_id=installation_id
                    )
                budget = sim.rate_limit(token, installation_id=installation_id)
                return 200, {"token": token, "installation_id": installation_id, **budget}
            if route == "apps" and method == "GET":
                return 200, sim.apps_info()
            if route == "webhook" and method == "POST":
                url = args.get("url")
                sim.webhook_target = (url, args.get("secret", "")) if url else None
                return 200, {"url": url}
            if route == "info" and method == "GET":
                with sim.state.lock:
                    names = [r.name for r in sim.state.repos()]
                return 200, {
                    "url": sim.url,
                    "owner": sim.config.owner,
                    "owner_type": sim.config.owner_type,
                    "repos": names,
                }
            if route.startswith("state/") and method == "POST":
                name = route.removeprefix("state/")
                if name not in MUTATIONS:
                    return 404, {"message": f"unknown mutation {name!r}", "mutations": list(MUTATIONS)}
                result = getattr(sim.state, name)(**args)
                return 200, {"result": result}
        except NotFoundError as exc:
            return 404, {"message": str(exc)}
        except (KeyError, TypeError, ValueError) as exc:
            log.info("control request %s %s rejected: %s", method, path, exc)
            return 422, {"message": f"{type(exc).__name__}: {exc}"}
        return 404, {"message": f"unknown control route {method} {path}"}
