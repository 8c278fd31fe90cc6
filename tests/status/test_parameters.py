"""Out-of-range and impossible parameters are a 422 naming the parameter, never a 500.

Against Airflow's real api-server app and PostgreSQL: a 20-digit ``offset`` used to reach
PostgreSQL as a bigint and fail there (500), and so did a NUL in a run id.
"""

from __future__ import annotations

from typing import Any

import pytest

from github_sync.status.api import MAX_HISTORY_OFFSET, MAX_RUN_ID_CHARS
from tests.status.seed import Seeded

TWENTY_DIGITS = "9" * 20
# Every numeric query parameter of every route, with a value past each end of its range.
OUT_OF_RANGE = [
    ("/api/history", "offset", TWENTY_DIGITS),
    ("/api/history", "offset", str(MAX_HISTORY_OFFSET + 1)),
    ("/api/history", "offset", "-1"),
    ("/api/history", "limit", TWENTY_DIGITS),
    ("/api/history", "limit", "0"),
    ("/api/stats", "days", TWENTY_DIGITS),
    ("/api/stats", "days", "0"),
    ("/api/repositories", "days", TWENTY_DIGITS),
    ("/api/repositories", "limit", TWENTY_DIGITS),
    ("/api/repositories", "limit", "0"),
]


@pytest.mark.parametrize(("path", "parameter", "value"), OUT_OF_RANGE)
def test_an_out_of_range_number_is_a_422_naming_the_parameter(
    auth_client: Any, seeded: Seeded, path: str, parameter: str, value: str
) -> None:
    response = auth_client.get(f"/github-sync{path}", params={parameter: value})
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["query", parameter]]


def test_the_last_offset_in_range_is_an_empty_page(auth_client: Any, seeded: Seeded) -> None:
    response = auth_client.get("/github-sync/api/history", params={"offset": MAX_HISTORY_OFFSET})
    assert response.status_code == 200
    assert response.json()["items"] == []


# The NUL percent-encoded: HTTP clients refuse a raw one in a URL; the app sees it decoded.
@pytest.mark.parametrize("run_id", ["a%00b", "x" * (MAX_RUN_ID_CHARS + 1)])
def test_an_impossible_run_id_is_a_422_naming_it(auth_client: Any, seeded: Seeded, run_id: str) -> None:
    response = auth_client.get(f"/github-sync/api/runs/github_full_sync/{run_id}")
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["path", "run_id"]]
