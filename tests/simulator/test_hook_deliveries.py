"""The webhook deliveries API over real HTTP: listing and paging, one delivery, redelivery, retention, access.

A real receiver (tests/support/webhook_receiver.py) gets the deliveries; a stopped one refuses
connections, which is how a delivery fails here (nothing is mocked).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from github_sim import Simulator
from github_sim.apps import generate_app_key
from github_sim.webhooks import HOOK_ID, RETENTION
from tests.polling import wait_until
from tests.simulator.conftest import OTHER_TOKEN, OWNER, TOKEN, auth, walk
from tests.simulator.test_apps import (
    INSTALLATION_ID,
    StartSimulator,
    app_config,
    bearer,
    issue_token,
    make_jwt,
    validate,
)
from tests.support.webhook_receiver import WebhookReceiver

SECRET = "hook-s3cret"
ORG_DELIVERIES = f"/orgs/{OWNER}/hooks/{HOOK_ID}/deliveries"
APP_DELIVERIES = "/app/hook/deliveries"
USER_OWNER = "octo"
OUTSIDER = "ghp_outsider_token"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A listening webhook endpoint."""
    with WebhookReceiver() as r:
        yield r


@pytest.fixture(scope="module")
def openapi(github_samples: Path) -> dict[str, Any]:
    """GitHub's REST description."""
    with (github_samples / "openapi" / "api.github.com.json").open() as fh:
        return json.load(fh)


def code(method: str, url: str, headers: dict[str, str]) -> int:
    """The status code ``method url`` is answered with."""
    return requests.request(method, url, headers=headers, timeout=10).status_code


def hooked(sim: Simulator, url: str, issues: int, repo: str | None = None) -> list[int]:
    """Point the hook at ``url``, open ``issues`` issues and wait for their deliveries; their ids, newest first."""
    sim.webhook_target = (url, SECRET)
    with sim.state.lock:
        name = repo or sim.state.repos()[0].name
    for n in range(issues):
        sim.state.create_issue(name, f"hooked {n}")
    sim.drain_webhooks()
    return [d.id for d in sim.hook_deliveries]


def test_listing_is_newest_first_and_pages_with_cursors(
    sim: Simulator, receiver: WebhookReceiver, openapi: dict[str, Any]
) -> None:
    ids = hooked(sim, receiver.url, 7)
    assert ids == sorted(ids, reverse=True) and len(ids) == 7
    with requests.Session() as http:
        http.headers.update(auth())
        items, responses = walk(http, f"{sim.url}{ORG_DELIVERIES}?per_page=3")
        default = http.get(f"{sim.url}{ORG_DELIVERIES}", timeout=10)
    assert [i["id"] for i in items] == ids
    assert [len(r.json()) for r in responses] == [3, 3, 1]
    # The Link as GitHub writes it: the caller's parameters, then the cursor of the next page.
    assert responses[0].headers["Link"] == (
        f'<{sim.url}{ORG_DELIVERIES}?per_page=3&cursor=v1_{ids[2]}>; rel="next"'
    )
    assert "Link" not in responses[-1].headers
    assert default.status_code == 200 and [i["id"] for i in default.json()] == ids
    first = items[0]
    record = sim.hook_deliveries[0]
    assert first == {
        "id": record.id,
        "guid": record.guid,
        "delivered_at": record.delivered_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "redelivery": False,
        "duration": record.duration,
        "status": "OK",
        "status_code": 202,
        "event": "issues",
        "action": "opened",
        "installation_id": None,
        "repository_id": record.repository_id,
        "throttled_at": None,
    }
    assert receiver.guids() == [i["guid"] for i in reversed(items)]
    validate(openapi, "/orgs/{org}/hooks/{hook_id}/deliveries", "get", "200", items)


def test_default_page_is_30(sim: Simulator, receiver: WebhookReceiver) -> None:
    ids = hooked(sim, receiver.url, 33)
    first = requests.get(f"{sim.url}{ORG_DELIVERIES}", headers=auth(), timeout=10)
    assert [i["id"] for i in first.json()] == ids[:30]
    rest = requests.get(first.links["next"]["url"], headers=auth(), timeout=10)
    assert [i["id"] for i in rest.json()] == ids[30:]
    assert code("GET", f"{sim.url}{ORG_DELIVERIES}?cursor=bogus", auth()) == 400


