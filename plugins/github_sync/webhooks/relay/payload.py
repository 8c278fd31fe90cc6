"""A verified delivery's body: decoded (JSON or GitHub's form encoding) and made into the row to store.

Pure functions. Owns what a delivery body may be and which of its fields go into the row's
columns. Must not: log, touch the database, or look at headers other than those passed in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from github_sync.transform.normalizer import clean_text
from github_sync.webhooks.apply import SUPPORTED_EVENTS
from github_sync.webhooks.relay.store import STATUS_IGNORED, STATUS_PENDING, IncomingDelivery

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class UnstorableDeliveryError(ValueError):
    """A correctly signed delivery that can never be stored as it is; the message says why.

    Redelivering it cannot help, so the relay answers 400 (not 503) and counts it apart from outages.
    """


def _storable(value: Any) -> Any:
    # jsonb rejects NUL characters and lone surrogates, both possible in GitHub text fields.
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k): _storable(v) for k, v in value.items()}
    return value


def parse_payload(body: bytes, content_type: str | None) -> dict[str, Any]:
    """Decode a delivery body (``application/json`` or GitHub's form encoding) into an object.

    Raises:
        ValueError: The body is not a JSON object; the message says why.
    """
    if content_type and content_type.split(";")[0].strip().lower() == FORM_CONTENT_TYPE:
        fields = parse_qs(body.decode("utf-8", errors="strict"), keep_blank_values=True)
        if "payload" not in fields:
            raise ValueError("form-encoded delivery without a 'payload' field")
        text = fields["payload"][0]
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("body is not UTF-8") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(payload, dict):
        raise ValueError("body must be a JSON object")
    return payload


def build_delivery(
    *, delivery_id: str, event: str, hook_id: str | None, payload: Mapping[str, Any]
) -> IncomingDelivery:
    """The row to store for a verified delivery (status ``ignored`` for unsupported events)."""
    repo = payload.get("repository")
    repo = repo if isinstance(repo, Mapping) else {}
    repo_id = repo.get("id")
    action = payload.get("action")
    return IncomingDelivery(
        delivery_id=delivery_id,
        event=event,
        action=action if isinstance(action, str) else None,
        hook_id=hook_id,
        repository_id=int(repo_id) if isinstance(repo_id, int) and not isinstance(repo_id, bool) else None,
        repository=repo.get("full_name") if isinstance(repo.get("full_name"), str) else None,
        payload=_storable(dict(payload)),
        status=STATUS_PENDING if event in SUPPORTED_EVENTS else STATUS_IGNORED,
    )
