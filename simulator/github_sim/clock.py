"""A controllable clock for the simulator: what time it is for every timestamp and rate-limit window.

It must not sleep or schedule anything: moving it is instant, and nobody waits on it.

The clock ticks with real time (so rate-limit reset epochs make sense to a client that
compares them with ``time.time()``) but can be moved forward or set, so tests can jump
over a rate-limit window without sleeping.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SimClock:
    """Wall clock plus a settable offset; every value is an aware UTC datetime."""

    def __init__(self, start: datetime | None = None) -> None:
        """Create the clock.

        Args:
            start: the time the clock shows now; ``None`` follows the real clock.
        """
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        if start is not None:
            self.set(start)

    def now(self) -> datetime:
        """Return the simulated current time (aware, UTC, whole microseconds)."""
        with self._lock:
            offset = self._offset
        return datetime.now(UTC) + offset

    def timestamp(self) -> float:
        """Return the simulated current time as epoch seconds."""
        return self.now().timestamp()

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` and return the new time."""
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def set(self, dt: datetime) -> datetime:
        """Make the clock show ``dt`` now (it keeps ticking from there)."""
        if dt.tzinfo is None:
            raise ValueError("SimClock.set needs an aware datetime")
        with self._lock:
            self._offset = dt.astimezone(UTC) - datetime.now(UTC)
        return self.now()
