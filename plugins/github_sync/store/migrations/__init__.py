"""Versioned schema migrations for the target database, applied idempotently.

Migrations are the ``NNNN_name.sql`` files beside this module, applied in order, each
in its own transaction, and recorded in ``schema_migrations`` with a checksum. A
session-level advisory lock serialises concurrent appliers (``make run`` and
``airflow-init`` may race). An applied migration whose file has changed since is an
error: migrations are append-only, a fix is a new file.

This module owns applying and checking them; it must not hold schema itself (that is the
``.sql`` files) or touch any table but ``schema_migrations`` outside a migration.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent
# Arbitrary constant shared by every applier of this schema (pg_advisory_lock key).
MIGRATION_LOCK_KEY = 0x6769_7468_7562  # "github"


class MigrationError(RuntimeError):
    """A migration could not be applied, or an applied one was edited afterwards."""


class SchemaNotReady(MigrationError):
    """The target schema is missing or behind, and this process may not migrate it."""


@dataclass(frozen=True)
class Migration:
    """One SQL migration file."""

    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Return the migration files of ``directory`` in the order they apply."""
    migrations = [Migration(version=path.stem, path=path) for path in sorted(directory.glob("[0-9]*.sql"))]
    versions = [m.version.split("_", 1)[0] for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number in {directory}: {versions}")
    return migrations


def apply_migrations(conn: psycopg.Connection[Any], directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration; return the versions applied by this call.

    Args:
        conn: an open psycopg connection to the target database (any autocommit mode;
            each migration runs in its own transaction).
        directory: where the ``NNNN_name.sql`` files are.

    Raises:
        MigrationError: an applied migration's file changed, or a migration failed
            (its transaction is rolled back; earlier ones stay applied).
    """
    previous_autocommit = conn.autocommit
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.commit()
    conn.autocommit = True
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            return _apply_locked(conn, directory)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    finally:
        conn.autocommit = previous_autocommit


def _apply_locked(conn: psycopg.Connection[Any], directory: Path) -> list[str]:
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    text        PRIMARY KEY,
            checksum   text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    applied = _applied_checksums(conn)
    newly_applied: list[str] = []
    for migration in _unapplied(discover_migrations(directory), applied):
        try:
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                    (migration.version, migration.checksum),
                )
        except psycopg.Error as exc:
            raise MigrationError(f"migration {migration.version} failed: {exc}") from exc
        log.info("Applied migration %s", migration.version)
        newly_applied.append(migration.version)
    if not newly_applied:
        log.info("Schema is up to date (%d migrations)", len(applied))
    return newly_applied


def pending_migrations(conn: psycopg.Connection[Any], directory: Path = MIGRATIONS_DIR) -> list[str]:
    """The versions not yet applied (all of them on an empty database); reads only.

    Raises:
        MigrationError: an applied migration's file changed since.
    """
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    applied = _applied_checksums(conn) if exists and exists[0] else {}
    return [migration.version for migration in _unapplied(discover_migrations(directory), applied)]


def _applied_checksums(conn: psycopg.Connection[Any]) -> dict[str, str]:
    return {
        str(version): str(checksum)
        for version, checksum in conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    }


def _unapplied(migrations: list[Migration], applied: dict[str, str]) -> list[Migration]:
    """The migrations not in ``applied`` (version -> checksum), in order.

    Raises:
        MigrationError: an applied migration's file changed since.
    """
    unapplied = []
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is None:
            unapplied.append(migration)
        elif recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.version} was applied with checksum {recorded[:12]} but "
                f"{migration.path.name} now has {migration.checksum[:12]}: migrations are "
                "append-only, write a new one instead of editing an applied one"
            )
    return unapplied


def ensure_schema(
    conn: psycopg.Connection[Any], *, auto_migrate: bool, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """Bring the target schema up to date, or, with ``auto_migrate`` off, check that it is.

    What a run's first task calls, so that a package installed into an existing Airflow
    works on its first run. Cheap when nothing is pending: one locked read of
    ``schema_migrations``. Returns the versions applied by this call.

    Raises:
        SchemaNotReady: ``auto_migrate`` is off and migrations are pending (names them and
            the command that applies them).
        MigrationError: a migration failed or an applied one was edited.
    """
    # Read-only first: an up-to-date schema costs one query and needs no CREATE privilege.
    pending = pending_migrations(conn, directory)
    conn.rollback()  # leave no transaction open on the caller's connection
    if pending and auto_migrate:
        try:
            return apply_migrations(conn, directory)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise SchemaNotReady(
                f"the target database needs migrations {', '.join(pending)} but this connection may not "
                f"change its schema ({exc}): run `github-sync migrate` as the schema's owner, or set "
                "GITHUB_SYNC_AUTO_MIGRATE=false once it is migrated"
            ) from exc
    if pending:
        state = (
            "has no github-sync schema"
            if len(pending) == len(discover_migrations(directory))
            else "is behind"
        )
        raise SchemaNotReady(
            f"the target database {state} (pending migrations: {', '.join(pending)}) and automatic "
            "migration is off (GITHUB_SYNC_AUTO_MIGRATE=false): run `github-sync migrate` with "
            "GITHUB_SYNC_DATABASE_URL pointing at it, then trigger the run again"
        )
    return []
