"""``X-Hub-Signature-256`` verification (HMAC-SHA256 of the raw request body).

Only the SHA-256 header is accepted: the legacy ``X-Hub-Signature`` (SHA-1) is weaker and
GitHub sends both, so a request carrying only ``sha1=`` is rejected. The comparison is
constant-time so that response timing reveals nothing about the expected digest.

The check is split in two so that the relay can refuse a request before reading its body:
:class:`SignatureCheck` validates the header's form at once, then takes the body chunk by
chunk as it streams in (so no body has to be held in memory to be verified) and compares
at the end.

Pure functions and objects; must not log, and must not put the secret or the expected
digest in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import string

SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="
# A SHA-256 digest is 32 bytes: 64 hex characters.
DIGEST_HEX_LENGTH = 64
_HEX_DIGITS = frozenset(string.hexdigits)


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
    return SIGNATURE_PREFIX + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


class SignatureCheck:
    """One request's signature check: the header's form now, the body as it streams.

    Example:
        >>> check = SignatureCheck(secret, request.headers.get(SIGNATURE_HEADER))  # may raise
        >>> for chunk in body_chunks:
        ...     check.update(chunk)
        >>> check.verify()  # raises SignatureError when the body does not match
    """

    def __init__(self, secret: str | bytes, header: str | None) -> None:
        """Validate the header's form (before any of the body is read).

        Args:
            secret: The webhook secret.
            header: The ``X-Hub-Signature-256`` value, or None when absent.

        Raises:
            SignatureError: The header is absent or not ``sha256=<64 hex digits>``.
        """
        if header is None or not header.strip():
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        value = header.strip()
        if not value.startswith(SIGNATURE_PREFIX):
            raise SignatureError(f"{SIGNATURE_HEADER} must start with {SIGNATURE_PREFIX!r}")
        digest = value[len(SIGNATURE_PREFIX) :]
        if len(digest) != DIGEST_HEX_LENGTH or not _HEX_DIGITS.issuperset(digest):
            raise SignatureError(f"{SIGNATURE_HEADER} must carry a {DIGEST_HEX_LENGTH}-character hex digest")
        self._claimed = digest.lower().encode("ascii")
        self._mac = hmac.new(_key(secret), digestmod=hashlib.sha256)

    def update(self, chunk: bytes) -> None:
        """Add the next piece of the raw body."""
        self._mac.update(chunk)

    def verify(self) -> None:
        """Compare the body read so far with the header.

        Raises:
            SignatureError: The body does not match the signature.
        """
        expected = self._mac.hexdigest().encode("ascii")
        # Both sides are ASCII hex of equal length; compare_digest is constant-time for them.
        if not hmac.compare_digest(expected, self._claimed):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> None:
    """Check a delivery's ``X-Hub-Signature-256`` header against a whole ``body``.

    Args:
        secret: The webhook secret.
        body: The raw request body, exactly as received.
        header: The header's value, or None when absent.

    Raises:
        SignatureError: The header is absent, not ``sha256=<64 hex>``, or does not match.
    """
    check = SignatureCheck(secret, header)
    check.update(body)
    check.verify()
