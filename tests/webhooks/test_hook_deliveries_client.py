"""The relay's client of GitHub's webhook deliveries API, against the real simulator over HTTP.

Deliveries are real: the simulator posts them to a real receiver (tests/support/webhook_receiver.py),
or to a closed port when a test needs them to fail. Nothing is mocked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from github_sim import Simulator
from github_sim.apps import generate_app_key
from github_sim.webhooks import HOOK_ID, RETENTION
from github_sync.webhooks.relay.hook_deliveries import (
    ENV_RELAY_HOOKS,
    AppCredentials,
    HookDeliveriesClient,
    HookDeliveriesError,
    HookDeliveriesUnavailableError,
    HookNotFoundError,
    HookTarget,
    HookTargetError,
    RateLimitedError,
    RedeliveryRefusedError,
    parse_hook_targets,
)
from tests.polling import wait_until
from tests.simulator.test_apps import INSTALLATION_ID, StartSimulator, app_config
from tests.support.simulators import OWNER
from tests.support.webhook_receiver import WebhookReceiver

TOKEN = "ghp_relay_recovery_token_5e3"
SECRET = "relay-hook-secret"
ORG_HOOK = HookTarget("org", OWNER, "", HOOK_ID)
ATTEMPTS = 3


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A listening webhook endpoint."""
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def org_sim(start_simulator: StartSimulator) -> Simulator:
    """A small organisation."""
    return start_simulator(repos=3, big_repos=0)


def fast_client(
    api_url: str, credential: str | AppCredentials, sim: Simulator | None, per_page: int
) -> HookDeliveriesClient:
    """A client with test-sized timeouts and backoff, on ``sim``'s clock when there is one."""
    return HookDeliveriesClient(
        api_url,
        credential,
        timeout=(2.0, 5.0),
        attempts=ATTEMPTS,
        backoff_initial=0.01,
        backoff_max=0.02,
        per_page=per_page,
        **({"clock": sim.clock.now} if sim is not None else {}),
    )


def client_for(
    sim: Simulator, credential: str | AppCredentials = TOKEN, per_page: int = 100
) -> HookDeliveriesClient:
    """A client of ``sim`` on the simulator's clock."""
    return fast_client(sim.url, credential, sim, per_page)


def deliver(sim: Simulator, url: str, issues: int) -> list[int]:
    """Open ``issues`` issues with the hook on ``url``; the ids of all deliveries so far, newest first."""
    sim.webhook_target = (url, SECRET)
    with sim.state.lock:
        name = sim.state.repos()[0].name
    for n in range(issues):
        sim.state.create_issue(name, f"missed {n}")
    sim.drain_webhooks()
    return [d.id for d in sim.hook_deliveries]


# -- GITHUB_SYNC_RELAY_HOOKS ----------------------------------------------------------------------
def test_targets_parse_from_the_setting() -> None:
    targets = parse_hook_targets("org:acme:424242, repo:octo/site.io:7\napp")
    assert targets == [
        HookTarget("org", "acme", "", 424242),
        HookTarget("repo", "octo", "site.io", 7),
        HookTarget("app"),
    ]
    assert [str(t) for t in targets] == ["org:acme:424242", "repo:octo/site.io:7", "app"]
    assert targets[1].path == "/repos/octo/site.io/hooks/7/deliveries"
    assert parse_hook_targets("") == []
    # Without an id: the relay takes it from its deliveries' X-GitHub-Hook-ID.
    by_deliveries = parse_hook_targets("org:acme repo:octo/site.io")
    assert by_deliveries == [HookTarget("org", "acme"), HookTarget("repo", "octo", "site.io")]
    assert [str(t) for t in by_deliveries] == ["org:acme", "repo:octo/site.io"]
    with pytest.raises(ValueError, match="not known yet"):
        _ = by_deliveries[0].path


@pytest.mark.parametrize(
    "entry",
    [
        "user:acme:1",
        "org:",
        "org:acme:x",
        "org:acme:0",
        "org:-acme:1",
        "repo:acme:1",
        "repo:acme/..:1",
        "apps",
    ],
)
def test_malformed_targets_name_the_variable(entry: str) -> None:
    with pytest.raises(HookTargetError, match=ENV_RELAY_HOOKS):
        HookTarget.parse(entry)


