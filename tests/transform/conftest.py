"""Fixtures of the normalizer tests: GitHub's own samples, loaded from the shared folder.

The normalizer is pure: nothing here may open a database, a socket or a simulator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

#: The fixed "as of" time of the tests (a DAG run's time); the samples are from 2011-2021.
AS_OF = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


def load_json(path: Path) -> Any:
    """Return the parsed JSON of ``path``."""
    return json.loads(path.read_text(encoding="utf-8"))


def webhook_files(samples: Path, event: str) -> list[Path]:
    """Every JSON payload of a webhook event folder (not all are named ``*.payload.json``)."""
    return sorted((samples / "webhooks" / event).glob("*.json"))


def openapi_value(samples: Path, operation_prefix: str) -> list[Any]:
    """The ``value`` of every example response whose file name starts with ``operation_prefix``."""
    files = sorted((samples / "openapi").glob(f"{operation_prefix}.200.*.json"))
    assert files, f"no example for {operation_prefix} in {samples / 'openapi'}"
    return [load_json(f)["value"] for f in files]


@pytest.fixture
def as_of() -> datetime:
    """The run's time used by the tests."""
    return AS_OF
