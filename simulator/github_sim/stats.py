"""Request counters readable from Python and over ``GET /_sim/stats``.

Counting only: what is counted as spent or not-modified is decided by the HTTP layer.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """Thread-safe counters of the API requests served."""

    def __init__(self) -> None:
        """Start with every counter at zero."""
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._total = 0
            self._by_endpoint: Counter[str] = Counter()
            self._by_status: Counter[int] = Counter()
            self._budget_spent = 0
            self._not_modified = 0

    def record(self, endpoint: str, status: int, spent: bool) -> None:
        """Count one answered request."""
        with self._lock:
            self._total += 1
            self._by_endpoint[endpoint] += 1
            self._by_status[status] += 1
            if spent:
                self._budget_spent += 1
            if status == 304:
                self._not_modified += 1

    def snapshot(self, peak_concurrency: int) -> dict[str, Any]:
        """Return the counters as a JSON-serialisable dict."""
        with self._lock:
            return {
                "requests_total": self._total,
                "by_endpoint": dict(self._by_endpoint),
                "by_status": {int(k): v for k, v in self._by_status.items()},
                "budget_spent": self._budget_spent,
                "not_modified": self._not_modified,
                "peak_concurrency": peak_concurrency,
            }
