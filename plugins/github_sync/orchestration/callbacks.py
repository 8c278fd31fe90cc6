"""DAG-level callbacks that write the one ``import_logs`` row of every sync run.

DAG-level callbacks run in Airflow's dag-processor (in-process under ``dag.test()``).
A callback that cannot reach the database logs it loudly and leaves the run marked
``logged = false`` in ``sync_runs``; the next run's row reports it as missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from github_sync.config import DATABASE_CONN_ID
from github_sync.store.run_records import write_import_log

log = logging.getLogger(__name__)


def _write(context: Any, *, mode: str, state: str) -> None:
    dag_run = context["dag_run"]
    reason = context.get("reason")
    try:
        from github_sync.orchestration.runtime import connect_database

        conn = connect_database(DATABASE_CONN_ID)
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO sync_runs (dag_id, run_id, mode, state) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (dag_id, run_id) DO NOTHING",
                    (dag_run.dag_id, dag_run.run_id, mode, state),
                )
                log_id = write_import_log(
                    cursor,
                    dag_id=dag_run.dag_id,
                    run_id=dag_run.run_id,
                    state=state,
                    now=datetime.now(UTC),
                    reason=str(reason) if reason else None,
                )
            conn.commit()
        finally:
            conn.close()
    except Exception:
        log.exception(
            "IMPORT LOG NOT WRITTEN for %s/%s (%s): the next run's import_logs row will report it missing",
            dag_run.dag_id,
            dag_run.run_id,
            state,
        )
        return
    log.info("import_logs row %s written for %s/%s (%s)", log_id, dag_run.dag_id, dag_run.run_id, state)


def import_log_callbacks(mode: str) -> dict[str, Callable[[Any], None]]:
    """``on_success_callback`` / ``on_failure_callback`` for a DAG of the given sync mode."""

    def on_success(context: Any) -> None:
        _write(context, mode=mode, state="success")

    def on_failure(context: Any) -> None:
        _write(context, mode=mode, state="failed")

    return {"on_success_callback": on_success, "on_failure_callback": on_failure}
