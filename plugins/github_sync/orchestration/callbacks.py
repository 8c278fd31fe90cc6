"""DAG-level callbacks that write the one ``import_logs`` row of every sync run.

DAG-level callbacks run in Airflow's dag-processor (in-process under ``dag.test()``).
A callback that cannot reach the database logs it loudly and leaves the run marked
``logged = false`` in ``sync_runs``; the next run's row reports it as missing.

Owns when the row is written (a run's end, success or failure) and how a callback
fails (never raising into Airflow). Must not: decide what the row says (that is
:func:`github_sync.store.import_log.write_import_log`), or log connection details.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypedDict

from github_sync.config import DATABASE_CONN_ID
from github_sync.store.import_log import write_import_log

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

RUN_SUCCEEDED = "success"
RUN_FAILED = "failed"


class ImportLogCallbacks(TypedDict):
    """The DAG arguments :func:`import_log_callbacks` returns (typed, so ``**`` into ``@dag`` checks)."""

    on_success_callback: Callable[[Context], None]
    on_failure_callback: Callable[[Context], None]


def _write(context: Context, *, mode: str, state: str) -> None:
    dag_run = context["dag_run"]
    reason = context.get("reason")
    try:
        from github_sync.orchestration.runtime import open_database

        with open_database(DATABASE_CONN_ID) as conn:
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
    except Exception:
        # A callback that raises is only logged by Airflow, and less visibly than this.
        log.exception(
            "IMPORT LOG NOT WRITTEN for %s/%s (%s): the next run's import_logs row will report it missing",
            dag_run.dag_id,
            dag_run.run_id,
            state,
        )
        return
    log.info("import_logs row %s written for %s/%s (%s)", log_id, dag_run.dag_id, dag_run.run_id, state)


def import_log_callbacks(mode: str) -> ImportLogCallbacks:
    """``on_success_callback`` / ``on_failure_callback`` for a DAG of the given sync mode."""

    def on_success(context: Context) -> None:
        _write(context, mode=mode, state=RUN_SUCCEEDED)

    def on_failure(context: Context) -> None:
        _write(context, mode=mode, state=RUN_FAILED)

    return {"on_success_callback": on_success, "on_failure_callback": on_failure}
