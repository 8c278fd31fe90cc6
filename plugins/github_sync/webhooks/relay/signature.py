"""``X-Hub-Signature-256`` verification (HMAC-SHA256 of the raw request body).

Only the SHA-256 header is accepted: the legacy ``X-Hub-Signature`` (SHA-1) is weaker and
GitHub sends both, so a request carrying only ``sha1=`` is rejected. The comparison is
constant-time so that response timing reveals nothing about the expected digest.

Pure functions; must not log, and must not put the secret or the expected digest in an error.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="
# A SHA-256 digest is 32 bytes: 64 hex characters.
DIGEST_HEX_LENGTH = 64


class SignatureError(ValueError):
    """The signature is missing, malformed or wrong; the message says which, never the expected value."""


def compute_signature(secret: str | bytes, body: bytes) -> str:
    """Return the ``X-Hub-Signature-256`` value GitHub sends for ``body``.

    Args:
        secret: The webhook secret (text is UTF-8 encoded, as GitHub does).
        body: The raw request body.

    Returns:
        ``"sha256=<hex digest>"``.
    """
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return SIGNATURE_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> None:
    """Check a delivery's ``X-Hub-Signature-256`` header against ``body``.

    Args:
        secret: The webhook secret.
        body: The raw request body, exactly as received.
        header: The header's value, or None when absent.

    Raises:
        SignatureError: The header is absent, not ``sha256=<64 hex>``, or does not match.
    """
    if header is None or not header.strip():
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    value = header.strip()
    if not value.startswith(SIGNATURE_PREFIX):
        raise SignatureError(f"{SIGNATURE_HEADER} must start with {SIGNATURE_PREFIX!r}")
    digest = value[len(SIGNATURE_PREFIX) :]
    if len(digest) != DIGEST_HEX_LENGTH:
        raise SignatureError(f"{SIGNATURE_HEADER} must carry a {DIGEST_HEX_LENGTH}-character hex digest")
    expected = compute_signature(secret, body)
    # Both sides are ASCII of equal length here; compare_digest is constant-time for them.
    if not hmac.compare_digest(expected.encode("ascii"), value.lower().encode("ascii", "replace")):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")
