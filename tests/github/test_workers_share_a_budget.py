"""Two worker processes on one token: one budget and one pause, through PostgreSQL.

Each worker is an OS process with its own ``GitHubHook`` (several threads) and its own
``PostgresBudget``, as two Celery workers would be; the simulator is the one GitHub they
both spend. Real PostgreSQL, real HTTP, real processes.
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest

from github_sim import Simulator
from github_sync.github.errors import RateLimitExhausted
from github_sync.github.hook import GitHubHook
from github_sync.github.shared_budget import PostgresBudget
from tests.polling import wait_until

LIMIT = 60
RESERVE = 6  # the hook's default 10 %
THREADS_PER_WORKER = 6
PAUSE_S = 2


@pytest.fixture
def simulator_fields() -> dict[str, Any]:
    """A small budget and some latency, so the workers' requests overlap in flight."""
    return {"repos": 4, "seed": 2, "big_repos": 0, "latency_ms": 30, "rate_limit": LIMIT}


def _spend_until_refused(
    sim_url: str, database_url: str, token: str, names: list[str], results: Any, start: Any
) -> None:
    # One worker: THREADS_PER_WORKER threads sending until the shared budget refuses them.
    budget = PostgresBudget(database_url)
    hook = GitHubHook(
        base_url=sim_url, token=token, budget=budget, max_wait_s=0, max_in_flight=THREADS_PER_WORKER
    )

    def spend(offset: int) -> None:
        n = offset
        try:
            while True:
                hook.get(f"/repos/acme/{names[n % len(names)]}", {"n": n}, conditional=False)
                n += THREADS_PER_WORKER
        except RateLimitExhausted:
            return

    # Both workers begin together (spawning a process takes longer than spending the budget).
    start.wait(timeout=60)
    threads = [threading.Thread(target=spend, args=(offset,)) for offset in range(THREADS_PER_WORKER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(hook.stats.budget_spent)
    hook.close()
    budget.close()


def test_two_workers_together_never_spend_below_the_reserve(
    sim: Simulator, pg_database: str, token: str
) -> None:
    names = [repo.name for repo in sim.state.repos()]
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start = context.Barrier(2)
    workers = [
        context.Process(
            target=_spend_until_refused, args=(sim.url, pg_database, token, names, results, start)
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    spent = [results.get(timeout=5) for _ in workers]
    assert sim.rate_limit_remaining(token) == RESERVE
    assert sum(spent) == LIMIT - RESERVE
    assert all(amount > 0 for amount in spent), spent  # both really worked against the budget


def test_a_secondary_limit_seen_by_one_worker_pauses_the_other(
    sim: Simulator, pg_database: str, token: str
) -> None:
    repo = f"/repos/acme/{sim.state.repos()[0].name}"
    first = GitHubHook(base_url=sim.url, token=token, budget=PostgresBudget(pg_database))
    second = GitHubHook(base_url=sim.url, token=token, budget=PostgresBudget(pg_database))
    second.get(repo)  # the second worker is up and has nothing to wait for
    # Every request is over the concurrency limit: GitHub answers with a secondary limit.
    sim.faults.secondary_limit_concurrency = 0
    sim.faults.secondary_retry_after = PAUSE_S
    refused = threading.Thread(target=first.get, args=(repo,))
    refused.start()
    wait_until(
        lambda: sim.stats()["by_status"].get(403, 0) >= 1,
        timeout=10,
        message="no secondary limit was answered",
    )
    sim.faults.secondary_limit_concurrency = None  # GitHub would accept it again...
    assert second.get(repo, conditional=False).status == 200
    # ...but the second worker honoured the pause the first one was told of.
    assert second.stats.waits >= 1 and second.stats.wait_seconds > PAUSE_S / 2
    refused.join(timeout=30)
    assert first.stats.secondary_limit_hits == 1
    for hook in (first, second):
        hook.close()
        hook.budget.close()  # type: ignore[attr-defined]