def test_a_target_named_twice_is_refused() -> None:
    with pytest.raises(HookTargetError, match="twice"):
        parse_hook_targets("app app")


# -- listing ----------------------------------------------------------------------------------------
def test_recent_deliveries_walk_every_page_newest_first(
    org_sim: Simulator, receiver: WebhookReceiver
) -> None:
    ids = deliver(org_sim, receiver.url, 7)
    client = client_for(org_sim, per_page=3)
    try:
        seen = list(client.recent_deliveries(ORG_HOOK))
    finally:
        client.close()
    assert [d.id for d in seen] == ids
    assert [d.guid for d in reversed(seen)] == receiver.guids()
    assert all(d.ok and d.status_code == 202 and not d.redelivery for d in seen)
    assert {(d.event, d.action) for d in seen} == {("issues", "opened")}
    # Three pages of 3, 3 and 1.
    assert org_sim.stats()["by_endpoint"]["GET /orgs/{org}/hooks/{hook_id}/deliveries"] == 3


def test_recent_deliveries_stop_at_since(org_sim: Simulator, receiver: WebhookReceiver) -> None:
    deliver(org_sim, receiver.url, 3)
    org_sim.clock.advance(3600)
    since = org_sim.clock.now()
    newer = deliver(org_sim, receiver.url, 2)[:2]
    client = client_for(org_sim, per_page=2)
    try:
        assert [d.id for d in client.recent_deliveries(ORG_HOOK, since)] == newer
    finally:
        client.close()
    # The walk stopped on the page that crossed `since`: the last page was never asked for.
    assert org_sim.stats()["by_endpoint"]["GET /orgs/{org}/hooks/{hook_id}/deliveries"] == 2


def test_an_unknown_hook_is_hook_not_found(org_sim: Simulator, receiver: WebhookReceiver) -> None:
    deliver(org_sim, receiver.url, 1)
    client = client_for(org_sim)
    try:
        with pytest.raises(HookNotFoundError) as raised:
            list(client.recent_deliveries(HookTarget("org", OWNER, "", HOOK_ID + 1)))
        assert raised.value.status == 404
        with pytest.raises(HookTargetError, match="App's credentials"):
            list(client.recent_deliveries(HookTarget("app")))
    finally:
        client.close()


# -- redelivery -------------------------------------------------------------------------------------
def test_failed_deliveries_are_redelivered_with_their_guid(org_sim: Simulator) -> None:
    down = WebhookReceiver()
    down.stop()  # the relay was down: the deliveries failed
    deliver(org_sim, down.url, 2)
    client = client_for(org_sim)
    try:
        failed = [d for d in client.recent_deliveries(ORG_HOOK) if not d.ok]
        assert len(failed) == 2 and {d.status_code for d in failed} == {0}
        with WebhookReceiver() as up:
            org_sim.webhook_target = (up.url, SECRET)
            for d in failed:
                client.redeliver(ORG_HOOK, d.id)
            wait_until(
                lambda: sorted(up.guids()) == sorted(d.guid for d in failed), message="the redeliveries"
            )
            org_sim.drain_webhooks()
        again = [d for d in client.recent_deliveries(ORG_HOOK) if d.redelivery]
        assert {d.guid for d in again} == {d.guid for d in failed} and all(d.ok for d in again)
        with pytest.raises(RedeliveryRefusedError) as raised:
            client.redeliver(ORG_HOOK, 999_999)
        assert raised.value.status == 404
    finally:
        client.close()


def test_an_expired_delivery_cannot_be_redelivered(org_sim: Simulator, receiver: WebhookReceiver) -> None:
    old = deliver(org_sim, receiver.url, 1)[0]
    org_sim.clock.advance((RETENTION + timedelta(minutes=1)).total_seconds())
    client = client_for(org_sim)
    try:
        assert list(client.recent_deliveries(ORG_HOOK)) == []
        with pytest.raises(RedeliveryRefusedError):
            client.redeliver(ORG_HOOK, old)
    finally:
        client.close()


