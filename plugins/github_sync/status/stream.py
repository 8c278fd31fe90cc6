"""Server-sent events for the dashboard: poll the run tables, diff, emit ``sync:*`` events.

The tasks write ``sync_runs`` / ``sync_repository_runs`` as they go; polling them about
once a second and diffing successive snapshots needs no cooperation from the tasks
(no LISTEN/NOTIFY trigger, no broker) and sees runs started from anywhere.

Events (``data`` is a :class:`~github_sync.status.responses.RunSnapshot` as JSON; ids
count up from 1 on each stream):

* ``sync:start``: a run is seen running for the first time on this stream;
* ``sync:progress``: a followed run's counts or current repositories changed;
* ``sync:complete``: a followed run finished with state ``success``;
* ``sync:error``: a followed run finished ``failed`` (or its row vanished: then the
  data is its last snapshot, failed, with an ``error``).

The stream opens with ``retry`` (EventSource's reconnection delay) and a comment; comment
lines (``: heartbeat <time>``) after ``heartbeat_s`` of silence keep idle connections open
through proxies. The events are :class:`fastapi.sse.ServerSentEvent` objects: FastAPI's
``EventSourceResponse`` frames them (and adds its own keep-alive ping after 15 s of
silence, which cannot be tuned per app, hence the configurable heartbeat here).
With an ``owner``, a stream only announces the runs that include that owner.

Must not: block the event loop (database calls run in a worker thread), or end on a
database error: the stream says so in a comment and reconnects on the next poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi.sse import ServerSentEvent

from github_sync.status.live_runs import RUN_RUNNING, RunKey, run_snapshots
from github_sync.status.responses import RunSnapshot, VanishedRunSnapshot

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

EVENT_START = "sync:start"
EVENT_PROGRESS = "sync:progress"
EVENT_COMPLETE = "sync:complete"
EVENT_ERROR = "sync:error"
EVENTS = (EVENT_START, EVENT_PROGRESS, EVENT_COMPLETE, EVENT_ERROR)

DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_HEARTBEAT_S = 15.0
# A stream ends after this long; EventSource reconnects after RECONNECT_MS, and that request
# is authorised again, so a user whose access to the sync DAGs was revoked stops receiving
# runs within this bound (access is checked when a request starts, not while it streams).
DEFAULT_MAX_DURATION_S = 300.0
# EventSource reconnects after this delay when the connection drops.
RECONNECT_MS = 3000
STREAM_OPENED_COMMENT = "github-sync status stream"
DATABASE_UNAVAILABLE_COMMENT = "database unavailable"
VANISHED_RUN_ERROR = "run no longer recorded"
RUN_SUCCEEDED = "success"
RUN_FAILED = "failed"
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
    """One ``sync:*`` event about one run."""

    event: str
    data: RunSnapshot

    def to_server_sent_event(self, event_id: int) -> ServerSentEvent:
        """The event as FastAPI frames it: ``id``, ``event`` and the snapshot as JSON ``data``."""
        return ServerSentEvent(id=str(event_id), event=self.event, data=self.data)


def _progressed(previous: RunSnapshot, current: RunSnapshot) -> bool:
    return any(getattr(previous, name) != getattr(current, name) for name in PROGRESS_FIELDS)


@dataclass
class RunTracker:
    """Remembers what a stream has announced, and turns new snapshots into events.

    Attributes:
        followed: runs announced with ``sync:start`` and not finished yet, by key.
        finished: runs already reported finished (never reported twice).
    """

    followed: dict[RunKey, RunSnapshot] = field(default_factory=dict)
    finished: set[RunKey] = field(default_factory=set)

    def update(self, snapshots: Mapping[RunKey, RunSnapshot]) -> list[SyncEvent]:
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
            elif snapshot.state == RUN_RUNNING and _progressed(previous, snapshot):
                events.append(SyncEvent(EVENT_PROGRESS, snapshot))
            if snapshot.state == RUN_RUNNING:
                self.followed[key] = snapshot
                continue
            if previous is not None and previous.done != snapshot.done:
                # The last repositories and the close landed within one poll: report the
                # final counts as progress first, so a progress bar reaches 100 %.
                events.append(SyncEvent(EVENT_PROGRESS, snapshot))
            kind = EVENT_COMPLETE if snapshot.state == RUN_SUCCEEDED else EVENT_ERROR
            events.append(SyncEvent(kind, snapshot))
            self.followed.pop(key, None)
            self.finished.add(key)
        for key in [k for k in self.followed if k not in snapshots]:
            # Only a deleted row disappears: followed runs are always queried.
            last = self.followed.pop(key)
            gone = VanishedRunSnapshot.model_validate(
                {**dict(last), "state": RUN_FAILED, "error": VANISHED_RUN_ERROR}
            )
            self.finished.add(key)
            events.append(SyncEvent(EVENT_ERROR, gone))
        return events


async def sync_events(
    connect: Callable[[], psycopg.Connection[Any]],
    *,
    is_disconnected: Callable[[], Awaitable[bool]],
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    heartbeat_s: float = DEFAULT_HEARTBEAT_S,
    clock: Callable[[], float] = time.monotonic,
    owner: str | None = None,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
) -> AsyncIterator[ServerSentEvent]:
    """The event stream of one client, until it disconnects or ``max_duration_s`` passes.

    Args:
        connect: opens a database connection (blocking; run in a worker thread).
        is_disconnected: tells whether the client went away.
        poll_interval_s: how often the tables are read.
        heartbeat_s: longest silence before a comment line is sent.
        clock: monotonic clock (tests).
        owner: only runs that include this GitHub owner (a validated login).
        max_duration_s: when the stream ends by itself (the client reconnects, re-authorised).

    Yields:
        The stream's events and comments, in order. Its connection is closed however
        the stream ends (the client leaving, or the task being cancelled).
    """
    tracker = RunTracker()
    conn: psycopg.Connection[Any] | None = None
    event_id = 0
    since: datetime | None = None
    try:
        yield ServerSentEvent(retry=RECONNECT_MS, comment=STREAM_OPENED_COMMENT)
        last_sent = clock()
        ends_at = last_sent + max_duration_s
        while clock() < ends_at and not await is_disconnected():
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
                yield ServerSentEvent(comment=DATABASE_UNAVAILABLE_COMMENT)
                last_sent = clock()
            else:
                since = now - FINISH_LOOKBACK
                for event in tracker.update(snapshots):
                    event_id += 1
                    yield event.to_server_sent_event(event_id)
                    last_sent = clock()
            if clock() - last_sent >= heartbeat_s:
                yield ServerSentEvent(comment=f"heartbeat {int(time.time())}")
                last_sent = clock()
            await asyncio.sleep(poll_interval_s)
    finally:
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("Closing the status stream's connection failed", exc_info=True)
        log.debug("Status stream closed after %d events", event_id)
