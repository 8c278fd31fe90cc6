"""Primary and secondary rate limits, 5xx storms, page shrinking and transport errors (simulator)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from github_sync.github.errors import (
    GitHubServerError,
    GitHubTransportError,
    RateLimitExhausted,
    SecondaryRateLimitExceeded,
)
from github_sync.github.ratelimit import SECONDARY_MIN_WAIT_S
from github_sync.github.retry import RetryPolicy

from .clocks import StoppedClock
from .conftest import FAST_RETRY, big_repo_name, repo_of

RESERVE_LOG = "rate limit at its reserve"


def _reset_of(sim: Any, token: str) -> datetime:
    return datetime.fromtimestamp(sim.limiter.peek(token).reset, tz=UTC)


def test_reserve_is_never_spent_and_long_wait_raises(
    sim: Any, make_hook: Any, token: str, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="github_sync")
    hook = make_hook(max_wait_s=60)
    hook.get("/repos/acme/portal")  # learn the window
    sim.set_rate_limit_remaining(token, 503)
    reset_at = _reset_of(sim, token) + timedelta(seconds=1)
    done = 0
    with pytest.raises(RateLimitExhausted) as info:
        for _ in range(10):
            hook.get("/repos/acme/portal")
            done += 1
    # 503 -> 500 in three requests; the fourth would go under 10 % of 5,000.
    assert done == 3
    assert sim.rate_limit_remaining(token) == 500
    assert info.value.resource == "core" and info.value.reset_at == reset_at
    assert info.value.reset_at.tzinfo is not None
    with pytest.raises(RateLimitExhausted):
        hook.get("/repos/acme/portal")
    assert caplog.text.count(RESERVE_LOG) == 1
    assert hook.rate_limit("core").remaining == 500


def test_short_exhaustion_waits_until_reset_on_the_sim_clock(sim: Any, token: str, make_hook: Any) -> None:
    from github_sim import Simulator, SimulatorConfig

    # A short window so that the wait (< max_wait_s) is slept, through the injected sleep.
    with Simulator(SimulatorConfig(repos=3, seed=2, reset_interval_s=30)) as short:
        slept: list[float] = []
        # The hook's clock stands still between sleeps, so the wait it computes is exact.
        hook_clock = StoppedClock(short.clock.now())

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            short.clock.advance(seconds)
            hook_clock.advance(seconds)

        hook = make_hook(base_url=short.url, sleep=sleep, clock=hook_clock.now, max_wait_s=60)
        name = short.state.repos()[0].name
        hook.get(f"/repos/acme/{name}")
        short.set_rate_limit_remaining(token, 501)
        reset = datetime.fromtimestamp(short.limiter.peek(token).reset, tz=UTC)
        for _ in range(5):
            hook.get(f"/repos/acme/{name}")
        assert len(slept) == 1
        assert short.clock.now() >= reset + timedelta(seconds=1)
        # It slept until the reset plus the safety second, not longer.
        assert hook_clock.now() == reset + timedelta(seconds=1)
        assert hook.stats.waits == 1 and hook.stats.wait_seconds == pytest.approx(slept[0])
        # The new window is in use.
        assert short.rate_limit_remaining(token) == 5000 - 4


@pytest.mark.parametrize("status_429", [False, True])
def test_primary_refusal_waits_for_reset(token: str, make_hook: Any, status_429: bool) -> None:
    from github_sim import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(repos=3, seed=2, reset_interval_s=20)) as short:
        short.faults.status_429_for_primary = status_429

        def sleep(seconds: float) -> None:
            short.clock.advance(seconds)

        hook = make_hook(base_url=short.url, sleep=sleep, clock=short.clock.now, reserve_fraction=0.0)
        name = short.state.repos()[0].name
        # Someone else spent the budget: the hook does not know until GitHub refuses.
        short.set_rate_limit_remaining(token, 0)
        assert hook.get(f"/repos/acme/{name}").status == 200
        statuses = short.stats()["by_status"]
        assert (
            statuses.get(429 if status_429 else 403) == 1
            or statuses.get(str(429 if status_429 else 403)) == 1
        )
        assert hook.stats.waits == 1 and hook.stats.budget_spent == 1


def test_primary_refusal_with_far_reset_raises(sim: Any, make_hook: Any, token: str) -> None:
    hook = make_hook()
    sim.set_rate_limit_remaining(token, 0)
    with pytest.raises(RateLimitExhausted) as info:
        hook.get("/repos/acme/portal")
    assert info.value.reset_at == _reset_of(sim, token) + timedelta(seconds=1)
    assert not isinstance(info.value, SecondaryRateLimitExceeded)


def _stopped_hook_clock(sim: Any, sim_sleep: Any) -> StoppedClock:
    """A hook clock that moves only with the injected sleep (see :mod:`.clocks`)."""
    clock = StoppedClock(sim.clock.now())
    sim_sleep.hooks.append(lambda s: clock.advance(s.calls[-1]))
    return clock


@pytest.mark.parametrize("retry_after", [61, None])
def test_secondary_limit_is_waited_out(
    sim: Any, make_hook: Any, sim_sleep: Any, retry_after: int | None
) -> None:
    sim.faults.secondary_limit_burst = 5
    sim.faults.secondary_retry_after = retry_after
    hook = make_hook(clock=_stopped_hook_clock(sim, sim_sleep).now)
    commits = list(hook.paginate("/repos/acme/portal-server/commits", per_page=100))
    assert len(commits) == len(repo_of(sim, "portal-server").commits)
    hits = hook.stats.secondary_limit_hits
    assert hits >= 1 and hook.stats.retries >= hits
    # Retry backoffs are FAST_RETRY's fractions of a second; every longer sleep is a pause.
    long_waits = [
        s for s in sim_sleep.calls if s > FAST_RETRY["backoff_max_s"] + FAST_RETRY["backoff_jitter_s"]
    ]
    assert len(long_waits) == hits
    if retry_after is not None:
        assert long_waits == [retry_after] * hits
    else:
        # At least a minute, with jitter, and never a token rotation (one token throughout).
        assert all(SECONDARY_MIN_WAIT_S <= s <= SECONDARY_MIN_WAIT_S * 1.1 for s in long_waits)


def test_secondary_limit_with_429(sim: Any, make_hook: Any) -> None:
    sim.faults.secondary_limit_burst = 2
    sim.faults.secondary_status = 429
    sim.faults.secondary_retry_after = 61
    hook = make_hook()
    for _ in range(4):
        hook.get("/repos/acme/portal")
    assert hook.stats.secondary_limit_hits >= 1


def test_long_secondary_wait_raises_for_deferral(sim: Any, make_hook: Any) -> None:
    sim.faults.secondary_limit_burst = 1
    sim.faults.secondary_retry_after = 600
    hook_clock = StoppedClock(sim.clock.now())
    hook = make_hook(max_wait_s=60, clock=hook_clock.now)
    hook.get("/repos/acme/portal")
    with pytest.raises(SecondaryRateLimitExceeded) as info:
        hook.get("/repos/acme/portal")
    assert isinstance(info.value, RateLimitExhausted)
    assert info.value.reset_at == hook_clock.now() + timedelta(seconds=600)


def test_5xx_storm_then_success(sim: Any, make_hook: Any, sim_sleep: Any) -> None:
    sim.faults.fail_paths = {r"^/repos/acme/portal$": 503}

    def heal(s: Any) -> None:
        if len(s.calls) == 3:
            sim.faults.fail_paths = {}

    sim_sleep.hooks.append(heal)
    hook = make_hook()
    assert hook.get("/repos/acme/portal").json["name"] == "portal"
    assert hook.stats.retries == 3 and hook.stats.requests_sent == 4


def test_5xx_until_attempts_run_out(sim: Any, make_hook: Any) -> None:
    sim.faults.fail_paths = {r"^/repos/acme/portal$": 500}
    hook = make_hook()
    with pytest.raises(GitHubServerError) as info:
        hook.get("/repos/acme/portal")
    assert info.value.status == 500 and info.value.path == "/repos/acme/portal"
    assert "GET /repos/acme/portal -> 500" in str(info.value)
    assert hook.stats.requests_sent == RetryPolicy().max_attempts


def test_random_5xx_and_resets_during_a_listing(sim: Any, make_hook: Any) -> None:
    sim.faults.random_5xx_rate = 0.2
    sim.faults.reset_connection_rate = 0.1
    hook = make_hook(retry_policy=RetryPolicy(max_attempts=8, **FAST_RETRY))
    name = big_repo_name(sim)
    issues = list(hook.paginate(f"/repos/acme/{name}/issues", {"state": "all"}))
    assert len({i["id"] for i in issues}) == len(repo_of(sim, name).issues)
    assert hook.stats.retries > 0


@pytest.mark.parametrize("listing", ["commits", "issues"])
def test_502_on_big_pages_shrinks_and_returns_everything(sim: Any, make_hook: Any, listing: str) -> None:
    name = big_repo_name(sim)
    path = f"/repos/acme/{name}/{listing}"
    params = {"state": "all"} if listing == "issues" else None
    expected = [i["id" if listing == "issues" else "sha"] for i in make_hook().paginate(path, params)]
    sim.faults.max_page_size_before_502 = 30
    hook = make_hook()
    key = "id" if listing == "issues" else "sha"
    got = [i[key] for i in hook.paginate(path, params)]
    assert got == expected
    # 100 -> 50 -> 25 once; the rest of the listing stays at 25.
    assert hook.stats.page_size_reductions == 2
    assert hook.stats.retries == 0


@pytest.mark.parametrize("listing", ["commits", "issues"])
def test_a_listing_that_works_only_at_the_floor_is_read_at_the_floor(
    sim: Any, make_hook: Any, listing: str
) -> None:
    # GitHub builds these pages only at per_page <= 11: halving 12 to 6 (and giving up, below
    # the floor of 10) lost the listing; 100 -> 50 -> 25 -> 12 -> 10 reads all of it.
    name = big_repo_name(sim)
    path = f"/repos/acme/{name}/{listing}"
    params = {"state": "all"} if listing == "issues" else None
    key = "id" if listing == "issues" else "sha"
    expected = [i[key] for i in make_hook().paginate(path, params)]
    sim.faults.max_page_size_before_502 = 11
    hook = make_hook()
    got = [i[key] for i in hook.paginate(path, params)]
    assert got == expected
    assert hook.stats.page_size_reductions == 4


def test_502_at_the_floor_is_a_server_error(sim: Any, make_hook: Any) -> None:
    sim.faults.max_page_size_before_502 = 5
    hook = make_hook()
    with pytest.raises(GitHubServerError) as info:
        list(hook.paginate("/repos/acme/portal-server/commits"))
    assert info.value.status == 502


def test_connection_refused_is_a_transport_error(make_hook: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hook = make_hook(
        base_url=f"http://127.0.0.1:{port}", retry_policy=RetryPolicy(max_attempts=2, **FAST_RETRY)
    )
    with pytest.raises(GitHubTransportError) as info:
        hook.get("/repos/acme/portal")
    assert info.value.path == "/repos/acme/portal" and info.value.cause == "ConnectionError"
    assert hook.stats.retries == 1