# -- credentials ------------------------------------------------------------------------------------
def test_an_app_lists_its_own_hook_with_its_jwt_and_an_org_hook_as_an_installation(
    start_simulator: StartSimulator, receiver: WebhookReceiver
) -> None:
    private, public = generate_app_key()
    app = app_config(public, permissions={"metadata": "read", "organization_hooks": "write"})
    sim = start_simulator(repos=3, big_repos=0, apps=[app])
    ids = deliver(sim, receiver.url, 3)
    client = client_for(sim, AppCredentials(str(app.app_id), private), per_page=2)
    try:
        mine = list(client.recent_deliveries(HookTarget("app")))
        assert [d.id for d in mine] == ids and {d.installation_id for d in mine} == {INSTALLATION_ID}
        client.redeliver(HookTarget("app"), ids[0])
        wait_until(lambda: len(receiver.received) == len(ids) + 1, message="the redelivery")
        sim.drain_webhooks()
        assert [d.id for d in client.recent_deliveries(ORG_HOOK)][1:] == ids
    finally:
        client.close()
    assert sim.tokens_issued() == {INSTALLATION_ID: 1}
    assert "BEGIN" not in repr(client) and "PRIVATE" not in repr(AppCredentials("1", private))


# -- failures ---------------------------------------------------------------------------------------
def test_a_spent_budget_is_rate_limited_with_its_reset(org_sim: Simulator, receiver: WebhookReceiver) -> None:
    deliver(org_sim, receiver.url, 1)
    org_sim.set_rate_limit_remaining(TOKEN, 0)
    reset = org_sim.rate_limit(TOKEN)["reset"]
    client = client_for(org_sim)
    try:
        for status_429 in (False, True):
            org_sim.faults.update({"status_429_for_primary": status_429})
            with pytest.raises(RateLimitedError) as raised:
                list(client.recent_deliveries(ORG_HOOK))
            assert raised.value.status == (429 if status_429 else 403)
            assert raised.value.reset_at is not None and int(raised.value.reset_at.timestamp()) == reset + 1
    finally:
        client.close()


def test_server_errors_are_retried_a_bounded_number_of_times(
    org_sim: Simulator, receiver: WebhookReceiver
) -> None:
    deliver(org_sim, receiver.url, 1)
    org_sim.faults.update({"fail_paths": {"/deliveries$": 502}})
    client = client_for(org_sim)
    try:
        with pytest.raises(HookDeliveriesUnavailableError, match=f"{ATTEMPTS} attempts"):
            list(client.recent_deliveries(ORG_HOOK))
    finally:
        client.close()
    assert org_sim.stats()["by_status"][502] == ATTEMPTS


def test_an_unreachable_api_is_unavailable_after_the_retries() -> None:
    closed = WebhookReceiver()
    closed.stop()
    client = fast_client(f"http://127.0.0.1:{closed.port}", TOKEN, None, 100)
    try:
        with pytest.raises(HookDeliveriesUnavailableError):
            client.redeliver(ORG_HOOK, 1)
    finally:
        client.close()


def test_the_token_never_shows(
    org_sim: Simulator, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    deliver(org_sim, receiver.url, 1)
    client = client_for(org_sim)
    errors: list[HookDeliveriesError] = []
    try:
        list(client.recent_deliveries(ORG_HOOK))
        for target in (HookTarget("org", OWNER, "", 1), ORG_HOOK):
            try:
                client.redeliver(target, 123456)
            except HookDeliveriesError as exc:
                errors.append(exc)
        org_sim.faults.update({"fail_paths": {"/deliveries$": 503}})
        try:
            list(client.recent_deliveries(ORG_HOOK))
        except HookDeliveriesError as exc:
            errors.append(exc)
    finally:
        client.close()
    assert len(errors) == 3
    shown = [caplog.text, repr(client), *(str(e) for e in errors), *(repr(e) for e in errors)]
    assert not [s for s in shown if TOKEN in s]
