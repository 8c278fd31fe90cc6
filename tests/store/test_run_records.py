"""The audit trail: one import_logs row per run, failures counted, a lost log reported by the next run."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import psycopg
import pytest

from github_sync.orchestration.callbacks import import_log_callbacks
from github_sync.store import import_log, run_records
from github_sync.store.import_log import ImportLogMetadata, RepositoryCounts, metadata_sql
from github_sync.store.run_records import RepositoryOutcome

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def open_run(cur: psycopg.Cursor, run_id: str, total: int = 2) -> None:
    run_records.open_run(cur, dag_id="github_full_sync", run_id=run_id, mode="full", owner="acme",
                         repositories_total=total)  # fmt: skip


def record(cur: psycopg.Cursor, run_id: str, repository: str, state: str, **fields: object) -> None:
    outcome = RepositoryOutcome(repository=repository, state=state, **fields)  # type: ignore[arg-type]
    run_records.record_repository_outcome(cur, dag_id="github_full_sync", run_id=run_id, outcome=outcome,
                                          try_number=1)  # fmt: skip


def test_one_row_per_run_with_counts_and_errors(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        open_run(cur, "r1", total=3)
        record(
            cur, "r1", "acme/a", "success", records=10, requests=4, budget_spent=4, rate_limit_remaining=4990
        )
        record(cur, "r1", "acme/b", "failed", records=0, records_failed=7, requests=2, error="GitHubServerError: 502",
               operation="sync_repository")  # fmt: skip
        record(cur, "r1", "acme/c", "skipped", error="gone")
        run_records.close_run(cur, dag_id="github_full_sync", run_id="r1", state="failed", details={})
        first = import_log.write_import_log(
            cur, dag_id="github_full_sync", run_id="r1", state="failed", now=NOW
        )
        again = import_log.write_import_log(
            cur, dag_id="github_full_sync", run_id="r1", state="failed", now=NOW
        )
    pg_conn.commit()
    assert first is not None and again is None  # a callback firing twice writes one row
    imported, failed, errors, metadata = pg_conn.execute(
        "SELECT records_imported, records_failed, errors, metadata FROM import_logs"
    ).fetchone()
    assert (imported, failed) == (10, 7)
    assert errors == [f"acme/b | sync_repository: GitHubServerError: 502 | {NOW.isoformat()}"]
    assert metadata["repositories"] == {"total": 3, "ok": 1, "failed": 1, "skipped": 1, "mapped": 3}
    assert metadata["skipped_repositories"] == {"acme/c": "gone"}
    assert metadata["requests"] == 6 and metadata["budget_spent"] == 4
    assert metadata["rate_limit_remaining"] == 4990
    assert "owners" not in metadata  # the run never recorded its owners list: no key, not null


def test_the_metadata_is_stored_exactly_as_the_record_defines_it(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        open_run(cur, "r3", total=2)
        record(cur, "r3", "acme/a", "success", records=3, requests=5, budget_spent=4, not_modified=1, retries=1,
               rate_limit_remaining=4000)  # fmt: skip
        record(cur, "r3", "acme/b", "skipped", error="gone")
        # What the listing task adds: its own requests and details, then its stage.
        listing = SimpleNamespace(requests_sent=2, budget_spent=2, not_modified=0, retries=0)
        run_records.add_run_details(cur, dag_id="github_full_sync", run_id="r3", stats=listing,
                                    details={"owners": ["acme"], "repositories_listed": 2})  # fmt: skip
        run_records.record_stage(cur, dag_id="github_full_sync", run_id="r3", mode="full", stage="list",
                                 error=None)  # fmt: skip
        run_records.close_run(cur, dag_id="github_full_sync", run_id="r3", state="success",
                              details={"failure_tolerance": 0, "run_errors": []})  # fmt: skip
        cur.execute(
            "UPDATE sync_runs SET started_at = %s, finished_at = %s WHERE run_id = 'r3' "
            "RETURNING started_at, finished_at",
            (NOW - timedelta(seconds=90), NOW - timedelta(seconds=30)),
        )
        started_at, finished_at = cur.fetchone()
        import_log.write_import_log(cur, dag_id="github_full_sync", run_id="r3", state="success", now=NOW)
    pg_conn.commit()
    (metadata,) = pg_conn.execute("SELECT metadata FROM import_logs").fetchone()
    assert metadata == {
        "dag_id": "github_full_sync",
        "run_id": "r3",
        "mode": "full",
        "owner": "acme",
        "state": "success",
        "repositories": {"total": 2, "ok": 1, "failed": 0, "skipped": 1, "mapped": 2},
        "failed_repositories": [],
        "skipped_repositories": {"acme/b": "gone"},
        # The repositories' sums plus the listing's own requests.
        "requests": 7,
        "budget_spent": 6,
        "not_modified": 1,
        "retries": 1,
        "rate_limit_remaining": 4000,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_s": 60.0,
        "missing_logs": [],
        # The run's details, as recorded.
        "owners": ["acme"],
        "repositories_listed": 2,
        "stages": {"list": {"state": "done"}},
        "failure_tolerance": 0,
        "run_errors": [],
    }
    # Read back and stored again, a row is unchanged: the record keeps every key it was given.
    assert (
        json.loads(json.dumps(ImportLogMetadata.from_stored(metadata).to_stored(), default=str)) == metadata
    )


def test_rows_of_any_version_read_back_without_failing() -> None:
    empty = ImportLogMetadata.from_stored({})
    assert empty.repositories is None and empty.owners is None and empty.missing_logs == []
    assert empty.to_stored() == {}
    # Of before runs listed their owners, with a key no writer of today knows.
    legacy = ImportLogMetadata.from_stored({"dag_id": "d", "run_id": "r", "owner": "Ghost", "later_key": 1})
    assert (legacy.owner, legacy.owners, legacy.run_details) == ("Ghost", None, {"later_key": 1})
    # A value of the wrong type is dropped, the rest of the row kept.
    odd = ImportLogMetadata.from_stored(
        {"run_id": "r", "requests": "many", "repositories": [1], "state": "failed"}
    )
    assert (odd.requests, odd.repositories, odd.state) == (None, None, "failed")
    partial = ImportLogMetadata.from_stored({"repositories": {"total": 3}})
    assert partial.repositories == RepositoryCounts(total=3)


def test_sql_readers_can_only_name_keys_of_the_record() -> None:
    assert metadata_sql("state") == "(metadata ->> 'state')"
    assert metadata_sql("owners", as_text=False) == "(metadata -> 'owners')"
    with pytest.raises(KeyError):
        metadata_sql("sate")


def test_a_spent_budget_is_recorded_as_zero_not_as_unknown(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        open_run(cur, "r2", total=1)
        record(cur, "r2", "acme/a", "success", records=1, rate_limit_remaining=4990)
        # The run's last word on the budget (from a run-level task) is 0: it must win, not vanish.
        run_records.close_run(cur, dag_id="github_full_sync", run_id="r2", state="success",
                              details={"rate_limit_remaining": 0})  # fmt: skip
        import_log.write_import_log(cur, dag_id="github_full_sync", run_id="r2", state="success", now=NOW)
    pg_conn.commit()
    assert pg_conn.execute("SELECT metadata->'rate_limit_remaining' FROM import_logs").fetchone() == (0,)


def test_a_run_that_failed_before_any_repository_still_says_why(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO sync_runs (dag_id, run_id, mode, state) VALUES ('github_full_sync', 'r0', 'full', 'failed')"
        )
        import_log.write_import_log(cur, dag_id="github_full_sync", run_id="r0", state="failed", now=NOW,
                                     reason="task_failure")  # fmt: skip
    pg_conn.commit()
    assert pg_conn.execute("SELECT errors FROM import_logs").fetchone() == (
        [f"run | task_failure | {NOW.isoformat()}"],
    )


def test_the_next_run_reports_a_log_its_callback_could_not_write(pg_conn: psycopg.Connection) -> None:
    with pg_conn.cursor() as cur:
        open_run(cur, "lost")
        run_records.close_run(cur, dag_id="github_full_sync", run_id="lost", state="success", details={})
        # ... and its callback never reached the database: sync_runs.logged stays false.
        open_run(cur, "next")
        run_records.close_run(cur, dag_id="github_full_sync", run_id="next", state="success", details={})
        import_log.write_import_log(cur, dag_id="github_full_sync", run_id="next", state="success",
                                     now=NOW + timedelta(hours=1))  # fmt: skip
    pg_conn.commit()
    (metadata,) = pg_conn.execute("SELECT metadata FROM import_logs").fetchone()
    assert metadata["missing_logs"] == ["github_full_sync/lost"]
    assert pg_conn.execute("SELECT logged FROM sync_runs WHERE run_id = 'lost'").fetchone() == (True,)


def test_a_callback_that_cannot_reach_the_database_says_so_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    monkeypatch.setenv(
        "AIRFLOW_CONN_GITHUB_SYNC_DB",
        '{"conn_type": "postgres", "host": "127.0.0.1", "port": 9, "login": "postgres", "schema": "x"}',
    )
    # A handler of our own: importing Airflow (which the callback does) reconfigures logging,
    # which would detach pytest's caplog handler.
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("github_sync.orchestration.callbacks")
    logger.addHandler(handler)
    try:
        context = {"dag_run": SimpleNamespace(dag_id="github_full_sync", run_id="r9"), "reason": "success"}
        import_log_callbacks("full")["on_success_callback"](context)
    finally:
        logger.removeHandler(handler)
    assert any("IMPORT LOG NOT WRITTEN for github_full_sync/r9" in r.getMessage() for r in records)


def test_retention_prunes_only_old_state(pg_conn: psycopg.Connection) -> None:
    from github_sync.store.retention import prune

    pg_conn.execute(
        "INSERT INTO github_http_cache (token_hash, url, body, stored_at) VALUES "
        "('t', 'old', '\\x00', %s), ('t', 'new', '\\x00', %s)",
        (NOW - timedelta(days=31), NOW - timedelta(days=1)),
    )
    pg_conn.execute(
        "INSERT INTO webhook_deliveries (delivery_id, event, payload, status, received_at) VALUES "
        "('a', 'ping', '{}', 'processed', %s), ('b', 'ping', '{}', 'pending', %s), ('c', 'ping', '{}', 'processed', %s)",
        (NOW - timedelta(days=40), NOW - timedelta(days=40), NOW),
    )
    with pg_conn.cursor() as cur:
        assert prune(cur, now=NOW) == {"http_cache": 1, "webhook_deliveries": 1}
    pg_conn.commit()
    assert pg_conn.execute("SELECT url FROM github_http_cache").fetchall() == [("new",)]
    assert sorted(pg_conn.execute("SELECT delivery_id FROM webhook_deliveries").fetchall()) == [
        ("b",),
        ("c",),
    ]


def test_opening_a_run_again_forgets_its_repositories_so_a_cleared_run_syncs_them_again(
    pg_conn: psycopg.Connection,
) -> None:
    with pg_conn.cursor() as cursor:
        open_run(cursor, "r")
        record(cursor, "r", "acme/a", "success")
        record(cursor, "r", "acme/b", "failed")
        settled = run_records.settled_repositories(
            cursor, dag_id="github_full_sync", run_id="r", repositories=["acme/a", "acme/b"]
        )
        assert settled == {"acme/a"}  # what a retried or resumed shard passes over
        open_run(cursor, "r")
        assert (
            run_records.settled_repositories(
                cursor, dag_id="github_full_sync", run_id="r", repositories=["acme/a"]
            )
            == set()
        )
