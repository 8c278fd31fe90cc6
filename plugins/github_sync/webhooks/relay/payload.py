"""A verified delivery's body: decoded (JSON or GitHub's form encoding) and made into the row to store.

Pure functions. Owns what a delivery body may be and which of its fields go into the row's
columns. Must not: log, touch the database, or look at headers other than those passed in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from github_sync.transform.normalizer import clean_text
from github_sync.webhooks.apply import SUPPORTED_EVENTS
from github_sync.webhooks.relay.store import STATUS_IGNORED, STATUS_PENDING, IncomingDelivery

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# The deepest nesting of objects and arrays a delivery may have (the top-level object is 1).
# GitHub's own structures are shallow (the deepest sample, pull_request synchronize, has 5
# levels), but some events carry JSON their senders wrote (repository_dispatch's
# client_payload, deployment's payload), so the limit is generous: 256 stays well below where
# the tools behind the relay give out: Python's json module raises RecursionError at about 1,000 levels, and PostgreSQL's
# jsonb parser is bounded only by max_stack_depth (tens of thousands of levels at the default
# 2 MB: 10,000 parsed, 50,000 failed with "stack depth limit exceeded" on PostgreSQL 15).
MAX_NESTING_DEPTH = 256
# repository.id goes into a bigint column (jsonb itself holds integers of any size).
BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1
# How much of an offending number a reason quotes (an integer may have thousands of digits).
MAX_QUOTED_NUMBER_CHARS = 40


class UnstorableDeliveryError(ValueError):
    """A correctly signed delivery that can never be stored as it is; the message says why.

    Redelivering it cannot help, so the relay answers 400 (not 503) and counts it apart from outages.
    """


def _quoted(number: str) -> str:
    if len(number) <= MAX_QUOTED_NUMBER_CHARS:
        return number
    return f"{number[:MAX_QUOTED_NUMBER_CHARS]}... ({len(number)} characters)"


def _reject_constant(token: str) -> Any:
    # json.loads accepts these non-standard literals; jsonb (like RFC 8259) has no NaN or Infinity.
    raise UnstorableDeliveryError(f"JSON literal {token} cannot be stored (jsonb has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    # 1e400 parses as inf, which json.dumps would write as the Infinity jsonb refuses.
    value = float(text)
    if not math.isfinite(value):
        raise UnstorableDeliveryError(f"number {_quoted(text)} is out of the range of a double")
    return value


def _bounded_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        # Python refuses integers past sys.get_int_max_str_digits() (4,300 digits by default).
        raise UnstorableDeliveryError(f"integer {_quoted(text)} has too many digits") from None


def _storable(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` that ``jsonb`` accepts, made without recursion.

    jsonb rejects NUL characters and lone surrogates, both possible in GitHub text fields
    (keys included): they are cleaned with :func:`clean_text`.

    Raises:
        UnstorableDeliveryError: Objects and arrays nest deeper than ``MAX_NESTING_DEPTH``.
    """
    root: dict[str, Any] = {}
    # (source container, its copy, its depth); a copy is filled when its entry is popped.
    stack: list[tuple[Any, Any, int]] = [(payload, root, 1)]
    while stack:
        source, target, depth = stack.pop()
        if depth > MAX_NESTING_DEPTH:
            raise UnstorableDeliveryError(f"objects and arrays nest deeper than {MAX_NESTING_DEPTH} levels")
        items: Iterable[tuple[Any, Any]] = (
            source.items() if isinstance(source, Mapping) else enumerate(source)
        )
        for key, value in items:
            child: Any
            if isinstance(value, Mapping):
                child = {}
                stack.append((value, child, depth + 1))
            elif isinstance(value, list):
                child = []
                stack.append((value, child, depth + 1))
            elif isinstance(value, str):
                child = clean_text(value)
            else:
                child = value
            if isinstance(target, dict):
                target[clean_text(key)] = child
            else:
                target.append(child)
    return root


def parse_payload(body: bytes, content_type: str | None) -> dict[str, Any]:
    """Decode a delivery body (``application/json`` or GitHub's form encoding) into an object.

    Raises:
        UnstorableDeliveryError: The body is JSON that ``jsonb`` can never hold (NaN or
            Infinity, a number out of range, nesting too deep for the parser); the message says why.
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
        payload = json.loads(
            text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int
        )
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        # json's scanner recurses per level; MAX_NESTING_DEPTH (checked later) is far below this.
        raise UnstorableDeliveryError(
            f"objects and arrays nest deeper than {MAX_NESTING_DEPTH} levels"
        ) from None
    if not isinstance(payload, dict):
        raise ValueError("body must be a JSON object")
    return payload


def build_delivery(
    *,
    delivery_id: str,
    event: str,
    hook_id: str | None,
    payload: Mapping[str, Any],
    hook_target_type: str | None = None,
) -> IncomingDelivery:
    """The row to store for a verified delivery (status ``ignored`` for unsupported events).

    The columns are read from the cleaned payload, so an ``action`` or ``full_name`` with a
    NUL or a lone surrogate is stored cleaned, like the payload, instead of being refused.

    Raises:
        UnstorableDeliveryError: The payload nests deeper than ``MAX_NESTING_DEPTH``, or its
            ``repository.id`` is outside PostgreSQL's bigint.
    """
    storable = _storable(payload)
    repo = storable.get("repository")
    repo = repo if isinstance(repo, dict) else {}
    repo_id = repo.get("id")
    if not isinstance(repo_id, int) or isinstance(repo_id, bool):
        repo_id = None
    elif not BIGINT_MIN <= repo_id <= BIGINT_MAX:
        raise UnstorableDeliveryError(
            f"repository.id {_quoted(str(repo_id))} is outside PostgreSQL's bigint range"
        )
    action = storable.get("action")
    full_name = repo.get("full_name")
    return IncomingDelivery(
        delivery_id=delivery_id,
        event=event,
        action=action if isinstance(action, str) else None,
        hook_id=hook_id,
        hook_target_type=hook_target_type,
        repository_id=repo_id,
        repository=full_name if isinstance(full_name, str) else None,
        payload=storable,
        status=STATUS_PENDING if event in SUPPORTED_EVENTS else STATUS_IGNORED,
    )
