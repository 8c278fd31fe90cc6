"""Two real relay processes on one database, behind one "load balancer", one of them killed mid-burst.

Everything is real except Airflow, which is the stub (tests/webhooks/airflow_stub.py) playing the
webhook DAG too: it marks each run's deliveries processed, which is what both relays' in-flight
check reads. The stub listens on one port per relay, so the test knows which relay sent what.
The "load balancer" is the test's sender: it alternates between the relays and, when a request
fails (the relay was killed), sends the same delivery to the other one, as GitHub's redelivery
would (same ``X-GitHub-Delivery``).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.polling import wait_until
from tests.webhooks.airflow_stub import AirflowStub, free_port
from tests.webhooks.helpers import SECRET, headers
from tests.webhooks.test_cli import processes, relay_env, start_relay

__all__ = ["processes"]  # the fixture, imported for its use here

BURST = 300
# Deliveries sent before the kill: the kill lands mid-burst.
SENT_BEFORE_KILL = BURST // 2
# Concurrent senders: GitHub sends deliveries of a busy organisation in parallel.
SENDERS = 8
# Each stub run takes this long: long enough for deliveries to pile up behind a run in flight.
RUN_SECONDS = 0.3
# Far above a run's duration: when a run is in flight, the relays wait for it, not for the ceiling.
CEILING_SECONDS = "30"
# A redelivery to the survivor is only needed while the kill is under way; a request takes ms.
REQUEST_TIMEOUT_S = 10.0


def processed_count(conn: psycopg.Connection) -> int:
    conn.commit()
    row = conn.execute("SELECT count(*) FROM webhook_deliveries WHERE status = 'processed'").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("killed", [0, 1], ids=["kill-first-relay", "kill-second-relay"])
def test_two_relays_one_database_no_duplicate_runs_nothing_lost_across_a_kill(
    killed: int,
    pg_database: str,
    pg_conn: psycopg.Connection,
    github_samples: Path,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    stub = AirflowStub(listeners=2).play_dag(pg_database, run_seconds=RUN_SECONDS)
    # The relay to be killed gets stuck in its first trigger: the run is created, the answer
    # never comes, so the relay holds an assigned-but-unconfirmed batch when it dies.
    stub.hang_ports.add(stub.ports[killed])
    stub.start()
    ports = [free_port(), free_port()]
    logs = [tmp_path / "relay-0.log", tmp_path / "relay-1.log"]
    try:
        for index in (0, 1):
            env = relay_env(pg_database, stub.urls[index], ports[index])
            env["GITHUB_SYNC_RELAY_COALESCE_SECONDS"] = CEILING_SECONDS
            start_relay(env, logs[index], processes)
        webhooks = [f"http://127.0.0.1:{port}/webhooks/github" for port in ports]
        body = (github_samples / "webhooks/issues/opened.payload.json").read_bytes()
        ids = [str(uuid.uuid4()) for _ in range(BURST)]
        accepted: dict[str, int] = {}  # delivery id -> the relay that answered 202
        resent: list[str] = []
        lock = threading.Lock()

        def deliver(position: int) -> None:
            delivery_id = ids[position]
            first = position % 2
            for relay in (first, 1 - first):
                try:
                    response = httpx.post(
                        webhooks[relay],
                        content=body,
                        headers=headers(body, "issues", delivery_id),
                        timeout=REQUEST_TIMEOUT_S,
                    )
                except httpx.HTTPError:
                    with lock:
                        resent.append(delivery_id)
                    continue  # the relay is gone: redeliver to the other
                assert response.status_code == 202, response.text
                with lock:
                    accepted[delivery_id] = relay
                return
            pytest.fail(f"delivery {delivery_id} was refused by both relays")

        with ThreadPoolExecutor(SENDERS) as pool:
            futures = [pool.submit(deliver, position) for position in range(BURST)]
            wait_until(lambda: len(accepted) >= SENT_BEFORE_KILL, message="half the burst accepted")
            wait_until(lambda: stub.hung, message="the doomed relay stuck in a trigger")
            processes[killed].send_signal(signal.SIGKILL)
            processes[killed].wait(10)
            for future in futures:
                future.result()

        assert set(accepted) == set(ids), "every delivery got a 202 from one relay"
        wait_until(lambda: processed_count(pg_conn) == BURST, timeout=60, message="every delivery processed")

        per_id = Counter(i for run_ids in stub.runs.values() for i in run_ids)
        assert set(per_id) == set(ids), "nothing lost: every accepted delivery was forwarded"
        assert set(per_id.values()) == {1}, "no duplicate: each delivery in exactly one created run"
        assert len(stub.created_runs()) == len(stub.runs), "a run id was never created twice"

        hung_port, hung_run = stub.hung[0]
        assert hung_port == stub.ports[killed]
        survivor_port = stub.ports[1 - killed]
        confirmations = [s for port, s, run in stub.answers if run == hung_run and port == survivor_port]
        assert confirmations and set(confirmations) <= {200, 409}, (
            "the killed relay's assigned-but-unconfirmed batch was confirmed by the survivor"
        )
        pg_conn.commit()
        statuses = {
            r[0]
            for r in pg_conn.execute(
                "SELECT status FROM webhook_deliveries WHERE dag_run_id = %s", (hung_run,)
            )
        }
        assert statuses == {"processed"}
        for log_path in logs:
            assert SECRET not in log_path.read_text()
        print(
            f"\ntwo relays, relay {killed} killed: {BURST} deliveries -> {len(stub.runs)} runs, "
            f"{stub.conflicts} x 409, {len(resent)} redelivered to the survivor"
        )
    finally:
        stub.stop()
