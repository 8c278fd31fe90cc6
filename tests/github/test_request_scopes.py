"""Per-repository request counters while several threads share one hook (a shard's repositories)."""

from __future__ import annotations

import threading
from typing import Any

from github_sync.github.stats import RequestCounters


def test_a_scope_counts_only_what_its_own_thread_adds_and_the_totals_count_everything() -> None:
    counters = RequestCounters()
    ready = threading.Barrier(3)
    seen: dict[str, int] = {}

    def work(name: str, requests: int) -> None:
        with counters.scope() as mine:
            ready.wait()
            for _ in range(requests):
                counters.add("requests_sent")
            counters.add_wait(0.5)
            ready.wait()
            seen[name] = mine.snapshot().requests_sent
            assert mine.snapshot().waits == 1

    threads = [threading.Thread(target=work, args=(f"t{n}", n * 10)) for n in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"t1": 10, "t2": 20, "t3": 30}
    assert counters.snapshot().requests_sent == 60 and counters.snapshot().waits == 3


def test_scopes_nest_and_end_with_their_block() -> None:
    counters = RequestCounters()
    counters.add("budget_spent")
    with counters.scope() as outer:
        counters.add("budget_spent")
        with counters.scope() as inner:
            counters.add("budget_spent")
        counters.add("budget_spent")
    counters.add("budget_spent")
    assert (outer.snapshot().budget_spent, inner.snapshot().budget_spent) == (3, 1)
    assert counters.snapshot().budget_spent == 5


def test_a_scope_of_one_hook_does_not_see_another_hooks_requests() -> None:
    first, second = RequestCounters(), RequestCounters()
    with first.scope() as scoped:
        second.add("requests_sent")
        first.add("not_modified")
    assert scoped.snapshot().requests_sent == 0 and scoped.snapshot().not_modified == 1


def test_the_hook_counts_a_block_of_requests(sim: Any, make_hook: Any) -> None:
    hook = make_hook()
    hook.get("/orgs/acme")
    with hook.counting() as counted:
        hook.get("/orgs/acme/repos")
        hook.get("/orgs/acme/repos")
    assert (counted.snapshot().requests_sent, counted.snapshot().budget_spent) == (2, 2)
    assert hook.stats.requests_sent == 3
