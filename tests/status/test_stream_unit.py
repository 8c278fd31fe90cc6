"""The stream's diffing and formatting (pure), and its generator against a fake database."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from github_sync.status import stream
from github_sync.status.stream import RunTracker, SyncEvent, format_event, sync_events

KEY = ("github_full_sync", "manual__1")


def snap(state: str = "running", done: int = 0, total: int = 4, **extra: Any) -> dict[str, Any]:
    return {"dag_id": KEY[0], "run_id": KEY[1], "state": state, "done": done, "total": total, **extra}


def test_tracker_emits_start_progress_complete_once() -> None:
    tracker = RunTracker()
    assert [e.event for e in tracker.update({KEY: snap(done=0)})] == ["sync:start"]
    assert tracker.update({KEY: snap(done=0, elapsed_s=3)}) == []  # only the clock moved
    assert [e.event for e in tracker.update({KEY: snap(done=1)})] == ["sync:progress"]
    assert [e.event for e in tracker.update({KEY: snap(done=2, current_repositories=["a"])})] == [
        "sync:progress"
    ]
    events = tracker.update({KEY: snap(state="success", done=4)})
    assert [e.event for e in events] == ["sync:progress", "sync:complete"]
    assert events[-1].data["done"] == 4
    assert tracker.update({KEY: snap(state="success", done=4)}) == []  # never twice
    assert KEY not in tracker.followed


def test_tracker_reports_failed_runs_and_vanished_rows() -> None:
    tracker = RunTracker()
    tracker.update({KEY: snap()})
    assert [e.event for e in tracker.update({KEY: snap(state="failed", done=0)})] == ["sync:error"]
    other = ("github_full_sync", "manual__2")
    tracker.update({other: {**snap(), "run_id": other[1]}})
    events = tracker.update({})
    assert [e.event for e in events] == ["sync:error"] and events[0].data["error"] == "run no longer recorded"


def test_run_seen_only_after_it_finished_gets_start_and_complete() -> None:
    events = RunTracker().update({KEY: snap(state="success", done=4)})
    assert [e.event for e in events] == ["sync:start", "sync:complete"]


def test_format_event() -> None:
    text = format_event(SyncEvent("sync:start", {"a": 1}), 7)
    assert text == 'id: 7\nevent: sync:start\ndata: {"a":1}\n\n'


def test_generator_heartbeats_and_closes_on_disconnect(monkeypatch: Any) -> None:
    polls: list[int] = []
    snapshots = [{}, {KEY: snap()}, {KEY: snap(done=2)}, {KEY: snap(state="success", done=4)}]

    def fake_snapshots(conn: Any, **kwargs: Any) -> tuple[datetime, dict[Any, Any]]:
        polls.append(1)
        return datetime.now(UTC), snapshots[min(len(polls) - 1, len(snapshots) - 1)]

    class FakeConn:
        closed = False

        def close(self) -> None:
            self.closed = True

    conn = FakeConn()
    closed: list[bool] = []
    monkeypatch.setattr(stream, "run_snapshots", fake_snapshots)

    async def disconnected() -> bool:
        return len(polls) >= 6

    async def collect() -> list[str]:
        return [
            chunk
            async for chunk in sync_events(
                lambda: conn, is_disconnected=disconnected, poll_interval_s=0, heartbeat_s=0,
                on_close=lambda: closed.append(True),
            )
        ]  # fmt: skip

    chunks = asyncio.run(collect())
    events = [c.split("\n")[1].removeprefix("event: ") for c in chunks if c.startswith("id:")]
    # The last poll moved done 2 -> 4 and closed the run: progress first, so bars reach 100 %.
    assert events == ["sync:start", "sync:progress", "sync:progress", "sync:complete"]
    assert any(c.startswith(": heartbeat") for c in chunks)
    assert chunks[0].startswith("retry: ")
    assert conn.closed and closed == [True]
    data = json.loads(next(c for c in chunks if "sync:complete" in c).split("data: ")[1])
    assert data["done"] == 4


def test_generator_survives_a_database_outage(monkeypatch: Any) -> None:
    calls: list[int] = []

    def flaky(conn: Any, **kwargs: Any) -> tuple[datetime, dict[Any, Any]]:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("connection reset")
        return datetime.now(UTC), {KEY: snap()}

    class FakeConn:
        closed = False

        def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(stream, "run_snapshots", flaky)

    async def disconnected() -> bool:
        return len(calls) >= 2

    async def collect() -> list[str]:
        return [c async for c in sync_events(FakeConn, is_disconnected=disconnected, poll_interval_s=0)]

    chunks = asyncio.run(collect())
    assert any("database unavailable" in c for c in chunks)
    assert any("event: sync:start" in c for c in chunks)


def test_generator_filters_by_owner(monkeypatch: Any) -> None:
    seen: list[Any] = []

    def fake_snapshots(conn: Any, **kwargs: Any) -> tuple[datetime, dict[Any, Any]]:
        seen.append(kwargs.get("owner"))
        return datetime.now(UTC), {}

    class FakeConn:
        closed = False

        def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(stream, "run_snapshots", fake_snapshots)

    async def disconnected() -> bool:
        return len(seen) >= 2

    async def collect() -> list[str]:
        return [
            c
            async for c in sync_events(
                FakeConn, is_disconnected=disconnected, poll_interval_s=0, owner="octo"
            )
        ]

    asyncio.run(collect())
    assert seen == ["octo", "octo"]
