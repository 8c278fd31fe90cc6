"""``github-sync-relay``: run the webhook relay (uvicorn) configured from the environment.

Exit status: 0 after a clean shutdown, 2 for a configuration error (e.g. no
``GITHUB_WEBHOOK_SECRET``: the relay refuses to start), 3 when the database is unusable.

Owns the process: argument parsing, logging set-up, the start-up checks. Must not: start
serving before the configuration and the database are known to be usable, or print a
secret (errors name variables, never values).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import psycopg

from github_sync.webhooks.relay.settings import (
    ENV_COALESCE_SECONDS,
    ENV_RELAY_HOST,
    ENV_RELAY_PORT,
    RelayConfigError,
    RelaySettings,
)

log = logging.getLogger(__name__)

EXIT_CONFIG_ERROR = 2
EXIT_DATABASE_ERROR = 3
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="github-sync-relay",
        description=(
            "Receive GitHub webhook deliveries, store them in PostgreSQL and trigger the "
            "github_webhook_events DAG. Configured by GITHUB_WEBHOOK_SECRET, GITHUB_SYNC_DATABASE_URL, "
            "AIRFLOW_API_URL, AIRFLOW_API_USERNAME/AIRFLOW_API_PASSWORD, "
            f"{ENV_RELAY_HOST} (default 127.0.0.1), {ENV_RELAY_PORT}, {ENV_COALESCE_SECONDS} and the "
            "GITHUB_SYNC_RELAY_* limits listed in the README."
        ),
    )
    parser.add_argument("--host", help=f"listen address (overrides {ENV_RELAY_HOST})")
    parser.add_argument("--port", type=int, help=f"listen port (overrides {ENV_RELAY_PORT})")
    parser.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply pending schema migrations at start (then they must already be applied)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _prepare_database(settings: RelaySettings, *, migrate: bool) -> None:
    from github_sync.store.migrations import apply_migrations

    with psycopg.connect(settings.database_url, connect_timeout=5, autocommit=True) as conn:
        if migrate:
            # Idempotent and serialised by an advisory lock, so racing airflow-init is fine.
            applied = apply_migrations(conn)
            if applied:
                log.info("Applied migrations %s", applied)
        row = conn.execute("SELECT to_regclass('webhook_deliveries')").fetchone()
        if row is None or row[0] is None:
            raise RelayConfigError("table webhook_deliveries is missing: apply the migrations first")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the relay until interrupted.

    Args:
        argv: Command-line arguments (``sys.argv[1:]`` when None).

    Returns:
        The process exit status.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)
    try:
        settings = RelaySettings.from_env()
    except RelayConfigError as exc:
        log.error("Configuration error, not starting: %s", exc)
        return EXIT_CONFIG_ERROR
    try:
        _prepare_database(settings, migrate=not args.no_migrate)
    except RelayConfigError as exc:
        log.error("Database not ready, not starting: %s", exc)
        return EXIT_DATABASE_ERROR
    except psycopg.Error as exc:
        # The message could include the DSN's host but never its password (psycopg hides it).
        log.error("Cannot use the database (%s), not starting: %s", type(exc).__name__, exc)
        return EXIT_DATABASE_ERROR

    from github_sync.webhooks.relay.app import create_app
    from github_sync.webhooks.relay.server import serve

    serve(
        create_app(settings),
        settings,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level=args.log_level.lower(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
