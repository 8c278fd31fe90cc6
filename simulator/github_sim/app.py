"""The :class:`Simulator` facade: data set, state, HTTP server and knobs in one object.

Owns the lifecycle (generate, start serving in a thread, stop and close every connection) and
the knobs tests turn from Python (clock, faults, rate-limit budgets, webhook target). It must
not implement GitHub's behaviour itself: that is the state, API, HTTP and limiter modules'.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any

from github_sim.access import AccessPolicy, installation_key, installation_of_key
from github_sim.api import GitHubApi
from github_sim.api_apps import AppsApi
from github_sim.api_hooks import HookDeliveriesApi
from github_sim.apps import AppRegistry
from github_sim.clock import SimClock
from github_sim.config import SimulatorConfig
from github_sim.control import ControlApi
from github_sim.dataset import generate
from github_sim.faults import FaultConfig, FaultDice
from github_sim.ratelimit import ANONYMOUS, PrimaryLimiter, SecondaryLimiter
from github_sim.render import Renderer
from github_sim.server import SimHTTPServer
from github_sim.state import SimState
from github_sim.stats import Stats
from github_sim.webhooks import HookDelivery, WebhookEmitter

log = logging.getLogger(__name__)

SHUTDOWN_POLL_S = 0.05  # how often serve_forever checks for stop(); the default 0.5 s slows test teardown


class Simulator:
    """A local GitHub REST API over real HTTP.

    Example:
        >>> with Simulator(SimulatorConfig(owner="acme", repos=20, seed=1)) as sim:
        ...     requests.get(f"{sim.url}/orgs/acme/repos", headers={"Authorization": "Bearer t"})
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        """Generate the data set (the server starts with :meth:`start`)."""
        self.config = config or SimulatorConfig()
        started = time.perf_counter()
        self.clock = SimClock(self.config.start_time)
        self.faults = FaultConfig()
        self.dice = FaultDice(self.config.seed)
        data = generate(self.config)
        self.renderer = Renderer("http://127.0.0.1", self.config.html_base, data.owner)
        self.state = SimState(data, self.clock, self.renderer, self.config.seed)
        self.apps = AppRegistry(self.config.apps, self.clock)
        self.limiter = PrimaryLimiter(
            self.clock,
            self.config.rate_limit,
            self.config.unauthenticated_limit,
            self.config.reset_interval_s,
            limit_of=self._limit_of,
        )
        self.secondary = SecondaryLimiter(self.clock)
        self.stats_counter = Stats()
        self.access = AccessPolicy(self.config, self.state, self.apps)
        self.api = GitHubApi(self.state, self.faults, self.config.cursor_min_items, self.access)
        self.api.apps_api = AppsApi(self.api)
        self.control = ControlApi(self)
        self._webhooks = WebhookEmitter(self.clock, self._hook_context)
        self.state.listeners.append(self._webhooks.on_event)
        self.api.hooks_api = HookDeliveriesApi(self.api, self._webhooks)
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None
        log.info(
            "simulator data for %s: %d repositories generated in %.3f s",
            self.config.owner,
            len(data.repos),
            time.perf_counter() - started,
        )

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Simulator:
        """Bind the port and serve in a background thread; returns ``self``."""
        if self._server is not None:
            return self
        self._server = SimHTTPServer((self.config.host, self.config.port), self)
        # The bound address (the chosen port when config.port is 0), as text: server_address may be bytes.
        host, port = self._server.socket.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.renderer.api = self.url
        self.api.api_base = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_S},
            name="github-sim",
            daemon=True,
        )
        self._thread.start()
        log.info("GitHub simulator for %s listening on %s", self.config.owner, self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._webhooks.close()
        log.info("GitHub simulator on %s stopped", self.url)

    def __enter__(self) -> Simulator:
        """Start the server (``with Simulator(cfg) as sim:``)."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the server."""
        self.stop()

    url: str = ""

    # -- knobs -----------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Return the counters.

        Keys: requests_total, by_endpoint ``{"GET /route": n}``, by_status ``{code: n}``, budget_spent,
        not_modified (304s), peak_concurrency.
        """
        return self.stats_counter.snapshot(self.secondary.peak)

    def reset_stats(self) -> None:
        """Zero the counters (peak concurrency restarts from the current concurrency)."""
        self.stats_counter.reset()
        self.secondary.reset_peak()

    def _limit_of(self, key: str) -> int | None:
        # An installation's limit grows with its repositories (github_sim.apps.installation_rate_limit).
        installation_id = installation_of_key(key)
        apps_api = self.api.apps_api
        if installation_id is None or apps_api is None:
            return None
        return apps_api.rate_limit(installation_id)

    def _budget_key(self, token: str | None, installation_id: int | None) -> str:
        if installation_id is not None:
            if self.apps.installation(installation_id) is None:
                raise KeyError(f"unknown installation {installation_id}")
            return installation_key(installation_id)
        return self.access.budget_key(token) if token else ANONYMOUS

    def rate_limit_remaining(self, token: str | None = None, *, installation_id: int | None = None) -> int:
        """Return the primary budget left for ``token`` (``None``: unauthenticated callers).

        The budget is the one ``token`` spends: its user's for a token in ``token_users``, its
        installation's for an installation token; ``installation_id`` names an installation's.
        """
        return self.limiter.peek(self._budget_key(token, installation_id)).remaining

    def set_rate_limit_remaining(
        self, token: str | None, n: int, *, installation_id: int | None = None
    ) -> None:
        """Force the primary budget left for ``token`` (0 exhausts it until the window resets).

        The same budget :meth:`rate_limit_remaining` reads (user, installation or token).
        """
        self.limiter.set_remaining(self._budget_key(token, installation_id), n)

    def rate_limit(self, token: str | None = None, *, installation_id: int | None = None) -> dict[str, int]:
        """Return ``{"limit", "used", "remaining", "reset"}`` of the budget :meth:`rate_limit_remaining` reads."""
        b = self.limiter.peek(self._budget_key(token, installation_id))
        return {"limit": b.limit, "used": b.used, "remaining": b.remaining, "reset": b.reset}

    def tokens_issued(self) -> dict[int, int]:
        """Return how many installation access tokens each installation was issued so far."""
        return self.apps.tokens_issued()

    def apps_info(self) -> dict[str, Any]:
        """The configured Apps, their installations, tokens issued and installation budgets."""
        issued = self.apps.tokens_issued()
        return {
            "apps": [
                {
                    "app_id": a.app_id,
                    "slug": a.slug,
                    "client_id": a.client_id,
                    "token_lifetime_s": a.token_lifetime_s,
                    "installations": [
                        {
                            "installation_id": i.installation_id,
                            "account": i.account,
                            "repository_selection": i.repository_selection,
                            "tokens_issued": issued.get(i.installation_id, 0),
                            "rate_limit": self.rate_limit(installation_id=i.installation_id),
                        }
                        for i in a.installations
                    ],
                }
                for a in self.config.apps
            ]
        }

    @property
    def webhook_target(self) -> tuple[str, str] | None:
        """``(url, secret)`` that receives a signed delivery for every mutation, or ``None``."""
        return self._webhooks.target

    @webhook_target.setter
    def webhook_target(self, value: tuple[str, str] | None) -> None:
        self._webhooks.target = value

    def _hook_context(self, payload: dict[str, Any]) -> tuple[str, int, int | None]:
        # Which hook a payload goes through (github_sim.webhooks says why): the organisation's,
        # else the repository's; and the first App installation that reaches its repository.
        # Called by a mutation holding the state lock: reads only the payload and the config.
        repository = payload.get("repository")
        repo = repository if isinstance(repository, dict) else {}
        owner = self.state.owner
        if owner.type == "Organization":
            target: tuple[str, int] = ("organization", owner.id)
        else:
            target = ("repository", int(repo.get("id") or 0))
        installation_id = next(
            (
                inst.installation_id
                for app in self.config.apps
                for inst in app.installations
                if inst.account.lower() == owner.login.lower()
                and (inst.repository_selection == "all" or repo.get("name") in inst.repositories)
            ),
            None,
        )
        return (*target, installation_id)

    @property
    def hook_deliveries(self) -> list[HookDelivery]:
        """Every retained delivery attempt of the simulator's hook (the past 3 days), newest first."""
        return self._webhooks.deliveries()

    def redeliver(self, delivery_id: int) -> bool:
        """Queue a redelivery of ``delivery_id`` (same GUID); ``False`` if unknown, expired or no target."""
        return self._webhooks.redeliver(delivery_id)

    def drain_webhooks(self) -> None:
        """Return once every queued webhook delivery has been attempted and recorded."""
        self._webhooks.drain()
