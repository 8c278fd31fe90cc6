"""The ``/_sim`` control API and signed webhook deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from github_sim import Simulator
from github_sim.webhooks import signature
from tests.simulator.conftest import OWNER, TOKEN, big_repo


def test_control_endpoints(sim: Simulator, http: requests.Session) -> None:
    http.get(f"{sim.url}/orgs/{OWNER}")
    stats = requests.get(f"{sim.url}/_sim/stats", timeout=5).json()
    assert stats["requests_total"] == 1 and stats["by_endpoint"] == {"GET /orgs/{org}": 1}
    assert stats["by_status"] == {"200": 1} and stats["budget_spent"] == 1
    assert requests.post(f"{sim.url}/_sim/reset-stats", timeout=5).json()["requests_total"] == 0

    before = sim.clock.now()
    now = requests.post(f"{sim.url}/_sim/clock/advance", json={"seconds": 7200}, timeout=5).json()["now"]
    assert now > before.strftime("%Y-%m-%dT%H:%M:%SZ") and (sim.clock.now() - before).total_seconds() >= 7200

    requests.post(f"{sim.url}/_sim/rate-limit", json={"token": TOKEN, "remaining": 0}, timeout=5)
    assert http.get(f"{sim.url}/orgs/{OWNER}").status_code == 403
    assert (
        requests.get(f"{sim.url}/_sim/rate-limit", params={"token": TOKEN}, timeout=5).json()["remaining"]
        == 0
    )

    faults = requests.post(f"{sim.url}/_sim/faults", json={"fail_paths": {"/orgs/": 502}}, timeout=5).json()
    assert faults["fail_paths"] == {"/orgs/": 502} and sim.faults.fail_paths == {"/orgs/": 502}
    requests.post(f"{sim.url}/_sim/faults", json={"reset": True}, timeout=5)
    assert sim.faults.fail_paths == {}
    assert requests.post(f"{sim.url}/_sim/faults", json={"bogus": 1}, timeout=5).status_code == 422


def test_mutations_over_http(sim: Simulator, http: requests.Session) -> None:
    name = big_repo(sim)
    created = requests.post(
        f"{sim.url}/_sim/state/create_issue",
        json={"repo": name, "title": "From e2e", "labels": ["bug"]},
        timeout=5,
    )
    assert created.status_code == 200
    number = created.json()["result"]["number"]
    requests.post(f"{sim.url}/_sim/state/close_issue", json={"repo": name, "number": number}, timeout=5)
    issue = http.get(f"{sim.url}/repos/{OWNER}/{name}/issues/{number}").json()
    assert issue["state"] == "closed" and issue["title"] == "From e2e"
    missing = requests.post(
        f"{sim.url}/_sim/state/close_issue", json={"repo": "nope", "number": 1}, timeout=5
    )
    assert missing.status_code == 404
    assert requests.post(f"{sim.url}/_sim/state/__init__", json={}, timeout=5).status_code == 404
    info = requests.get(f"{sim.url}/_sim/info", timeout=5).json()
    assert name in info["repos"] and info["owner"] == OWNER


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"headers": dict(self.headers), "body": body})
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    server.shutdown()
    server.server_close()


def test_signature_matches_github_test_vector(github_samples: Path) -> None:
    vector = json.loads((github_samples / "webhook_signature_test_vector.json").read_text())
    assert signature(vector["secret"], vector["payload"].encode()) == vector["x_hub_signature_256"]


def test_webhook_deliveries_are_signed(sim: Simulator, receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = receiver
    sim.webhook_target = (url, "s3cret")
    name = big_repo(sim)
    sim.state.create_issue(name, "Hooked")
    sim.state.push_commits(name)
    sim.state.rename_repository(name, "hooked-repo")
    sim.stop()  # drains the delivery queue
    assert [r["headers"]["X-GitHub-Event"] for r in received] == ["issues", "push", "repository"]
    for r in received:
        headers = r["headers"]
        expected = "sha256=" + hmac.new(b"s3cret", r["body"], hashlib.sha256).hexdigest()
        assert headers["X-Hub-Signature-256"] == expected
        assert headers["User-Agent"].startswith("GitHub-Hookshot/")
        assert len(headers["X-GitHub-Delivery"]) == 36 and headers["X-GitHub-Hook-ID"]
    issue = json.loads(received[0]["body"])
    assert (
        issue["action"] == "opened"
        and issue["issue"]["title"] == "Hooked"
        and issue["repository"]["name"] == name
    )
    push = json.loads(received[1]["body"])
    assert (
        push["ref"] == "refs/heads/" + push["repository"]["default_branch"]
        and push["head_commit"]["id"] == push["after"]
    )
    renamed = json.loads(received[2]["body"])
    assert renamed["action"] == "renamed" and renamed["changes"]["repository"]["name"]["from"] == name
