"""Server-sent events for the dashboard: poll the run tables, diff, emit ``sync:*`` events.

The tasks write ``sync_runs`` / ``sync_repository_runs`` as they go; polling them about
once a second and diffing successive snapshots needs no cooperation from the tasks
(no LISTEN/NOTIFY trigger, no broker) and sees runs started from anywhere.

Events (``data`` is a run snapshot, see :func:`github_sync.status.queries.run_snapshots`):

* ``sync:start``: a run is seen running for the first time on this stream;
* ``sync:progress``: a followed run's counts or current repositories changed;
* ``sync:complete``: a followed run finished with state ``success``;
* ``sync:error``: a followed run finished ``failed`` (or its row vanished).

Comment lines (``: heartbeat``) keep idle connections open through proxies. With an
``owner``, a stream only announces the runs that include that owner.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from github_sync.status.queries import RunKey, run_snapshots

log = logging.getLogger(__name__)

EVENT_START = "sync:start"
EVENT_PROGRESS = "sync:progress"
EVENT_COMPLETE = "sync:complete"
EVENT_ERROR = "sync:error"

DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_HEARTBEAT_S = 15.0
# EventSource reconnects after this delay when the connection drops.
RECONNECT_MS = 3000
# A run's finished_at is its closing transaction's start time, which can precede the
# previous poll when the commit lands after it; look back this far so no finish is missed.
FINISH_LOOKBACK = timedelta(seconds=30)
# Fields whose change is worth a sync:progress event (elapsed/ETA alone change every poll).
PROGRESS_FIELDS = (
    "total",
    "done",
    "running",
    "succeeded",
    "failed",
    "skipped",
    "deferred",
    "records",
    "requests",
    "current_repositories",
)


@dataclass(frozen=True)
class SyncEvent:
    """One server-sent event."""

    event: str
    data: Mapping[str, Any]


def format_event(event: SyncEvent, event_id: int) -> str:
    """Serialise an event in the ``text/event-stream`` format."""
    payload = json.dumps(event.data, default=str, separators=(",", ":"))
    return f"id: {event_id}\nevent: {event.event}\ndata: {payload}\n\n"


def format_comment(text: str) -> str:
    """A comment line: ignored by EventSource, keeps the connection alive."""
    return f": {text}\n\n"


@dataclass
class RunTracker:
    """Remembers what a stream has announced, and turns new snapshots into events.

    Attributes:
        followed: runs announced with ``sync:start`` and not finished yet, by key.
        finished: runs already reported finished (never reported twice).
    """

    followed: dict[RunKey, dict[str, Any]] = field(default_factory=dict)
    finished: set[RunKey] = field(default_factory=set)

    def update(self, snapshots: Mapping[RunKey, Mapping[str, Any]]) -> list[SyncEvent]:
        """The events that lead from the known state to ``snapshots``.

        Args:
            snapshots: the current snapshots: every running run, every followed run
                (whatever its state) and recently finished ones.

        Returns:
            Events in order: for one run always start, then progress, then complete/error.
        """
        events: list[SyncEvent] = []
        for key, snapshot in snapshots.items():
            if key in self.finished:
                continue
            previous = self.followed.get(key)
            if previous is None:
                events.append(SyncEvent(EVENT_START, snapshot))
            elif snapshot["state"] == "running" and any(
                previous.get(name) != snapshot.get(name) for name in PROGRESS_FIELDS
            ):
                events.append(SyncEvent(EVENT_PROGRESS, snapshot))
            if snapshot["state"] == "running":
                self.followed[key] = dict(snapshot)
                continue
            if previous is not None and previous.get("done") != snapshot.get("done"):
                # The last repositories and the close landed within one poll: report the
                # final counts as progress first, so a progress bar reaches 100 %.
                events.append(SyncEvent(EVENT_PROGRESS, snapshot))
            kind = EVENT_COMPLETE if snapshot["state"] == "success" else EVENT_ERROR
            events.append(SyncEvent(kind, snapshot))
            self.followed.pop(key, None)
            self.finished.add(key)
        for key in [k for k in self.followed if k not in snapshots]:
            # Only a deleted row disappears: followed runs are always queried.
            gone = {**self.followed.pop(key), "state": "failed", "error": "run no longer recorded"}
            self.finished.add(key)
            events.append(SyncEvent(EVENT_ERROR, gone))
        return events


async def sync_events(
    connect: Callable[[], Any],
    *,
    is_disconnected: Callable[[], Awaitable[bool]],
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    heartbeat_s: float = DEFAULT_HEARTBEAT_S,
    clock: Callable[[], float] = time.monotonic,
    on_close: Callable[[], None] | None = None,
    owner: str | None = None,
) -> AsyncIterator[str]:
    """The event stream of one client, until it disconnects.

    Args:
        connect: opens a database connection (blocking; run in a worker thread).
        is_disconnected: tells whether the client went away.
        poll_interval_s: how often the tables are read.
        heartbeat_s: longest silence before a comment line is sent.
        clock: monotonic clock (tests).
        on_close: called once when the stream ends, however it ends.
        owner: only runs that include this GitHub owner (a validated login).

    Yields:
        ``text/event-stream`` chunks.
    """
    tracker = RunTracker()
    conn: Any = None
    event_id = 0
    since: datetime | None = None
    try:
        yield f"retry: {RECONNECT_MS}\n" + format_comment("github-sync status stream")
        last_sent = clock()
        while not await is_disconnected():
            try:
                if conn is None or conn.closed:
                    conn = await asyncio.to_thread(connect)
                now, snapshots = await asyncio.to_thread(
                    run_snapshots, conn, tracked=list(tracker.followed), finished_since=since, owner=owner
                )
            except Exception:
                # The database may restart under a long-lived stream: say so in a comment
                # (the client keeps its last state) and reconnect on the next poll.
                log.warning("Status stream could not read the run tables", exc_info=True)
                if conn is not None:
                    await asyncio.to_thread(conn.close)
                conn = None
                yield format_comment("database unavailable")
                last_sent = clock()
            else:
                since = now - FINISH_LOOKBACK
                for event in tracker.update(snapshots):
                    event_id += 1
                    yield format_event(event, event_id)
                    last_sent = clock()
            if clock() - last_sent >= heartbeat_s:
                yield format_comment(f"heartbeat {int(time.time())}")
                last_sent = clock()
            await asyncio.sleep(poll_interval_s)
    finally:
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("Closing the status stream's connection failed", exc_info=True)
        if on_close is not None:
            on_close()
        log.debug("Status stream closed after %d events", event_id)
