"""Scenario 5: the api-server is down while deliveries arrive; each is applied exactly once.

The relay stores every delivery and answers GitHub at once; forwarding fails while the
api-server is down, so the deliveries stay pending (retried with backoff). Once the
api-server is back, they are forwarded and applied; none twice, none lost.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
import requests

from tests.e2e.harness import (
    POLL_S,
    RELAY_ADMIN_HEADERS,
    WEBHOOK_SECRET,
    Deployment,
    organisation,
    sim_control,
)
from tests.polling import wait_until

pytestmark = pytest.mark.e2e

DELIVERIES = 8
DELIVERY_SPACING_S = 0.3


def active_webhook_runs(deployment: Deployment) -> list[str]:
    from airflow_client.client.api.dag_run_api import DagRunApi

    with deployment.client() as api_client:
        runs = DagRunApi(api_client).get_dag_runs(
            "github_webhook_events", state=["queued", "running"], limit=100
        )
    return [run.dag_run_id for run in runs.dag_runs]


def test_deliveries_during_api_outage_are_applied_once(deployment: Deployment) -> None:
    airflow = deployment.airflow
    repos = sorted(r["name"] for r in organisation(deployment.sim_url) if not r["archived"])
    # Tasks talk to the api-server's execution API: let running webhook runs finish first.
    wait_until(
        lambda: not active_webhook_runs(deployment),
        timeout=120,
        interval=POLL_S,
        message="idle github_webhook_events",
    )
    tag = uuid.uuid4().hex[:6]
    titles = [f"e2e outage {tag} #{i}" for i in range(DELIVERIES)]
    sim_control(
        deployment.sim_url,
        "webhook",
        {"url": f"{deployment.relay_url}/webhooks/github", "secret": WEBHOOK_SECRET},
    )
    stopped_at = time.monotonic()
    airflow.stop_component("api-server")
    try:
        for i, title in enumerate(titles):
            sim_control(deployment.sim_url, "state/create_issue", {"repo": repos[i], "title": title})
            # Pacing, not waiting: deliveries arrive apart, as GitHub sends them, not as one burst.
            time.sleep(DELIVERY_SPACING_S)

        def stored() -> list[tuple]:
            return deployment.query(
                "SELECT delivery_id, status FROM webhook_deliveries "
                "WHERE payload->'issue'->>'title' = ANY(%s)",
                (titles,),
            )

        wait_until(
            lambda: len(stored()) == DELIVERIES,
            timeout=30,
            interval=POLL_S,
            message="the relay storing every delivery",
        )
        # Forwarding failed at least once: Airflow really was unreachable for these deliveries.
        stats = wait_until(
            lambda: (
                (
                    s := requests.get(
                        f"{deployment.relay_url}/stats", headers=RELAY_ADMIN_HEADERS, timeout=5
                    ).json()
                )
                and _failed_attempts(s) > 0
                and s
            ),
            timeout=30,
            interval=POLL_S,
            message="a failed forwarding attempt",
        )
        assert {status for _, status in stored()} == {"pending"}
    finally:
        sim_control(deployment.sim_url, "webhook", {"url": None})
        airflow.start_component("api-server")
        airflow.wait_for_api()
    restarted_after = time.monotonic() - stopped_at

    rows = wait_until(
        lambda: (r := stored()) and {status for _, status in r} == {"processed"} and r,
        timeout=240,
        interval=POLL_S,
        message="every delivery processed after the api-server came back",
    )
    delivery_ids = {delivery_id for delivery_id, _ in rows}
    recovered_after = time.monotonic() - stopped_at

    # Exactly once: each delivery is in one run's conf, every such run succeeded, one row each.
    from airflow_client.client.api.dag_run_api import DagRunApi

    with deployment.client() as api_client:
        runs = DagRunApi(api_client).get_dag_runs("github_webhook_events", limit=1000).dag_runs
    carried = Counter(
        delivery_id
        for run in runs
        for delivery_id in (run.conf or {}).get("delivery_ids", [])
        if delivery_id in delivery_ids
    )
    assert carried == Counter(dict.fromkeys(delivery_ids, 1))
    batch_runs = [run for run in runs if delivery_ids & set((run.conf or {}).get("delivery_ids", []))]
    # A row is visible a moment before its run is marked done.
    states = {
        deployment.wait_for_run("github_webhook_events", run.dag_run_id, timeout=60)[0] for run in batch_runs
    }
    assert states == {"success"}
    per_title = dict(
        deployment.query("SELECT title, count(*) FROM bugs WHERE title = ANY(%s) GROUP BY title", (titles,))
    )
    assert per_title == dict.fromkeys(titles, 1)
    deployment.report(
        "scenario5_api_outage",
        {
            "deliveries": DELIVERIES,
            "api_down_s": round(restarted_after, 1),
            "all_applied_after_s": round(recovered_after, 1),
            "dag_runs": len(batch_runs),
            "relay_failed_attempts": _failed_attempts(stats),
        },
    )


def _failed_attempts(stats: dict) -> int:
    forwarder = stats.get("forwarder", stats)
    return int(forwarder.get("failed_attempts", 0))
