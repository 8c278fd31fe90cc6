"""The one way tests wait for something that happens in another thread or process.

``wait_until`` polls a predicate until it returns a truthy value (which it returns) or the
deadline passes, then fails the test with ``message`` and the last value seen. Timeouts here are
generous upper bounds for a slow CI machine, never measurements: no test asserts how fast
something happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_INTERVAL_S = 0.05


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    interval: float = DEFAULT_INTERVAL_S,
    message: str = "condition not met",
) -> T:
    """Poll ``predicate`` until it returns something truthy; return that value (never ``None``)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            pytest.fail(f"{message} within {timeout:g} s (last value: {last!r})")
        time.sleep(interval)
