"""Scenario 3: signed deliveries from the simulator, through the relay, applied by github_webhook_events.

The simulator signs every mutation's delivery with the relay's secret. The test measures
delivery-to-row latency: from the mutation (which queues the delivery at once) until the
issue's row is readable in ``bugs``. It covers the relay's coalescing window, the DAG run's
scheduling, task start-up and the apply.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.e2e.harness import WEBHOOK_SECRET, Deployment, latency_summary, organisation, sim_control
from tests.polling import wait_until

pytestmark = pytest.mark.e2e

DELIVERIES = 12
# One mutation every this many seconds: a steady trickle, as a busy organisation sends.
SPACING_S = 1.0
TIMEOUT_S = 150
# Rows are looked for this often: the resolution of the measured latencies.
ROW_POLL_S = 0.1


def webhook_runs(deployment: Deployment, run_ids: set[str]) -> dict[str, str]:
    """Final state of each run (a row is visible a moment before its run is marked done)."""
    return {
        run_id: deployment.wait_for_run("github_webhook_events", run_id, timeout=60)[0] for run_id in run_ids
    }


def test_webhook_deliveries_become_rows(deployment: Deployment) -> None:
    repos = sorted(r["name"] for r in organisation(deployment.sim_url) if not r["archived"])
    sim_control(
        deployment.sim_url,
        "webhook",
        {"url": f"{deployment.relay_url}/webhooks/github", "secret": WEBHOOK_SECRET},
    )
    tag = uuid.uuid4().hex[:6]
    titles = [f"e2e webhook {tag} #{i}" for i in range(DELIVERIES)]
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    next_send = time.monotonic()

    def send_due_and_watch_rows() -> bool:
        """One step: send the next mutation when it is due, note rows that appeared; True when all did."""
        nonlocal next_send
        if len(sent) < DELIVERIES and time.monotonic() >= next_send:
            title = titles[len(sent)]
            sent[title] = time.monotonic()
            sim_control(
                deployment.sim_url,
                "state/create_issue",
                {"repo": repos[len(sent) % len(repos)], "title": title, "labels": ["bug"]},
            )
            next_send += SPACING_S
        now = time.monotonic()
        for (title,) in deployment.query("SELECT title FROM bugs WHERE title = ANY(%s)", (titles,)):
            seen.setdefault(title, now)
        return len(seen) == DELIVERIES

    try:
        wait_until(
            send_due_and_watch_rows,
            timeout=TIMEOUT_S,
            interval=ROW_POLL_S,
            message=f"a row in bugs for each of the {DELIVERIES} deliveries (see {deployment.home})",
        )
    finally:
        sim_control(deployment.sim_url, "webhook", {"url": None})
    assert set(seen) == set(titles)

    deliveries = deployment.query(
        "SELECT delivery_id, status, dag_run_id FROM webhook_deliveries "
        "WHERE event = 'issues' AND payload->'issue'->>'title' = ANY(%s)",
        (titles,),
    )
    assert len(deliveries) == DELIVERIES
    assert {status for _, status, _ in deliveries} == {"processed"}
    runs = webhook_runs(deployment, {run_id for _, _, run_id in deliveries})
    assert set(runs.values()) == {"success"}, runs
    assert deployment.query("SELECT count(*) FROM bugs WHERE title = ANY(%s)", (titles,)) == [(DELIVERIES,)]

    latencies = [seen[title] - sent[title] for title in titles]
    summary = {**latency_summary(latencies), "dag_runs": len(runs)}
    deployment.report("scenario3_webhook_latency", summary)
