"""Unit tests of the relay's body decoding and row building (``relay/payload.py``): pure functions."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from github_sync.webhooks.relay.payload import (
    BIGINT_MAX,
    BIGINT_MIN,
    FORM_CONTENT_TYPE,
    MAX_NESTING_DEPTH,
    UnstorableDeliveryError,
    build_delivery,
    parse_payload,
)

JSON = "application/json"


def nested_list(depth: int) -> dict[str, Any]:
    """An object whose nesting is ``depth`` levels (itself included), built without recursion."""
    inner: list[Any] = []
    for _ in range(depth - 2):
        inner = [inner]
    return {"deep": inner}


def build(payload: dict[str, Any]) -> Any:
    return build_delivery(delivery_id="d-1", event="issues", hook_id="1", payload=payload)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("content_type", [JSON, FORM_CONTENT_TYPE])
def test_nan_and_infinity_are_unstorable_and_named(token: str, content_type: str) -> None:
    text = '{"a": [1, ' + token + "]}"
    body = urlencode({"payload": text}).encode() if content_type == FORM_CONTENT_TYPE else text.encode()
    with pytest.raises(UnstorableDeliveryError, match=f"JSON literal {token} "):
        parse_payload(body, content_type)


def test_float_overflow_is_unstorable_but_big_floats_parse() -> None:
    with pytest.raises(UnstorableDeliveryError, match="1e400"):
        parse_payload(b'{"a": 1e400}', JSON)
    assert parse_payload(b'{"a": 1.5e300, "b": -2.5}', JSON) == {"a": 1.5e300, "b": -2.5}


def test_integers_beyond_pythons_digit_limit_are_unstorable_and_quoted_short() -> None:
    with pytest.raises(UnstorableDeliveryError, match=r"has too many digits") as caught:
        parse_payload(b'{"a": ' + b"7" * 10_000 + b"}", JSON)
    assert "(10000 characters)" in str(caught.value) and len(str(caught.value)) < 200


def test_json_deeper_than_pythons_parser_is_unstorable() -> None:
    depth = 100_000
    with pytest.raises(UnstorableDeliveryError, match=f"deeper than {MAX_NESTING_DEPTH}"):
        parse_payload(b'{"a": ' + b"[" * depth + b"]" * depth + b"}", JSON)


def test_malformed_bodies_stay_plain_value_errors() -> None:
    for body, content_type in [(b'{"a": ', JSON), (b"[1]", JSON), (b"zen=x", FORM_CONTENT_TYPE)]:
        with pytest.raises(ValueError) as caught:
            parse_payload(body, content_type)
        assert not isinstance(caught.value, UnstorableDeliveryError)


def test_nesting_up_to_the_limit_is_built_and_one_more_level_is_not() -> None:
    deepest = nested_list(MAX_NESTING_DEPTH)
    assert build(deepest).payload == deepest
    with pytest.raises(UnstorableDeliveryError, match=f"deeper than {MAX_NESTING_DEPTH} levels"):
        build(nested_list(MAX_NESTING_DEPTH + 1))
    # Deeper than Python's recursion limit: the walk is iterative, so the answer is the same.
    with pytest.raises(UnstorableDeliveryError, match=f"deeper than {MAX_NESTING_DEPTH} levels"):
        build(nested_list(50_000))


@pytest.mark.parametrize("repo_id", [BIGINT_MAX + 1, BIGINT_MIN - 1, 10**30])
def test_repository_id_outside_bigint_is_unstorable(repo_id: int) -> None:
    with pytest.raises(UnstorableDeliveryError, match=f"repository.id {repo_id} is outside"):
        build({"repository": {"id": repo_id, "full_name": "o/r"}})


@pytest.mark.parametrize("repo_id", [BIGINT_MAX, BIGINT_MIN, 1])
def test_repository_id_inside_bigint_goes_to_the_column(repo_id: int) -> None:
    assert build({"repository": {"id": repo_id}}).repository_id == repo_id


def test_non_integer_repository_ids_are_left_out() -> None:
    for repo_id in [True, "12", 1.0, None]:
        assert build({"repository": {"id": repo_id}}).repository_id is None


def test_big_integers_elsewhere_are_kept_exactly() -> None:
    payload = parse_payload(json.dumps({"issue": {"number": 10**30}}).encode(), JSON)
    assert build(payload).payload == {"issue": {"number": 10**30}}


def test_columns_and_payload_come_out_cleaned_in_order() -> None:
    raw = parse_payload(
        b'{"action": "op\\u0000en\\ud800", "z\\u0000": 1, "repository": '
        b'{"id": 5, "full_name": "o/\\udc00r\\u0000", "topics": ["a\\u0000", {"k\\ud800": "v"}]}}',
        JSON,
    )
    delivery = build(raw)
    assert (delivery.action, delivery.repository, delivery.repository_id) == ("open\ufffd", "o/\ufffdr", 5)
    assert delivery.payload == {
        "action": "open\ufffd",
        "z": 1,
        "repository": {"id": 5, "full_name": "o/\ufffdr", "topics": ["a", {"k\ufffd": "v"}]},
    }
    assert list(delivery.payload) == ["action", "z", "repository"]
    assert list(delivery.payload["repository"]) == ["id", "full_name", "topics"]
