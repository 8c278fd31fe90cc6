"""Retention of the sync's own state: old cached responses and old webhook deliveries.

Run by the weekly full sync's summary. This module owns what is old enough to drop; it must not
prune anything the dashboard reads, and must not commit (the caller does).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import psycopg

log = logging.getLogger(__name__)

# A cached response not refreshed for this long is dropped; the next request for its URL
# costs one request and stores it again. Delivered webhooks are kept as long for audits.
DEFAULT_KEEP_DAYS = 30


def prune(
    cursor: psycopg.Cursor[Any], *, now: datetime, keep_days: int = DEFAULT_KEEP_DAYS
) -> dict[str, int]:
    """Delete cache entries and finished webhook deliveries older than ``keep_days``; return counts."""
    cutoff = now - timedelta(days=keep_days)
    cursor.execute("DELETE FROM github_http_cache WHERE stored_at < %s", (cutoff,))
    cache = max(cursor.rowcount, 0)
    cursor.execute(
        "DELETE FROM webhook_deliveries WHERE status IN ('processed', 'ignored') AND received_at < %s",
        (cutoff,),
    )
    deliveries = max(cursor.rowcount, 0)
    if cache or deliveries:
        log.info("Pruned %d cached responses and %d webhook deliveries older than %d days", cache, deliveries,
                 keep_days)  # fmt: skip
    return {"http_cache": cache, "webhook_deliveries": deliveries}
