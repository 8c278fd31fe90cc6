"""``github-sync``: set-up and one-off commands (migrations, Airflow connections and pool, a sync).

Commands:

* ``github-sync migrate`` - apply the schema migrations to ``GITHUB_SYNC_DATABASE_URL``;
* ``github-sync setup-airflow`` - create the ``github_default`` and ``github_sync_db``
  connections from the ``GITHUB_*`` environment variables, and the ``github_api`` pool,
  in the Airflow metadata database (what docker-compose's airflow-init runs);
* ``github-sync sync --owner acme [--incremental]`` - run a sync in this process, without
  Airflow (the same functions the DAGs call), e.g. to debug a repository;
* ``github-sync check-connection [--conn-id github_default]`` - which authentication the
  GitHub connection uses, for which account or installation, with what budget and
  permissions, for each of its credentials, without spending budget
  (:mod:`github_sync.github.access`).

A thin shell over the library: it validates its arguments with the same rules as the
DAGs (:mod:`github_sync.config`, :mod:`github_sync.github.owners`) and must not hold sync
logic of its own. It talks to the user through ``logging`` and exits with a message.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from github_sync.config import (
    DEFAULT_POOL_SLOTS,
    ENV_DATABASE_URL,
    ENV_GITHUB_OWNER,
    ENV_GITHUB_TOKEN,
    GITHUB_CONN_ID,
    GITHUB_POOL,
    GITHUB_POOL_DESCRIPTION,
    ConfigError,
    Settings,
)
from github_sync.github.owners import OwnerError, check_login

log = logging.getLogger("github_sync.devtools.cli")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise SystemExit(f"github-sync: {exc}") from None


def _require_database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise SystemExit(f"github-sync: {ENV_DATABASE_URL} is not set (postgresql://user@host:5432/database)")
    return settings.database_url


def cmd_migrate(_: argparse.Namespace) -> int:
    import psycopg

    from github_sync.store.migrations import apply_migrations

    url = _require_database_url(_settings())
    with psycopg.connect(url, connect_timeout=10) as conn:
        applied = apply_migrations(conn)
    log.info("Migrations applied: %s", ", ".join(applied) or "none (up to date)")
    return 0


def _airflow(*args: str) -> None:
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, *args], check=True)


def cmd_setup_airflow(args: argparse.Namespace) -> int:
    settings = _settings()
    connections = settings.airflow_connections()
    if not settings.github_token:
        log.warning("%s is not set: connection %s has no token", ENV_GITHUB_TOKEN, GITHUB_CONN_ID)
    # A private temporary file (0600) carries the connections to `airflow connections import`;
    # it never leaves this machine and is removed at once.
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        os.chmod(handle.name, 0o600)
        json.dump(connections, handle)
    try:
        _airflow("connections", "import", "--overwrite", handle.name)
    finally:
        os.unlink(handle.name)
    _airflow("pools", "set", GITHUB_POOL, str(args.pool_slots), GITHUB_POOL_DESCRIPTION)
    log.info(
        "Connections %s and pool %s (%d slots) are set", ", ".join(connections), GITHUB_POOL, args.pool_slots
    )
    return 0


def _owner_argument(value: str) -> str:
    try:
        return check_login(value, source="--owner")
    except OwnerError as exc:
        raise SystemExit(f"github-sync: {exc}") from None


def cmd_sync(args: argparse.Namespace) -> int:
    import psycopg

    from github_sync.github.hook import GitHubHook
    from github_sync.github.http_cache import PostgresHttpCache
    from github_sync.sync.runner import run_sync

    settings = _settings()
    url = _require_database_url(settings)
    owners = [_owner_argument(args.owner)] if args.owner else list(settings.github_owners)
    if not owners:
        raise SystemExit(f"github-sync: give --owner or set {ENV_GITHUB_OWNER}")
    if not settings.github_token:
        raise SystemExit(f"github-sync: {ENV_GITHUB_TOKEN} is not set")
    hook = GitHubHook(
        base_url=settings.github_api_url, token=settings.github_token, http_cache=PostgresHttpCache(url)
    )
    with psycopg.connect(url) as conn:
        result = run_sync(
            hook,
            conn,
            owner=owners,
            as_of=datetime.now(UTC),
            incremental=args.incremental,
            repos=args.repo or None,
            include_archived=not args.exclude_archived,
        )
    log.info(
        "Synced %d repositories (%d skipped), %d records written; %s",
        len(result.synced),
        len(result.skipped),
        result.records,
        hook.stats.as_dict(),
    )
    return 0


def cmd_check_connection(args: argparse.Namespace) -> int:
    from github_sync.github.access import check_access
    from github_sync.github.hook import GitHubHook

    hook = GitHubHook(github_conn_id=args.conn_id)
    try:
        reports = check_access(hook, look_up_accounts=args.whoami)
    except ConfigError as exc:
        raise SystemExit(f"github-sync: {exc}") from None
    finally:
        hook.close()
    if args.json:
        sys.stdout.write(json.dumps([report.as_dict() for report in reports], indent=2) + "\n")
    for report in reports:
        (log.info if report.ok else log.error)("%s", report.describe())
    return 0 if all(report.ok for report in reports) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="github-sync", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the schema migrations").set_defaults(func=cmd_migrate)
    setup = commands.add_parser(
        "setup-airflow", help="create the Airflow connections and pool from the environment"
    )
    setup.add_argument("--pool-slots", type=int, default=DEFAULT_POOL_SLOTS)
    setup.set_defaults(func=cmd_setup_airflow)
    sync = commands.add_parser("sync", help="run a sync in this process, without Airflow")
    sync.add_argument(
        "--owner", help=f"the user or organisation (default: {ENV_GITHUB_OWNER}, which may list several)"
    )
    sync.add_argument("--incremental", action="store_true")
    sync.add_argument("--repo", action="append", help="limit to this repository (repeatable)")
    sync.add_argument("--exclude-archived", action="store_true", help="do not sync archived repositories")
    sync.set_defaults(func=cmd_sync)
    check = commands.add_parser(
        "check-connection", help="describe the GitHub connection's credentials and budget (spends none)"
    )
    check.add_argument("--conn-id", default=GITHUB_CONN_ID, help=f"the connection (default {GITHUB_CONN_ID})")
    check.add_argument(
        "--whoami",
        action="store_true",
        help="also look up each token's account (GET /user: one request each)",
    )
    check.add_argument("--json", action="store_true", help="also write the reports as JSON to stdout")
    check.set_defaults(func=cmd_check_connection)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
