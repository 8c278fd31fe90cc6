"""The schema migrations against the real PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from github_sync.store.migrations import MIGRATIONS_DIR, MigrationError, apply_migrations, discover_migrations

SCHEMA_FINGERPRINT_SQL = """
SELECT 'column', table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
       || ' ' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'migration', version || ' ' || checksum || ' ' || applied_at FROM schema_migrations
ORDER BY 1, 2
"""


def test_migrations_apply_twice_and_change_nothing_the_second_time(empty_database: str) -> None:
    with psycopg.connect(empty_database) as conn:
        first = apply_migrations(conn)
        assert first == [m.version for m in discover_migrations()]
        before = conn.execute(SCHEMA_FINGERPRINT_SQL).fetchall()
        second = apply_migrations(conn)
        after = conn.execute(SCHEMA_FINGERPRINT_SQL).fetchall()
    assert second == []
    assert before == after
    tables = {row[1].split(".")[0] for row in before if row[0] == "column"}
    assert {
        "projects", "bugs", "pull_requests", "commits", "project_metrics", "import_logs",
        "sync_cursors", "github_http_cache", "webhook_deliveries", "sync_runs", "sync_repository_runs",
    } <= tables  # fmt: skip


def test_an_edited_applied_migration_is_refused(empty_database: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    with psycopg.connect(empty_database) as conn:
        apply_migrations(conn, migrations)
        first = sorted(migrations.glob("0001_*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match="append-only"):
            apply_migrations(conn, migrations)


def test_a_failing_migration_rolls_back_alone(empty_database: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (migrations / "9999_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_function();\n"
    )
    with psycopg.connect(empty_database) as conn:
        with pytest.raises(MigrationError, match="9999_broken"):
            apply_migrations(conn, migrations)
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
    assert "9999_broken" not in applied
    assert "0001_initial" in applied


def test_ensure_schema_migrates_an_empty_database_or_refuses_naming_the_command(
    empty_database: str, tmp_path: Path
) -> None:
    from github_sync.store.migrations import SchemaNotReady, ensure_schema, pending_migrations

    versions = [m.version for m in discover_migrations()]
    with psycopg.connect(empty_database) as conn:
        assert pending_migrations(conn) == versions
        with pytest.raises(SchemaNotReady, match=r"has no github-sync schema.*`github-sync migrate`"):
            ensure_schema(conn, auto_migrate=False)
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (
            None,
        )  # nothing written

        first_only = tmp_path / "first"
        first_only.mkdir()
        shutil.copy(MIGRATIONS_DIR / "0001_initial.sql", first_only)
        apply_migrations(conn, first_only)
        with pytest.raises(SchemaNotReady, match=r"is behind \(pending migrations: 0002"):
            ensure_schema(conn, auto_migrate=False)

        assert ensure_schema(conn, auto_migrate=True) == versions[1:]
        assert ensure_schema(conn, auto_migrate=False) == []  # up to date: the check passes
        assert ensure_schema(conn, auto_migrate=True) == []


def test_the_auto_migrate_setting_is_validated() -> None:
    from github_sync.config import ConfigError, auto_migrate_enabled

    assert auto_migrate_enabled({}) is True
    assert auto_migrate_enabled({"GITHUB_SYNC_AUTO_MIGRATE": " False "}) is False
    assert auto_migrate_enabled({"GITHUB_SYNC_AUTO_MIGRATE": "yes"}) is True
    with pytest.raises(ConfigError, match="GITHUB_SYNC_AUTO_MIGRATE must be true or false"):
        auto_migrate_enabled({"GITHUB_SYNC_AUTO_MIGRATE": "maybe"})