def test_one_delivery_shows_the_request_and_the_answer(
    sim: Simulator, receiver: WebhookReceiver, openapi: dict[str, Any]
) -> None:
    newest = hooked(sim, receiver.url, 2)[0]
    resp = requests.get(f"{sim.url}{ORG_DELIVERIES}/{newest}", headers=auth(), timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    sent = receiver.received[-1]
    assert body["url"] == receiver.url and body["request"]["headers"] == {
        k: v for k, v in sent.headers.items() if k in body["request"]["headers"]
    }
    assert body["request"]["payload"] == json.loads(sent.body)
    assert body["request"]["headers"]["X-GitHub-Hook-Installation-Target-Type"] == "organization"
    assert body["response"]["payload"] == "ok"
    validate(openapi, "/orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}", "get", "200", body)


def test_redelivery_keeps_the_guid_and_reaches_the_target_again(sim: Simulator) -> None:
    down = WebhookReceiver()
    down.stop()  # the relay is down: its port refuses connections
    failed = hooked(sim, down.url, 2)
    assert [(d.status_code, d.status) for d in sim.hook_deliveries] == [(0, "failed to connect")] * 2
    with WebhookReceiver() as up:
        sim.webhook_target = (up.url, SECRET)
        resp = requests.post(f"{sim.url}{ORG_DELIVERIES}/{failed[-1]}/attempts", headers=auth(), timeout=10)
        assert resp.status_code == 202 and resp.json() == {}
        original = next(d for d in sim.hook_deliveries if d.id == failed[-1])
        wait_until(lambda: up.guids() == [original.guid], message="the redelivery")
        sent = up.received[0]
        assert sent.body == original.body
        assert sent.headers["X-Hub-Signature-256"] == (
            "sha256=" + hmac.new(SECRET.encode(), sent.body, hashlib.sha256).hexdigest()
        )
        sim.drain_webhooks()
    listed = requests.get(f"{sim.url}{ORG_DELIVERIES}", headers=auth(), timeout=10).json()
    newest = listed[0]
    assert (newest["guid"], newest["redelivery"], newest["status_code"], newest["status"]) == (
        original.guid,
        True,
        202,
        "OK",
    )
    assert newest["id"] > failed[0] and [i["redelivery"] for i in listed[1:]] == [False, False]
    # `status` filters on the status code: the failed attempts (code 0) are in neither class.
    succeeded = requests.get(f"{sim.url}{ORG_DELIVERIES}?status=success", headers=auth(), timeout=10)
    assert [i["id"] for i in succeeded.json()] == [newest["id"]]
    bad = requests.get(f"{sim.url}{ORG_DELIVERIES}?status=maybe", headers=auth(), timeout=10)
    assert bad.status_code == 422


def test_deliveries_older_than_three_days_are_gone(sim: Simulator, receiver: WebhookReceiver) -> None:
    old = hooked(sim, receiver.url, 2)
    sim.clock.advance(RETENTION.total_seconds() - 60)
    recent = hooked(sim, receiver.url, 1)[0]
    sim.clock.advance(120)  # the first two are now older than 3 days, the last one is not
    listed = requests.get(f"{sim.url}{ORG_DELIVERIES}", headers=auth(), timeout=10).json()
    assert [i["id"] for i in listed] == [recent]
    assert [d.id for d in sim.hook_deliveries] == [recent]
    for delivery_id in old:
        assert code("GET", f"{sim.url}{ORG_DELIVERIES}/{delivery_id}", auth()) == 404
        again = requests.post(f"{sim.url}{ORG_DELIVERIES}/{delivery_id}/attempts", headers=auth(), timeout=10)
        assert again.status_code == 404
    assert not sim.redeliver(old[0])


@pytest.mark.simulator(outsider_tokens=[OUTSIDER])
def test_unknown_hooks_deliveries_and_callers_get_404(sim: Simulator, receiver: WebhookReceiver) -> None:
    delivery_id = hooked(sim, receiver.url, 1)[0]
    with sim.state.lock:
        name = sim.state.repos()[0].name
    url = sim.url
    for path, headers in [
        (f"/orgs/{OWNER}/hooks/1/deliveries", auth()),
        (f"/orgs/{OWNER}/hooks/nope/deliveries", auth()),
        (f"/orgs/other/hooks/{HOOK_ID}/deliveries", auth()),
        (f"{ORG_DELIVERIES}/999999", auth()),
        (f"{ORG_DELIVERIES}/abc", auth()),
        (ORG_DELIVERIES, {}),  # anonymous
        (ORG_DELIVERIES, auth(OUTSIDER)),
        (f"{ORG_DELIVERIES}/{delivery_id}", auth(OUTSIDER)),
        (f"{ORG_DELIVERIES}/{delivery_id}/attempts", auth()),  # GET on the POST route
        # An organisation's repositories carry no repository hook: the hook is the organisation's.
        (f"/repos/{OWNER}/{name}/hooks/{HOOK_ID}/deliveries", auth()),
    ]:
        resp = requests.get(url + path, headers=headers, timeout=10)
        assert resp.status_code == 404, (path, resp.status_code, resp.text)
    assert code("POST", f"{url}{ORG_DELIVERIES}/999999/attempts", auth()) == 404
    assert code("POST", f"{url}{ORG_DELIVERIES}/{delivery_id}/attempts", {}) == 404
    sim.webhook_target = None  # no hook any more
    assert code("GET", url + ORG_DELIVERIES, auth()) == 404
    assert code("GET", url + ORG_DELIVERIES, auth(OTHER_TOKEN)) == 404


def test_a_user_owners_hook_is_a_repository_hook_listing_that_repository(
    start_simulator: StartSimulator, receiver: WebhookReceiver
) -> None:
    sim = start_simulator(owner=USER_OWNER, owner_type="User", repos=4, big_repos=0, owner_tokens=[TOKEN])
    with sim.state.lock:
        first, second = (r.name for r in sim.state.repos()[:2])
        second_id = sim.state.repos()[1].id
    hooked(sim, receiver.url, 2, repo=first)
    wanted = hooked(sim, receiver.url, 3, repo=second)[:3]
    path = f"/repos/{USER_OWNER}/{second}/hooks/{HOOK_ID}/deliveries"
    assert requests.get(f"{sim.url}{path}", timeout=10).status_code == 404  # anonymous
    listed = requests.get(f"{sim.url}{path}", headers=auth(), timeout=10)
    assert [i["id"] for i in listed.json()] == wanted
    assert {i["repository_id"] for i in listed.json()} == {second_id}
    one = requests.get(f"{sim.url}{path}/{wanted[0]}", headers=auth(), timeout=10).json()
    assert one["request"]["headers"]["X-GitHub-Hook-Installation-Target-Type"] == "repository"
    assert one["request"]["headers"]["X-GitHub-Hook-Installation-Target-ID"] == str(second_id)
    other_repo = f"/repos/{USER_OWNER}/{first}/hooks/{HOOK_ID}/deliveries/{wanted[0]}"
    assert code("GET", f"{sim.url}{other_repo}", auth()) == 404
    assert code("GET", f"{sim.url}{path}", auth(OTHER_TOKEN)) == 404
    assert code("GET", f"{sim.url}/orgs/{USER_OWNER}/hooks/{HOOK_ID}/deliveries", auth()) == 404


def test_the_app_route_needs_the_apps_jwt(start_simulator: StartSimulator, receiver: WebhookReceiver) -> None:
    private, public = generate_app_key()
    sim = start_simulator(repos=4, big_repos=0, apps=[app_config(public)])
    ids = hooked(sim, receiver.url, 3)
    jwt = bearer(make_jwt(sim, private))
    listed = requests.get(f"{sim.url}{APP_DELIVERIES}?per_page=2", headers=jwt, timeout=10)
    assert listed.status_code == 200, listed.text
    assert [i["id"] for i in listed.json()] == ids[:2]
    assert {i["installation_id"] for i in listed.json()} == {INSTALLATION_ID}
    rest = requests.get(listed.links["next"]["url"], headers=jwt, timeout=10)
    assert [i["id"] for i in rest.json()] == ids[2:]
    assert requests.get(f"{sim.url}{APP_DELIVERIES}/{ids[0]}", headers=jwt, timeout=10).json()["id"] == ids[0]
    assert code("POST", f"{sim.url}{APP_DELIVERIES}/{ids[0]}/attempts", jwt) == 202
    # A token is not the App: GitHub answers a JWT-only route without a JWT with 401.
    for headers in (auth(), {}):
        assert code("GET", f"{sim.url}{APP_DELIVERIES}", headers) == 401
    # ...and a JWT reaches no organisation route.
    assert code("GET", f"{sim.url}{ORG_DELIVERIES}", jwt) == 403


def test_an_installation_token_needs_the_webhooks_permission(
    start_simulator: StartSimulator, receiver: WebhookReceiver
) -> None:
    private, public = generate_app_key()
    with_hooks = app_config(public, permissions={"metadata": "read", "organization_hooks": "read"})
    sim = start_simulator(repos=4, big_repos=0, apps=[with_hooks])
    delivery_id = hooked(sim, receiver.url, 1)[0]
    token = issue_token(sim, private).json()["token"]
    assert code("GET", f"{sim.url}{ORG_DELIVERIES}", bearer(token)) == 200
    # Redelivering needs write.
    resp = requests.post(
        f"{sim.url}{ORG_DELIVERIES}/{delivery_id}/attempts", headers=bearer(token), timeout=10
    )
    assert resp.status_code == 403
    plain = start_simulator(repos=4, big_repos=0, apps=[app_config(public)])
    hooked(plain, receiver.url, 1)
    token = issue_token(plain, private).json()["token"]
    assert code("GET", f"{plain.url}{ORG_DELIVERIES}", bearer(token)) == 403
