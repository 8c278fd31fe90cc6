"""Baseline A: what an Airflow user writes today with the GitHub provider's ``GithubHook``.

One function (it would be one ``@task``): list the organisation's repositories, then for
each one its issues (``state=all``), pull requests (``state=all``) and commits of the last
90 days, sequentially, with PyGithub through ``GithubHook(...).get_conn()`` (100 items per
page, PyGithub's default retry), and write them with ``PostgresHook.insert_rows`` (upsert,
``replace=True``) into four simple staging tables.

Meant as a fair, straightforward implementation, not a strawman:

* 100 items per page (``client.per_page = 100``; the default is 30);
* only fields the listings already carry are read, so PyGithub never lazily fetches an
  object again (``issue.pull_request`` would: GitHub omits the key for plain issues and
  PyGithub then GETs every issue; ``html_url`` tells a pull request just as well);
* the incremental variant passes ``since=`` to issues and commits (the newest
  ``updated_at`` / commit date stored per repository) and reads pull requests newest
  first (``sort=updated``), stopping at the first one not newer than the stored maximum.

Connections come from ``AIRFLOW_CONN_*`` environment variables (GitHub: host = API URL,
password = token), as a deployment configured from the environment would have them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

GITHUB_CONN_ID = "bench_github"
POSTGRES_CONN_ID = "bench_staging"
COMMITS_SINCE_DAYS = 90

STAGING_DDL = """
CREATE TABLE IF NOT EXISTS gh_repositories (
    id bigint PRIMARY KEY, full_name text, description text, language text, stargazers integer,
    forks integer, open_issues integer, archived boolean, pushed_at timestamptz, updated_at timestamptz);
CREATE TABLE IF NOT EXISTS gh_issues (
    id bigint PRIMARY KEY, repo text, number integer, title text, state text, is_pull_request boolean,
    author text, labels text, created_at timestamptz, updated_at timestamptz, closed_at timestamptz);
CREATE TABLE IF NOT EXISTS gh_pulls (
    id bigint PRIMARY KEY, repo text, number integer, title text, state text, draft boolean, author text,
    created_at timestamptz, updated_at timestamptz, closed_at timestamptz, merged_at timestamptz);
CREATE TABLE IF NOT EXISTS gh_commits (
    repo text, sha text, author_login text, author_name text, message text, committed_at timestamptz,
    PRIMARY KEY (repo, sha));
"""
STAGING_TABLES = ("gh_repositories", "gh_issues", "gh_pulls", "gh_commits")

REPO_FIELDS = [
    "id", "full_name", "description", "language", "stargazers", "forks", "open_issues", "archived",
    "pushed_at", "updated_at",
]  # fmt: skip
ISSUE_FIELDS = [
    "id", "repo", "number", "title", "state", "is_pull_request", "author", "labels", "created_at",
    "updated_at", "closed_at",
]  # fmt: skip
PULL_FIELDS = [
    "id", "repo", "number", "title", "state", "draft", "author", "created_at", "updated_at", "closed_at",
    "merged_at",
]  # fmt: skip
COMMIT_FIELDS = ["repo", "sha", "author_login", "author_name", "message", "committed_at"]


def connection_env(api_url: str, token: str, dsn: str) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables for the baseline's two connections."""
    db = urlsplit(dsn)
    return {
        f"AIRFLOW_CONN_{GITHUB_CONN_ID.upper()}": json.dumps(
            {"conn_type": "github", "host": api_url, "password": token}
        ),
        f"AIRFLOW_CONN_{POSTGRES_CONN_ID.upper()}": json.dumps(
            {
                "conn_type": "postgres",
                "host": db.hostname or "127.0.0.1",
                "port": db.port or 5432,
                "login": db.username or "postgres",
                "password": db.password or "",
                "schema": db.path.lstrip("/"),
            }
        ),
    }


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _stored_maxima(pg: Any) -> dict[str, dict[str, datetime]]:
    """Per repository: newest stored issue ``updated_at``, pull ``updated_at`` and commit date."""
    queries = {
        "issues": "SELECT repo, max(updated_at) FROM gh_issues GROUP BY repo",
        "pulls": "SELECT repo, max(updated_at) FROM gh_pulls GROUP BY repo",
        "commits": "SELECT repo, max(committed_at) FROM gh_commits GROUP BY repo",
    }
    return {name: {repo: _aware(ts) for repo, ts in pg.get_records(sql)} for name, sql in queries.items()}


