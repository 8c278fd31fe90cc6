"""A clock for the hook that stands still between sleeps, so waits computed from it are exact.

The simulator's clock follows the wall clock (plus an offset), so a wait the hook computes
from it depends on how long the test took to get there. Tests that assert the length of a
wait give the hook this clock instead and advance it together with the simulator's.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta


class StoppedClock:
    """An aware datetime that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self._lock = threading.Lock()
        self._now = start

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
