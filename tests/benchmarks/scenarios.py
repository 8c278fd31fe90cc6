"""Scenarios 1-4 and 6 for the product in-process and the two baselines, on one simulator.

Every system goes through the same sequence per repetition, on the same simulator data:
cold full sync -> incremental with nothing changed -> k repositories changed -> incremental.
The k changes are the same repositories every time (one new issue or one pushed commit
each), so each system's "k changed" run sees the same shape of change.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from tests.benchmarks.common import (
    OWNER,
    TOKEN,
    ChildResult,
    Measurement,
    SimProcess,
    create_database,
    drop_database,
    measured,
    reset_product_database,
    run_child,
)
from tests.benchmarks.results import Results

log = logging.getLogger(__name__)

FULL, NOOP, CHANGED, ONE_REPO, DB_LOAD = (
    "full",
    "incremental_noop",
    "incremental_changed",
    "one_repo",
    "db_load",
)
PRODUCT, PRODUCT_AIRFLOW, PYGITHUB, MELTANO = "product", "product_airflow", "pygithub", "meltano"


def repetition_token(system: str, repetition: int) -> str:
    """A token of its own per system and repetition.

    The simulator, like GitHub, allows 5,000 budget requests per token per hour. One
    repetition of any system fits in that (a full sync of 180 repositories is ~900), but
    the whole suite does not, and a system must not find the budget spent by the previous
    one. A repetition keeps one token throughout (full, then incremental: the product's ETag
    cache is per token, as on GitHub).
    """
    return f"{TOKEN}_{system}{repetition}"


def repositories_to_change(sim: SimProcess, k: int) -> list[str]:
    """k live, non-empty, non-archived repositories spread over the listing (fixed for the whole suite)."""
    import requests

    eligible: list[str] = []
    page = 1
    while True:
        body = requests.get(
            f"{sim.url}/orgs/{OWNER}/repos",
            params={"per_page": 100, "page": page},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        ).json()
        if not body:
            break
        eligible += [r["name"] for r in body if not r["archived"] and r["size"] > 0]
        page += 1
    step = max(1, len(eligible) // max(k, 1))
    return eligible[::step][:k]


def typical_repository(sim: SimProcess) -> str:
    """The repository of scenario 4: a "medium" one (100-320 issues), the median size of the org's active repos."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    def size(name: str) -> tuple[int, str]:
        head = requests.get(
            f"{sim.url}/repos/{OWNER}/{name}/issues",
            params={"state": "all", "per_page": 1},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        last = head.links.get("last", {}).get("url", "")
        count = int(last.rsplit("page=", 1)[1].split("&")[0]) if "page=" in last else len(head.json())
        return count, name

    # Outside any measurement (before the counters are reset); threads only to save time.
    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(size, sim.info()["repos"]))
    medium = sorted(s for s in sizes if 100 <= s[0] <= 400) or sorted(sizes)
    return f"{OWNER}/{medium[len(medium) // 2][1]}"


def apply_changes(sim: SimProcess, names: list[str]) -> None:
    """Change each repository once: a new issue (even positions) or one pushed commit (odd)."""
    for i, name in enumerate(names):
        if i % 2 == 0:
            sim.mutate(
                "create_issue", repo=name, title=f"bench change {uuid.uuid4().hex[:8]}", labels=["bug"]
            )
        else:
            sim.mutate("push_commits", repo=name, n=1, message="bench change")


def _rows(child: ChildResult) -> int:
    return int(child.result["rows"])


def _measure(
    sim: SimProcess, run: Callable[[], ChildResult], rows: Callable[[ChildResult], int]
) -> Measurement:
    sim.reset_stats()
    child = run()
    stats = sim.stats()
    return measured(child, stats, rows(child))


