"""Correctly signed deliveries that can never be stored: 400 with the reason, counted apart (issue #18).

Through the relay app (FastAPI's TestClient) on a real PostgreSQL. Before the fix these got
503 "redeliver later" (GitHub would redeliver them forever) or 500. Deliveries whose text
fields only need cleaning (NUL, lone surrogates) are stored cleaned instead of refused.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from fastapi.testclient import TestClient

from github_sync.webhooks.relay.payload import MAX_NESTING_DEPTH
from tests.webhooks.helpers import ADMIN, delivery_rows, headers

WEBHOOK = "/webhooks/github"
FORM = "application/x-www-form-urlencoded"
REPO = '{"id": 1296269, "full_name": "octocat/Hello-World"}'
BIGINT_MAX = 2**63 - 1


def nested(depth: int) -> str:
    """A payload whose objects and arrays nest ``depth`` levels (the top-level object is 1)."""
    return '{"zen": "x", "deep": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def post(client: TestClient, text: str, *, event: str = "issues", form: bool = False) -> tuple[str, Any]:
    """Post ``text`` (raw JSON, exactly as given) as a signed delivery; return its id and the response."""
    delivery_id = str(uuid.uuid4())
    body = urlencode({"payload": text}).encode() if form else text.encode()
    sent = headers(body, event, delivery_id)
    if form:
        sent["Content-Type"] = FORM
    return delivery_id, client.post(WEBHOOK, content=body, headers=sent)


def request_counts(client: TestClient) -> dict[str, Any]:
    counts: dict[str, Any] = client.get("/stats", headers=ADMIN).json()["requests"]
    return counts


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"action": "opened", "score": NaN, "repository": ' + REPO + "}", "NaN"),
        ('{"action": "opened", "score": Infinity, "repository": ' + REPO + "}", "Infinity"),
        ('{"action": "opened", "score": -Infinity, "repository": ' + REPO + "}", "-Infinity"),
        ('{"action": "opened", "score": 1e400, "repository": ' + REPO + "}", "out of the range of a double"),
        (
            '{"action": "opened", "repository": {"id": ' + str(BIGINT_MAX + 1) + ', "full_name": "o/r"}}',
            "repository.id 9223372036854775808 is outside PostgreSQL's bigint range",
        ),
        (
            '{"action": "opened", "repository": {"id": ' + str(-BIGINT_MAX - 2) + ', "full_name": "o/r"}}',
            "outside PostgreSQL's bigint range",
        ),
        ('{"n": ' + "9" * 5000 + "}", "has too many digits"),
        (nested(MAX_NESTING_DEPTH + 1), f"deeper than {MAX_NESTING_DEPTH} levels"),
        (nested(490), f"deeper than {MAX_NESTING_DEPTH} levels"),
        (nested(5000), f"deeper than {MAX_NESTING_DEPTH} levels"),  # json.loads' RecursionError
    ],
    ids=[
        "nan",
        "infinity",
        "minus-infinity",
        "float-overflow",
        "id-above-bigint",
        "id-below-bigint",
        "int-digits",
        "depth-limit-plus-1",
        "depth-490",
        "depth-5000",
    ],
)
@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_never_storable_deliveries_get_400_with_the_reason_and_nothing_is_stored(
    client: TestClient,
    pg_conn: psycopg.Connection,
    caplog: pytest.LogCaptureFixture,
    text: str,
    reason: str,
    form: bool,
) -> None:
    caplog.set_level(logging.WARNING)
    delivery_id, response = post(client, text, form=form)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"delivery {delivery_id} can never be stored: "), detail
    assert reason in detail
    assert delivery_rows(pg_conn) == []
    counts = request_counts(client)
    assert counts.get("rejected_unstorable") == 1
    assert "store_errors" not in counts and "rejected_malformed" not in counts
    assert any(delivery_id in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize(
    ("text", "action", "repository"),
    [
        ('{"action": "open\\u0000ed", "repository": ' + REPO + "}", "opened", "octocat/Hello-World"),
        (
            '{"action": "opened", "repository": {"id": 1296269, "full_name": "octocat/Hello\\u0000-World"}}',
            "opened",
            "octocat/Hello-World",
        ),
        ('{"action": "open\\ud800ed", "repository": ' + REPO + "}", "open\ufffded", "octocat/Hello-World"),
        (
            '{"action": "opened", "repository": {"id": 1296269, "full_name": "octocat/\\udfffHello"}}',
            "opened",
            "octocat/\ufffdHello",
        ),
    ],
    ids=["nul-action", "nul-full-name", "surrogate-action", "surrogate-full-name"],
)
@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_nul_and_lone_surrogates_in_columns_are_stored_cleaned(
    client: TestClient, pg_conn: psycopg.Connection, text: str, action: str, repository: str, form: bool
) -> None:
    delivery_id, response = post(client, text, form=form)
    assert response.status_code == 202, response.text
    rows = delivery_rows(pg_conn)
    assert [(r[0], r[2], r[5], r[6]) for r in rows] == [(delivery_id, action, 1296269, repository)]
    stored = pg_conn.execute(
        "SELECT payload->>'action', payload->'repository'->>'full_name' FROM webhook_deliveries"
    ).fetchone()
    assert stored == (action, repository)
    assert "rejected_unstorable" not in request_counts(client)


def test_what_jsonb_can_hold_is_stored_as_sent(client: TestClient, pg_conn: psycopg.Connection) -> None:
    # jsonb numbers are arbitrary precision: only the bigint column limits repository.id.
    huge = 10**30
    text = (
        '{"action": "opened", "repository": {"id": ' + str(BIGINT_MAX) + ', "full_name": "o/r"}, '
        '"issue": {"number": ' + str(huge) + ', "score": 1.5e300}}'
    )
    _, at_limit = post(client, text)
    deepest_id, deepest = post(client, nested(MAX_NESTING_DEPTH), event="ping")
    assert (at_limit.status_code, deepest.status_code) == (202, 202), (at_limit.text, deepest.text)
    pg_conn.commit()
    row = pg_conn.execute(
        "SELECT repository_id, payload->'issue'->'number', (payload->'issue'->>'score')::float8 "
        "FROM webhook_deliveries WHERE event = 'issues'"
    ).fetchone()
    assert row == (BIGINT_MAX, huge, 1.5e300)
    payload = pg_conn.execute(
        "SELECT payload FROM webhook_deliveries WHERE delivery_id = %s", (deepest_id,)
    ).fetchone()
    assert payload is not None and payload[0]["zen"] == "x"
    assert "rejected_unstorable" not in request_counts(client)
