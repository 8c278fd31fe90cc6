"""X-Hub-Signature-256 verification, including GitHub's own test vector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from github_sync.webhooks.relay.signature import SignatureError, compute_signature, verify_signature


@pytest.fixture(scope="module")
def vector(github_samples: Path) -> dict[str, str]:
    return json.loads((github_samples / "webhook_signature_test_vector.json").read_text())


def test_github_test_vector_passes(vector: dict[str, str]) -> None:
    body = vector["payload"].encode()
    assert compute_signature(vector["secret"], body) == vector["x_hub_signature_256"]
    verify_signature(vector["secret"], body, vector["x_hub_signature_256"])


@pytest.mark.parametrize(
    ("case", "secret", "body", "header", "reason"),
    [
        ("wrong secret", "not the secret", None, None, "does not match"),
        ("tampered body", None, b"Hello, World?", None, "does not match"),
        ("missing header", None, None, "", "missing"),
        ("sha1 only", None, None, "sha1=0a4d55a8d778e5022fab701977c5d840bbc486d0", "must start with"),
        ("truncated digest", None, None, "sha256=757107ea0e", "64-character"),
    ],
)
def test_rejections(
    vector: dict[str, str], case: str, secret: str | None, body: bytes | None, header: str | None, reason: str
) -> None:
    signed_body = vector["payload"].encode()
    if header is None:
        header = compute_signature(secret or vector["secret"], signed_body)
    with pytest.raises(SignatureError, match=reason) as caught:
        verify_signature(vector["secret"], body if body is not None else signed_body, header or None)
    assert vector["secret"] not in str(caught.value), case
    assert vector["signature_hex"] not in str(caught.value), "the expected digest must never be revealed"
