"""Reading a delivery's body: streamed through the signature check, bounded in size, time and memory.

The body is never buffered whole before it is known to be signed: each chunk goes into the
HMAC and into a spool that stays in memory up to :data:`SPOOL_MEMORY_BYTES` and moves to a
temporary file past that, so twenty 25 MB posts cost a few megabytes of memory, not 500.
Only once the signature matches is the body read back (a signed body comes from GitHub, and
GitHub's payloads are capped at 25 MB).

Owns the read loop and its limits. Must not: decide what the answer is (the app maps the
exceptions to 401, 408 and 413) or parse the body.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator

from github_sync.webhooks.relay.signature import SignatureCheck

# Past this, a body in flight is spooled to a temporary file instead of memory.
SPOOL_MEMORY_BYTES = 1024 * 1024


class BodyTooLargeError(ValueError):
    """More bytes arrived than the cap allows (a chunked or lying client)."""


class BodyTimeoutError(TimeoutError):
    """The body did not arrive within its deadline (a slow or stalled client)."""


async def read_signed_body(
    chunks: AsyncIterator[bytes], check: SignatureCheck, *, limit: int, deadline_seconds: float
) -> bytes:
    """Read a request body through ``check`` and return it once its signature matches.

    Args:
        chunks: The body as it arrives (Starlette's ``request.stream()``).
        check: The request's signature check (its header already validated).
        limit: The most bytes accepted.
        deadline_seconds: How long the whole body may take to arrive.

    Returns:
        The body.

    Raises:
        BodyTooLargeError: More than ``limit`` bytes arrived (reading stops there).
        BodyTimeoutError: The body was not complete within ``deadline_seconds``.
        SignatureError: The body does not match the signature.
    """
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
        size = 0
        try:
            async with asyncio.timeout(deadline_seconds):
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLargeError(f"body exceeds {limit} bytes")
                    check.update(chunk)
                    spool.write(chunk)
        except TimeoutError:
            raise BodyTimeoutError(f"body not received within {deadline_seconds:g} s") from None
        check.verify()
        spool.seek(0)
        return spool.read()
