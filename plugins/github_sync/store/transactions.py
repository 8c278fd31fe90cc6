"""The unit of work on the target database: one transaction, committed whole or rolled back whole.

Owns how a caller's psycopg connection is used for one unit (a repository, a discovery, the
carried-forward metrics of a run): a cursor for the unit, one commit at its end, and a rollback
that never hides the error that caused it. It must not open or close connections (the caller
owns them) or know what the unit writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

__all__ = ["rollback_quietly", "unit_of_work"]

log = logging.getLogger(__name__)


@contextmanager
def unit_of_work(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Cursor[Any]]:
    """A cursor whose writes are committed when the block ends, and rolled back if it raises.

    Any exception (``BaseException``: a task killed by a signal too) rolls back and is re-raised.
    """
    try:
        with conn.cursor() as cursor:
            yield cursor
        conn.commit()
    except BaseException:
        rollback_quietly(conn)
        raise


def rollback_quietly(conn: psycopg.Connection[Any]) -> None:
    """Roll back, logging (not raising) a failure, so the error that made us roll back is the one raised."""
    try:
        conn.rollback()
    except Exception:  # a broken connection cannot roll back; the original error matters more
        log.exception("rollback failed")
