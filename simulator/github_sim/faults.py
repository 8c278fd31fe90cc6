"""Fault injection: the ways GitHub misbehaves that a sync has to survive.

Owns the knobs and the seeded dice behind the probabilistic ones; the HTTP layer and the API
decide where each fault applies. Nothing here answers a request itself.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field, fields
from typing import Any

# Statuses GitHub's front end answers with when a backend is slow or down.
RANDOM_5XX_STATUSES = (500, 502, 503, 504)
DEFAULT_SECONDARY_RETRY_AFTER_S = 60
# GitHub counts secondary "points" per minute.
SECONDARY_BURST_WINDOW_S = 60


@dataclass
class FaultConfig:
    """Mutable fault knobs; change them at any time (also over ``POST /_sim/faults``).

    Attributes:
        max_page_size_before_502: a listing asking for a larger ``per_page`` gets ``page_size_status``.
        page_size_repos: repositories (names) the page-size fault applies to; ``None`` means all.
        page_size_status: status of the page-size fault (GitHub answers 502 or 504).
        random_5xx_rate: probability that an API request fails with a random 5xx.
        fail_paths: ``{path_regex: status}``; a matching request path fails with that status.
        secondary_limit_concurrency: more concurrent API requests than this hit the secondary limit.
        secondary_limit_burst: more requests per token per minute (simulated clock) than this hit it.
        secondary_retry_after: ``retry-after`` seconds sent with a secondary limit; ``None`` omits it.
        secondary_status: status of a secondary limit (403 or 429).
        slow_ms: extra delay added to requests (on top of ``latency_ms``).
        slow_rate: fraction of requests that get ``slow_ms``.
        reset_connection_rate: probability that the server closes the socket without answering.
        status_429_for_primary: answer primary exhaustion with 429 instead of 403.
    """

    max_page_size_before_502: int | None = None
    page_size_repos: set[str] | None = None
    page_size_status: int = 502
    random_5xx_rate: float = 0.0
    fail_paths: dict[str, int] = field(default_factory=dict)
    secondary_limit_concurrency: int | None = None
    secondary_limit_burst: int | None = None
    secondary_retry_after: int | None = DEFAULT_SECONDARY_RETRY_AFTER_S
    secondary_status: int = 403
    slow_ms: int = 0
    slow_rate: float = 1.0
    reset_connection_rate: float = 0.0
    status_429_for_primary: bool = False

    def update(self, values: dict[str, Any]) -> None:
        """Set several knobs from a JSON-like mapping (unknown names raise ``KeyError``)."""
        names = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in names:
                raise KeyError(key)
            if key == "page_size_repos" and value is not None:
                value = set(value)
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        """Return the knobs as a JSON-serialisable dict."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = sorted(value) if isinstance(value, set) else value
        return out

    def reset(self) -> None:
        """Switch every fault off."""
        for f in fields(self):
            setattr(self, f.name, f.default_factory() if callable(f.default_factory) else f.default)


class FaultDice:
    """The seeded random draws behind the probabilistic faults (thread-safe)."""

    def __init__(self, seed: int) -> None:
        """Seed the generator so a fault sequence can be replayed."""
        self._rng = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()

    def hit(self, rate: float) -> bool:
        """Return True with probability ``rate``."""
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def choice_5xx(self) -> int:
        """Return one of the 5xx statuses GitHub answers with."""
        with self._lock:
            return self._rng.choice(RANDOM_5XX_STATUSES)


def failing_status(fail_paths: dict[str, int], path: str) -> int | None:
    """Return the status configured for the first ``fail_paths`` regex matching ``path``."""
    for pattern, status in fail_paths.items():
        if re.search(pattern, path):
            return int(status)
    return None
