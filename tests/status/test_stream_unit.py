"""The stream's diffing and event framing (pure), and its generator against a fake database."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from fastapi.sse import ServerSentEvent, format_sse_event

from github_sync.status import stream
from github_sync.status.responses import RunSnapshot
from github_sync.status.stream import RECONNECT_MS, RunTracker, SyncEvent, sync_events

KEY = ("github_full_sync", "manual__1")
STARTED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def snap(state: str = "running", done: int = 0, total: int = 4, **extra: Any) -> RunSnapshot:
    """A run's snapshot: what ``run_snapshots`` returns, with only the figures a test cares about set."""
    fields: dict[str, Any] = {
        "dag_id": KEY[0], "run_id": KEY[1], "mode": "full", "owner": "acme", "owners": ["acme"],
        "state": state, "started_at": STARTED, "finished_at": None if state == "running" else STARTED,
        "succeeded": 0, "failed": 0, "skipped": 0, "deferred": 0, "records": 0, "requests": 0,
        "budget_spent": 0, "not_modified": 0, "current_repositories": [], "failed_repositories": [],
        "total": total, "done": done, "running": 0, "percent": None, "elapsed_s": 0.0,
        "rate_per_min": None, "eta_s": None, "grid_path": "/dags/github_full_sync/runs/manual__1",
    }  # fmt: skip
    return RunSnapshot.model_validate({**fields, **extra})


class FakeConn:
    closed = False

    def close(self) -> None:
        self.closed = True


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
    assert events[-1].data.done == 4
    assert tracker.update({KEY: snap(state="success", done=4)}) == []  # never twice
    assert KEY not in tracker.followed


def test_tracker_reports_failed_runs_and_vanished_rows() -> None:
    tracker = RunTracker()
    tracker.update({KEY: snap()})
    assert [e.event for e in tracker.update({KEY: snap(state="failed", done=0)})] == ["sync:error"]
    other = ("github_full_sync", "manual__2")
    tracker.update({other: snap(run_id=other[1], done=1)})
    events = tracker.update({})
    assert [e.event for e in events] == ["sync:error"]
    gone = events[0].data.model_dump(mode="json")
    # The last snapshot, failed, with why: the figures the client had are kept.
    assert gone == {**snap(run_id=other[1], done=1).model_dump(mode="json"), "state": "failed",
                    "error": "run no longer recorded"}  # fmt: skip


def test_run_seen_only_after_it_finished_gets_start_and_complete() -> None:
    events = RunTracker().update({KEY: snap(state="success", done=4)})
    assert [e.event for e in events] == ["sync:start", "sync:complete"]


def test_an_event_is_framed_with_its_id_name_and_snapshot() -> None:
    snapshot = snap(done=2)
    event = SyncEvent("sync:start", snapshot).to_server_sent_event(7)
    assert (event.id, event.event, event.data) == ("7", "sync:start", snapshot)
    # On the wire, as FastAPI's EventSourceResponse writes it: the snapshot's JSON, with
    # timestamps in isoformat, on one data line.
    wire = format_sse_event(data_str=snapshot.model_dump_json(), event=event.event, id=event.id).decode()
    lines = wire.split("\n")
    assert lines[0] == "event: sync:start" and lines[2] == "id: 7" and wire.endswith("\n\n")
    data = json.loads(lines[1].removeprefix("data: "))
    assert data["done"] == 2 and data["started_at"] == STARTED.isoformat()


def test_generator_heartbeats_and_closes_on_disconnect(monkeypatch: Any) -> None:
    polls: list[int] = []
    snapshots = [{}, {KEY: snap()}, {KEY: snap(done=2)}, {KEY: snap(state="success", done=4)}]

    def fake_snapshots(conn: Any, **kwargs: Any) -> tuple[datetime, dict[Any, Any]]:
        polls.append(1)
        return datetime.now(UTC), snapshots[min(len(polls) - 1, len(snapshots) - 1)]

    conn = FakeConn()
    monkeypatch.setattr(stream, "run_snapshots", fake_snapshots)

    async def disconnected() -> bool:
        return len(polls) >= 6

    async def collect() -> list[ServerSentEvent]:
        return [
            event
            async for event in sync_events(
                lambda: conn,
                is_disconnected=disconnected, poll_interval_s=0, heartbeat_s=0,
            )
        ]  # fmt: skip

    sent = asyncio.run(collect())
    events = [e for e in sent if e.event is not None]
    # The last poll moved done 2 -> 4 and closed the run: progress first, so bars reach 100 %.
    assert [e.event for e in events] == ["sync:start", "sync:progress", "sync:progress", "sync:complete"]
    assert [e.id for e in events] == ["1", "2", "3", "4"]
    assert any((e.comment or "").startswith("heartbeat ") for e in sent)
    assert sent[0].retry == RECONNECT_MS and sent[0].comment
    assert conn.closed
    assert events[-1].data.done == 4


def test_generator_survives_a_database_outage(monkeypatch: Any) -> None:
    calls: list[int] = []

    def flaky(conn: Any, **kwargs: Any) -> tuple[datetime, dict[Any, Any]]:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("connection reset")
        return datetime.now(UTC), {KEY: snap()}

    monkeypatch.setattr(stream, "run_snapshots", flaky)

    async def disconnected() -> bool:
        return len(calls) >= 2

    async def collect() -> list[ServerSentEvent]:
        return [e async for e in sync_events(FakeConn, is_disconnected=disconnected, poll_interval_s=0)]

    sent = asyncio.run(collect())
    assert any(e.comment == "database unavailable" for e in sent)
    assert any(e.event == "sync:start" for e in sent)


def test_generator_filters_by_owner(monkeypatch: Any) -> None:
    seen: list[Any] = []

    def fake_snapshots(conn: Any, **kwargs: Any) -> tuple[datetime, dict[Any, Any]]:
        seen.append(kwargs.get("owner"))
        return datetime.now(UTC), {}

    monkeypatch.setattr(stream, "run_snapshots", fake_snapshots)

    async def disconnected() -> bool:
        return len(seen) >= 2

    async def collect() -> list[ServerSentEvent]:
        return [
            e
            async for e in sync_events(
                FakeConn, is_disconnected=disconnected, poll_interval_s=0, owner="octo"
            )
        ]

    asyncio.run(collect())
    assert seen == ["octo", "octo"]


def test_a_stream_ends_by_itself_so_that_the_reconnection_is_authorised_again(monkeypatch: Any) -> None:
    # Access is checked when a request starts: a stream that never ended would keep showing
    # runs to a user whose access was revoked. After max_duration_s it ends; EventSource
    # reconnects (after the announced retry) and that request goes through the auth check.
    now = [0.0]
    monkeypatch.setattr(stream, "run_snapshots", lambda *a, **k: (datetime.now(UTC), {}))

    async def never_disconnected() -> bool:
        now[0] += 1.0  # each poll is a second later
        return now[0] > 60  # the client would stay for ever; 60 s only ends a broken test

    async def collect() -> list[ServerSentEvent]:
        return [
            e
            async for e in sync_events(
                FakeConn, is_disconnected=never_disconnected, poll_interval_s=0, clock=lambda: now[0],
                max_duration_s=5,
            )
        ]  # fmt: skip

    sent = asyncio.run(collect())
    assert sent[0].retry == RECONNECT_MS
    assert 5 <= now[0] <= 7, "ended after about max_duration_s, by itself"
