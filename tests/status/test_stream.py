"""GET /github-sync/stream over real HTTP while ``dag.test()`` runs github_full_sync.

Airflow's api-server app (with the plugin) is served by uvicorn in a thread; a second
thread consumes the event stream; the main thread runs the DAG against a small simulator
and the test PostgreSQL, exactly as the tasks would in production.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import psycopg
import pytest

from github_sim import Simulator, SimulatorConfig
from github_sync.status.stream import RECONNECT_MS
from tests.dags.conftest import connect_airflow_to
from tests.polling import wait_until
from tests.status.seed import clear_run_tables

STREAM_OPEN_TIMEOUT_S = 15
STREAM_CLOSE_TIMEOUT_S = 10
# Enough latency that the 12 repositories take several poll intervals.
SIMULATOR_LATENCY_MS = 40


class StreamConsumer(threading.Thread):
    """Reads server-sent events into a list until told to stop or a run finishes."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(name="sse-consumer", daemon=True)
        self.url = url
        self.token = token
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.ids: list[int] = []
        self.retries: list[int] = []
        self.comments: list[str] = []
        self.headers: httpx.Headers | None = None
        self.opened = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
            with (
                httpx.Client(timeout=httpx.Timeout(60.0)) as client,
                client.stream("GET", self.url, headers=headers) as response,
            ):
                response.raise_for_status()
                self.headers = response.headers
                event, data = None, None
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.comments.append(line)
                        self.opened.set()
                    elif line.startswith("retry: "):
                        self.retries.append(int(line.removeprefix("retry: ")))
                    elif line.startswith("id: "):
                        self.ids.append(int(line.removeprefix("id: ")))
                    elif line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        data = json.loads(line.removeprefix("data: "))
                    elif line == "" and event is not None:
                        self.events.append((event, data or {}))
                        if event in ("sync:complete", "sync:error"):
                            return  # leaving the block closes the connection: the client goes away
                        event, data = None, None
        except BaseException as exc:
            self.error = exc
            self.opened.set()


def test_stream_follows_a_dag_test_run(
    served_app: str,
    admin_token: str,
    dagbag: Any,
    monkeypatch: pytest.MonkeyPatch,
    pg_conn: psycopg.Connection,
    pg_database: str,
) -> None:
    from github_sync.orchestration.plugin import GitHubSyncPlugin

    clear_run_tables(pg_conn)
    registry = GitHubSyncPlugin.fastapi_apps[0]["app"].app.state.streams
    closed_before = registry.closed
    consumer = StreamConsumer(f"{served_app}/github-sync/stream", admin_token)
    consumer.start()
    assert consumer.opened.wait(STREAM_OPEN_TIMEOUT_S), "the stream sent nothing"
    assert consumer.error is None, consumer.error
    # Proxies must neither buffer nor transform it; EventSource reconnects after RECONNECT_MS.
    assert consumer.headers is not None
    assert consumer.headers["content-type"].startswith("text/event-stream")
    assert {"no-cache", "no-transform"} <= {d.strip() for d in consumer.headers["cache-control"].split(",")}
    assert consumer.headers["x-accel-buffering"] == "no"
    assert consumer.retries == [RECONNECT_MS]

    config = SimulatorConfig(owner="acme", repos=12, seed=3, latency_ms=SIMULATOR_LATENCY_MS)
    with Simulator(config) as sim:
        connect_airflow_to(monkeypatch, sim, pg_database)
        run = dagbag.get_dag("github_full_sync").test(run_conf={"owner": "acme"})
    assert run.state == "success"

    consumer.join(30)
    assert not consumer.is_alive(), f"no completion event; got {[e for e, _ in consumer.events]}"
    assert consumer.error is None, consumer.error
    mine = [(e, d) for e, d in consumer.events if d.get("run_id") == run.run_id]
    kinds = [e for e, _ in mine]
    assert kinds[0] == "sync:start"
    assert kinds[-1] == "sync:complete"
    assert "sync:progress" in kinds
    assert set(kinds[1:-1]) == {"sync:progress"}
    done = [d["done"] for _, d in mine]
    assert done == sorted(done), "progress never goes backwards"
    final = mine[-1][1]
    assert final["state"] == "success"
    assert final["done"] == final["total"] > 0
    assert final["percent"] == 100.0
    assert final["grid_path"].startswith("/dags/github_full_sync/runs/")
    # The number of repositories the run recorded is what the stream reported.
    recorded = pg_conn.execute(
        "SELECT count(*) FROM sync_repository_runs WHERE run_id = %s AND state <> 'running'", (run.run_id,)
    ).fetchone()[0]
    assert final["done"] == recorded
    # Every event has its id, counting up from 1 on this stream.
    assert consumer.ids == list(range(1, len(consumer.events) + 1))

    # The client went away: the server-side generator ends and releases its connection.
    wait_until(lambda: registry.closed > closed_before, timeout=STREAM_CLOSE_TIMEOUT_S,
               message="the stream did not end after its client left")  # fmt: skip
    assert registry.open == 0