def run_baseline(*, api_url: str, token: str, dsn: str, owner: str, incremental: bool) -> dict[str, Any]:
    """Run Baseline A once (full or incremental); return rows written and request counts."""
    os.environ.update(connection_env(api_url, token, dsn))
    from airflow.providers.github.hooks.github import GithubHook
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from github import GithubException

    pg = PostgresHook(postgres_conn_id=POSTGRES_CONN_ID)
    pg.run(STAGING_DDL)
    client = GithubHook(github_conn_id=GITHUB_CONN_ID).get_conn()
    client.per_page = 100
    maxima = _stored_maxima(pg) if incremental else {"issues": {}, "pulls": {}, "commits": {}}
    window_start = datetime.now(UTC) - timedelta(days=COMMITS_SINCE_DAYS)
    written = 0

    def insert(table: str, rows: list[tuple[Any, ...]], fields: list[str], index: list[str]) -> None:
        nonlocal written
        if rows:
            pg.insert_rows(table, rows, target_fields=fields, replace=True, replace_index=index)
            written += len(rows)

    repos = list(client.get_organization(owner).get_repos())
    insert(
        "gh_repositories",
        [
            (r.id, r.full_name, r.description, r.language, r.stargazers_count, r.forks_count,
             r.open_issues_count, r.archived, r.pushed_at, r.updated_at)
            for r in repos
        ],
        REPO_FIELDS,
        ["id"],
    )  # fmt: skip
    for repo in repos:
        name = repo.full_name
        issue_since = maxima["issues"].get(name)
        issues = (
            repo.get_issues(state="all", since=issue_since) if issue_since else repo.get_issues(state="all")
        )
        insert(
            "gh_issues",
            [
                (i.id, name, i.number, i.title, i.state, "/pull/" in i.html_url, i.user.login if i.user else None,
                 ",".join(label.name for label in i.labels), i.created_at, i.updated_at, i.closed_at)
                for i in issues
            ],
            ISSUE_FIELDS,
            ["id"],
        )  # fmt: skip
        pulls_newest = maxima["pulls"].get(name)
        insert("gh_pulls", _pull_rows(repo, name, pulls_newest), PULL_FIELDS, ["id"])
        commits_since = maxima["commits"].get(name) or window_start
        try:
            rows = [
                (name, c.sha, c.author.login if c.author else None, c.commit.author.name, c.commit.message,
                 c.commit.author.date)
                for c in repo.get_commits(since=commits_since)
            ]  # fmt: skip
        except GithubException as exc:
            if exc.status != 409:  # 409: "Git Repository is empty."
                raise
            rows = []
        insert("gh_commits", rows, COMMIT_FIELDS, ["repo", "sha"])
    return {"rows": written, "repositories": len(repos)}


def _pull_rows(repo: Any, name: str, newer_than: datetime | None) -> list[tuple[Any, ...]]:
    pulls: Iterable[Any] = (
        repo.get_pulls(state="all", sort="updated", direction="desc")
        if newer_than
        else repo.get_pulls(state="all")
    )
    rows = []
    for p in pulls:
        if newer_than is not None and _aware(p.updated_at) <= newer_than:
            break  # newest first: everything after this one is already stored
        rows.append(
            (p.id, name, p.number, p.title, p.state, p.draft, p.user.login if p.user else None, p.created_at,
             p.updated_at, p.closed_at, p.merged_at)
        )  # fmt: skip
    return rows
