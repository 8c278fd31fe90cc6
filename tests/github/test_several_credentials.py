"""Several credentials on one hook: requests spread by remaining budget, none spent below its reserve.

Real HTTP against the simulator, whose tokens each have their own budget (GitHub counts a
budget per user; these tokens stand for three users). The pure ordering rule is tested
first, then the hook and a whole sync on three tokens with different budgets left.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from github_sim import Simulator
from github_sync.github.budget import BudgetView
from github_sync.github.credentials import TokenCredential
from github_sync.github.errors import RateLimitExhausted
from github_sync.github.http_cache import InMemoryHttpCache
from github_sync.github.ratelimit import RateLimit, credential_order
from github_sync.sync.runner import run_sync
from tests.support.hooks import HookFactory

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
LIMIT = 100
RESERVE = 10  # 10 % of LIMIT, the hook's default reserve


def _view(remaining: int | None, in_flight: int = 0, paused: datetime | None = None) -> BudgetView:
    window = None
    if remaining is not None:
        window = RateLimit(LIMIT, remaining, LIMIT - remaining, NOW + timedelta(minutes=30))
    return BudgetView(window=window, in_flight=in_flight, paused_until=paused)


def test_order_is_most_headroom_first_without_paused_ones() -> None:
    views = {
        "a": _view(30),
        "b": _view(80),
        "c": _view(60, in_flight=45),
        "d": _view(90, paused=NOW + timedelta(seconds=5)),
    }
    assert credential_order(views, now=NOW) == ["b", "a", "c"]


def test_unknown_or_reset_budgets_come_first_and_a_pause_in_the_past_is_over() -> None:
    expired = RateLimit(LIMIT, 0, LIMIT, NOW - timedelta(seconds=1))
    views = {
        "spent": _view(11),
        "reset": BudgetView(window=expired),
        "new": _view(None),
        "was_paused": _view(50, paused=NOW - timedelta(seconds=1)),
    }
    assert credential_order(views, now=NOW) == ["reset", "new", "was_paused", "spent"]


def test_the_holder_of_the_etag_comes_first_while_it_has_headroom() -> None:
    views = {"a": _view(90), "b": _view(20)}
    assert credential_order(views, now=NOW, prefer="b") == ["b", "a"]
    # At its reserve, the ETag's credential would need a full answer anyway: most headroom wins.
    assert credential_order({"a": _view(90), "b": _view(RESERVE)}, now=NOW, prefer="b") == ["a", "b"]


@pytest.fixture
def simulator_fields() -> dict[str, Any]:
    """Six repositories and a budget of 100 per token, so budgets run out in a few requests."""
    return {"repos": 6, "seed": 1, "big_repos": 0, "latency_ms": 0, "rate_limit": LIMIT}


TOKENS = ("ghp_user_one", "ghp_user_two", "ghp_user_three")
STARTING = {"ghp_user_one": 80, "ghp_user_two": 40, "ghp_user_three": 15}


def _names(sim: Simulator) -> list[str]:
    return sorted(repo.name for repo in sim.state.repos())


def _three_token_hook(sim: Simulator, make_hook: HookFactory, **arguments: Any) -> Any:
    for token, remaining in STARTING.items():
        sim.set_rate_limit_remaining(token, remaining)
    credentials = [TokenCredential(token, label=f"user {n}") for n, token in enumerate(TOKENS, 1)]
    return make_hook(token=None, credentials=credentials, **arguments)


def test_requests_spread_so_that_no_token_goes_below_its_reserve(
    sim: Simulator, make_hook: HookFactory
) -> None:
    hook = _three_token_hook(sim, make_hook, max_wait_s=0)
    usable = sum(remaining - RESERVE for remaining in STARTING.values())  # 70 + 30 + 5
    names = _names(sim)
    sent = 0
    with pytest.raises(RateLimitExhausted):
        for n in range(usable + 5):
            hook.get(f"/repos/acme/{names[n % len(names)]}", {"n": n}, conditional=False)
            sent += 1
    assert sent == usable
    remaining = {token: sim.rate_limit_remaining(token) for token in TOKENS}
    assert remaining == dict.fromkeys(TOKENS, RESERVE)
    # The hook reports what its credentials have left together.
    window = hook.rate_limit("core")
    assert window is not None and (window.limit, window.remaining) == (3 * LIMIT, 3 * RESERVE)


def test_the_richest_token_is_spent_first(sim: Simulator, make_hook: HookFactory) -> None:
    hook = _three_token_hook(sim, make_hook)
    names = _names(sim)
    # Learn every budget (unknown ones are tried first), then 40 more requests.
    for n in range(3 + 40):
        hook.get(f"/repos/acme/{names[n % len(names)]}", {"n": n}, conditional=False)
    spent = {token: STARTING[token] - sim.rate_limit_remaining(token) for token in TOKENS}
    # 80 -> 40 brings user one level with user two; user three (15) is barely touched.
    assert spent["ghp_user_one"] >= 35 and spent["ghp_user_three"] <= 2, spent


def test_a_conditional_request_goes_on_the_token_whose_etag_it_holds(
    sim: Simulator, make_hook: HookFactory
) -> None:
    hook = _three_token_hook(sim, make_hook, http_cache=InMemoryHttpCache())
    first = hook.get("/repos/acme/" + _names(sim)[0])
    holder = next(token for token in TOKENS if sim.rate_limit_remaining(token) < STARTING[token])
    # Make another token much richer: the 304 must still be asked with the ETag's token.
    sim.set_rate_limit_remaining(next(t for t in TOKENS if t != holder), LIMIT)
    second = hook.get("/repos/acme/" + _names(sim)[0])
    assert not first.not_modified and second.not_modified
    assert hook.stats.budget_spent == 1


def test_a_sync_on_three_tokens_keeps_every_reserve(
    sim: Simulator, make_hook: HookFactory, pg_conn: psycopg.Connection[Any]
) -> None:
    for token in TOKENS:
        sim.set_rate_limit_remaining(token, LIMIT)
    credentials = [TokenCredential(token, label=f"user {n}") for n, token in enumerate(TOKENS, 1)]
    hook = make_hook(token=None, credentials=credentials, http_cache=InMemoryHttpCache())
    result = run_sync(hook, pg_conn, owner="acme", as_of=datetime.now(UTC), incremental=False)
    assert len(result.synced) + len(result.skipped) == len(sim.state.repos())
    spent = {token: LIMIT - sim.rate_limit_remaining(token) for token in TOKENS}
    # Every token did a share of the work and none went below its reserve.
    assert all(amount > 0 for amount in spent.values()), spent
    assert all(sim.rate_limit_remaining(token) >= RESERVE for token in TOKENS)
    assert sum(spent.values()) == hook.stats.budget_spent
