"""Child-process entry of the benchmarks: ``python -m tests.benchmarks.worker TASK ARGS_JSON OUT_PATH``.

One measured operation per process, so that the parent reads its peak memory from
``ru_maxrss`` and its wall time includes interpreter start-up and imports, as a real
task process's would. The JSON result is written to ``OUT_PATH``.

Tasks:
    product_sync       the product's own code path in-process (``run_sync``, as the DAG tasks call it)
    product_repo       ``github_repo_sync``'s steps in-process (resolve one repository, sync it)
    pygithub           Baseline A (provider ``GithubHook`` + ``PostgresHook.insert_rows``)
    db_load            the loader alone: upsert N issues and N commits, then re-upsert them
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("tests.benchmarks.worker")


def product_sync(args: dict[str, Any]) -> dict[str, Any]:
    """A full or incremental sync of the owner with ``run_sync``: exactly what the DAG tasks run."""
    import psycopg

    from github_sync.github.hook import GitHubHook
    from github_sync.github.http_cache import PostgresHttpCache
    from github_sync.sync.runner import run_sync

    hook = GitHubHook(
        base_url=args["api_url"], token=args["token"], http_cache=PostgresHttpCache(args["dsn"])
    )
    with psycopg.connect(args["dsn"]) as conn:
        result = run_sync(
            hook,
            conn,
            owner=args["owner"],
            as_of=datetime.now(UTC),
            incremental=bool(args["incremental"]),
        )
    stats = hook.stats
    return {
        "rows": result.records,
        "synced": len(result.synced),
        "skipped": len(result.skipped),
        "probed": result.probed,
        "hook_requests": stats.requests_sent,
        "hook_budget": stats.budget_spent,
    }


def product_repo(args: dict[str, Any]) -> dict[str, Any]:
    """``github_repo_sync``'s work in-process: GET the repository, record it, sync it (tasks.resolve_repository)."""
    import psycopg

    from github_sync.github.hook import GitHubHook
    from github_sync.github.http_cache import PostgresHttpCache
    from github_sync.store import loader
    from github_sync.sync.repository import RepositoryTarget, SyncOptions, sync_repository
    from github_sync.transform.labels import LabelRules
    from github_sync.transform.normalizer import normalize_repository

    hook = GitHubHook(
        base_url=args["api_url"], token=args["token"], http_cache=PostgresHttpCache(args["dsn"])
    )
    as_of = datetime.now(UTC)
    with psycopg.connect(args["dsn"]) as conn:
        repo = hook.get(f"/repos/{args['repository']}").json
        with conn.cursor() as cursor:
            project_id, _ = loader.upsert_project(cursor, normalize_repository(repo))
        conn.commit()
        target = RepositoryTarget(
            full_name=str(repo["full_name"]), project_id=project_id, default_branch=repo.get("default_branch")
        )
        options = SyncOptions(
            as_of=as_of,
            commits_since=as_of - timedelta(days=90),
            rules=LabelRules.default(),
            incremental=False,
        )
        outcome = sync_repository(hook, conn, target, options)
    return {"rows": outcome.records + 1, "hook_requests": hook.stats.requests_sent}


def pygithub(args: dict[str, Any]) -> dict[str, Any]:
    from tests.benchmarks.baseline_pygithub import run_baseline

    return run_baseline(
        api_url=args["api_url"],
        token=args["token"],
        dsn=args["dsn"],
        owner=args["owner"],
        incremental=bool(args["incremental"]),
    )


def db_load(args: dict[str, Any]) -> dict[str, Any]:
    from tests.benchmarks.scenario_db_load import load_rows

    return load_rows(dsn=args["dsn"], rows=int(args["rows"]))


TASKS = {"product_sync": product_sync, "product_repo": product_repo, "pygithub": pygithub, "db_load": db_load}


def main(argv: list[str]) -> int:
    task, raw_args, out_path = argv
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = TASKS[task](json.loads(raw_args))
    except Exception as exc:  # reported to the parent, which fails the scenario with it
        traceback.print_exc()
        Path(out_path).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    Path(out_path).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
