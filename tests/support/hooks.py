"""The one place tests build :class:`~github_sync.github.hook.GitHubHook` instances against a simulator.

* :func:`simulator_hook`: a hook on a simulator's URL with a token; every other argument is
  the hook's own (retry policy, HTTP cache, injected sleep and clock...).
* :class:`HookFactory`: builds hooks with one test's defaults and closes every hook it built.
* :class:`SimSleep`: an injected ``sleep`` that advances the simulator's clock instead of
  waiting, so rate-limit resets and backoffs cost no real time.

Only the hook's public constructor is used; nothing here patches or inspects hook internals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from github_sim import Simulator
from github_sync.github.hook import GitHubHook


def simulator_hook(simulator: Simulator, *, token: str, **hook_arguments: Any) -> GitHubHook:
    """A hook on ``simulator`` (its URL unless ``base_url`` is given) sending ``token``."""
    hook_arguments.setdefault("base_url", simulator.url)
    return GitHubHook(token=token, **hook_arguments)


class HookFactory:
    """Builds hooks on one simulator for one test; :meth:`close` closes every hook it built.

    ``defaults`` is called once per hook, so a default that keeps state (a seeded retry policy)
    is fresh in every hook, as if each test had built its hooks by hand.
    """

    def __init__(
        self,
        simulator: Simulator,
        *,
        token: str,
        defaults: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self._simulator = simulator
        self._token = token
        self._defaults = defaults
        self.hooks: list[GitHubHook] = []

    def __call__(self, **hook_arguments: Any) -> GitHubHook:
        """A new hook: the defaults, overridden by ``hook_arguments`` (``token`` and ``base_url`` too)."""
        arguments = {"token": self._token, **self._defaults(), **hook_arguments}
        hook = simulator_hook(self._simulator, **arguments)
        self.hooks.append(hook)
        return hook

    def close(self) -> None:
        """Close every hook built (their HTTP sessions)."""
        for hook in self.hooks:
            hook.close()


class SimSleep:
    """Injected ``sleep`` that advances the simulator clock instead of waiting.

    ``calls`` records every requested wait; each of ``hooks`` runs after a wait (a test uses
    one to heal a fault "while the hook sleeps").
    """

    def __init__(self, simulator: Simulator) -> None:
        self.sim = simulator
        self.calls: list[float] = []
        self.hooks: list[Callable[[SimSleep], None]] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.sim.clock.advance(seconds)
        for hook in self.hooks:
            hook(self)