def run_product_inprocess(
    sim: SimProcess, results: Results, *, runs: int, changed: list[str], repository: str
) -> None:
    """Scenarios 1-4 through the product's own code path (``run_sync`` in a child process)."""
    dsn = create_database("bench_product")
    try:
        for n in range(runs):
            log.info("product in-process, repetition %d/%d", n + 1, runs)
            args = {"api_url": sim.url, "token": repetition_token("p", n), "dsn": dsn, "owner": OWNER}
            full = partial(run_child, "product_sync", {**args, "incremental": False})
            incremental = partial(run_child, "product_sync", {**args, "incremental": True})
            one = partial(run_child, "product_repo", {**args, "repository": repository})
            reset_product_database(dsn)
            results.add(FULL, PRODUCT, _measure(sim, full, _rows))
            results.add(NOOP, PRODUCT, _measure(sim, incremental, _rows))
            apply_changes(sim, changed)
            results.add(CHANGED, PRODUCT, _measure(sim, incremental, _rows))
            reset_product_database(dsn)
            results.add(ONE_REPO, PRODUCT, _measure(sim, one, _rows))
    finally:
        drop_database(dsn)


def run_pygithub(sim: SimProcess, results: Results, *, runs: int, changed: list[str]) -> None:
    """Baseline A: provider GithubHook + PostgresHook.insert_rows, full then incremental (since=)."""
    from tests.benchmarks.baseline_pygithub import STAGING_TABLES

    dsn = create_database("bench_pygithub", migrate=False)
    try:
        for n in range(runs):
            log.info("baseline A (PyGithub), repetition %d/%d", n + 1, runs)
            args = {"api_url": sim.url, "token": repetition_token("a", n), "dsn": dsn, "owner": OWNER}
            full = partial(run_child, "pygithub", {**args, "incremental": False})
            incremental = partial(run_child, "pygithub", {**args, "incremental": True})
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DROP TABLE IF EXISTS " + ", ".join(STAGING_TABLES))
            results.add(FULL, PYGITHUB, _measure(sim, full, _rows))
            results.add(NOOP, PYGITHUB, _measure(sim, incremental, _rows))
            apply_changes(sim, changed)
            results.add(CHANGED, PYGITHUB, _measure(sim, incremental, _rows))
    finally:
        drop_database(dsn)


def run_meltano(sim: SimProcess, results: Results, *, runs: int, changed: list[str]) -> None:
    """Baseline B: MeltanoLabs tap-github in its own venv, state carried between runs."""
    from tests.benchmarks.baseline_meltano import MeltanoBaseline, ensure_tap

    try:
        ensure_tap()
    except Exception as exc:  # recorded in the results, the rest of the suite goes on
        log.error("tap-github could not be installed: %s", exc)
        results.note(f"Baseline B skipped: tap-github could not be installed ({exc})")
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench-tap-github-"))
    tap = MeltanoBaseline(api_url=sim.url, token=TOKEN, owner=OWNER, workdir=workdir)

    def measure() -> Measurement:
        sim.reset_stats()
        run = tap.run()
        stats = sim.stats()
        return Measurement(
            budget=int(stats["budget_spent"]),
            requests=int(stats["requests_total"]),
            not_modified=int(stats["not_modified"]),
            wall_s=run.wall_s,
            peak_rss_mb=run.peak_rss_mb,
            rows=sum(run.records.values()),
            extra={"records": dict(run.records), "by_endpoint": stats.get("by_endpoint", {})},
        )

    for n in range(runs):
        log.info("baseline B (tap-github), repetition %d/%d", n + 1, runs)
        tap.token = repetition_token("b", n)
        tap.reset_state()
        results.add(FULL, MELTANO, measure())
        results.add(NOOP, MELTANO, measure())
        apply_changes(sim, changed)
        results.add(CHANGED, MELTANO, measure())


def run_db_load(results: Results, *, runs: int, rows: int) -> None:
    """Scenario 6: upsert ``rows`` issues + ``rows`` commits, then re-upsert them unchanged."""
    for n in range(runs):
        log.info("database load, repetition %d/%d", n + 1, runs)
        dsn = create_database("bench_dbload")
        try:
            child = run_child("db_load", {"dsn": dsn, "rows": rows})
        finally:
            drop_database(dsn)
        r: dict[str, Any] = child.result
        results.add(
            DB_LOAD,
            PRODUCT,
            Measurement(
                wall_s=child.wall_s,
                peak_rss_mb=child.peak_rss_mb,
                rows=int(r["rows"]),
                extra={
                    "new_rows_per_s": r["new_rows_per_s"],
                    "unchanged_rows_per_s": r["unchanged_rows_per_s"],
                    "new_s": r["new_s"],
                    "unchanged_s": r["unchanged_s"],
                    "unchanged_written": r["unchanged_written"],
                },
            ),
        )
