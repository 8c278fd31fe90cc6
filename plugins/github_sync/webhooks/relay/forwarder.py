"""Forward stored deliveries to Airflow as DAG runs of ``github_webhook_events``.

The forwarder is a background thread: the HTTP handler only stores a delivery and wakes it,
so GitHub gets its answer within its 10 s window whatever state Airflow is in.

* Leading edge: a wake-up with no webhook run in flight forwards at once; deliveries that
  arrive while a run is in flight wait until it finishes, then all go as one run (up to
  ``max_ids`` per run; the conf carries delivery ids only, never payloads). "In flight" is
  read from the database (forwarded rows the DAG has not yet marked processed or failed), so
  every relay on the database agrees and a restart changes nothing. The wait has a ceiling,
  ``coalesce_seconds``: a forwarded row older than that no longer counts as in flight, so a
  run that never finishes (crashed, cleared, deleted) cannot hold forwarding back.
* Exactly one run per batch: a batch's deterministic ``dag_run_id`` is committed to the
  deliveries before the trigger request; a retry (after a timeout, an error or a restart)
  sends the same id, and Airflow's 409 "already exists" counts as done.
* Outages: while Airflow is unreachable or failing, the batches already assigned are retried
  with exponential backoff (tenacity) and nothing new is assigned, so the backlog becomes few
  runs once Airflow is back. On start the thread picks up whatever was left pending.

Owns the forwarding schedule: when to assign a batch, when to send it, what an outcome of
:mod:`.airflow_api` does to the rows. Must not: speak HTTP itself (:mod:`.airflow_api` does),
write SQL (:mod:`.store` does), or send payloads (only delivery ids).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_result,
    stop_when_event_set,
    wait_exponential,
    wait_random,
)
from tenacity.wait import wait_base

from github_sync.webhooks.relay.airflow_api import (
    AirflowClient,
    ForwardError,
    RejectedError,
    TriggerOutcome,
)
from github_sync.webhooks.relay.store import DeliveryStore, ForwardBatch

log = logging.getLogger(__name__)

DEFAULT_BACKOFF_INITIAL_SECONDS = 1.0
DEFAULT_BACKOFF_MAX_SECONDS = 60.0
# Safety net: look at the table this often even without a wake-up (another relay's leftovers).
DEFAULT_POLL_SECONDS = 5.0
# While a run is in flight, look this often whether the DAG has finished it: the delay this
# adds to the next run is at most this; the query is one small aggregate (DeliveryStore.in_flight_wait_left).
IN_FLIGHT_RECHECK_SECONDS = 0.2


def retry_wait(initial: float, maximum: float) -> wait_base:
    """The forwarder's backoff: ``initial * 2**(n-1)`` capped at ``maximum``, plus up to ``initial`` of jitter.

    The jitter is added after the cap (``wait_exponential_jitter`` caps the sum), so relays
    that all wait the cap still retry out of step.
    """
    return wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial)


@dataclass
class ForwarderStats:
    """What the forwarder did since it started (exposed on /stats)."""

    runs_created: int = 0
    runs_existing: int = 0
    batches_rejected: int = 0
    deliveries_forwarded: int = 0
    failed_attempts: int = 0
    consecutive_failures: int = 0
    # The kind of the last failure only (ForwardError.summary): the URL and Airflow's answer
    # are in the log and in webhook_deliveries.last_error, not on the relay's endpoints.
    last_error: str | None = None
    # When the current run of failures began (None while forwarding works).
    failing_since: str | None = None
    last_forwarded_at: str | None = None
    # Re-checks made while a run was in flight (each one is IN_FLIGHT_RECHECK_SECONDS at most).
    in_flight_waits: int = 0


class Forwarder:
    """The background thread that turns pending deliveries into DAG runs."""

    def __init__(
        self,
        store: DeliveryStore,
        client: AirflowClient,
        *,
        coalesce_seconds: float,
        max_ids_per_run: int,
        backoff_initial: float = DEFAULT_BACKOFF_INITIAL_SECONDS,
        backoff_max: float = DEFAULT_BACKOFF_MAX_SECONDS,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        """Args (those that are not obvious):

        coalesce_seconds: The ceiling of the in-flight wait: the longest a delivery waits for
            the webhook run in flight (``GITHUB_SYNC_RELAY_COALESCE_SECONDS``); 0 forwards on
            every wake-up.
        max_ids_per_run: The most delivery ids one DAG run's conf carries.
        """
        self._store = store
        self._client = client
        # Named for what it now is: the leading-edge forwarder coalesces only while a run is in flight.
        self._max_in_flight_wait = coalesce_seconds
        self._max_ids = max_ids_per_run
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.stats = ForwarderStats()

    def start(self) -> None:
        """Start the thread; it first forwards whatever a previous process left pending."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._wake.set()
        self._thread = threading.Thread(target=self._run, name="github-sync-relay-forwarder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (pending deliveries stay in the table for the next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def notify(self) -> None:
        """A delivery was stored: forward it (at once, or when the run in flight is done)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._poll_seconds)
            if self._stop.is_set():
                return
            self._wake.clear()
            # Coalesce only while a run is in flight: what arrives meanwhile becomes one run.
            # (Retries happen inside _forward_until_done: their backoff already gives a burst time.)
            if self._wait_while_in_flight():
                return
            self._forward_until_done()

    def _wait_while_in_flight(self) -> bool:
        """Wait until no webhook run is in flight (or the ceiling passed); True when stopped meanwhile."""
        while True:
            try:
                left = self._store.in_flight_wait_left(self._max_in_flight_wait)
            except Exception:
                # The database is unreachable: forwarding would fail the same way, and its
                # backoff handles that; waiting here would only hide the outage.
                log.warning("Could not tell whether a webhook run is in flight", exc_info=True)
                return self._stop.is_set()
            if left <= 0:
                return self._stop.is_set()
            self.stats.in_flight_waits += 1
            if self._stop.wait(min(left, IN_FLIGHT_RECHECK_SECONDS)):
                return True

    def _forward_until_done(self) -> None:
        """Forward what is pending, retrying with exponential backoff until done or stopped."""
        retrying = Retrying(
            retry=retry_if_result(lambda done: not done),
            wait=retry_wait(self._backoff_initial, self._backoff_max),
            stop=stop_when_event_set(self._stop),
            sleep=self._sleep_unless_stopped,
            before_sleep=self._log_retry,
            # Stopped while failing: what is left stays pending for the next start.
            retry_error_callback=lambda _state: False,
        )
        retrying(self._attempt)

    def _attempt(self) -> bool:
        if self._stop.is_set():
            return True  # stop() interrupted the backoff: nothing more to do in this process
        try:
            return self.forward_pending()
        except Exception:
            # A database error (or a bug): keep the thread alive and retry after the backoff.
            log.exception("Forwarding failed; retrying")
            self.stats.consecutive_failures += 1
            return False

    def _sleep_unless_stopped(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _log_retry(self, retry_state: RetryCallState) -> None:
        delay = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
        log.warning(
            "Forwarding incomplete (%d consecutive failures); retrying in %.1f s",
            self.stats.consecutive_failures,
            delay,
        )

    def forward_pending(self) -> bool:
        """Forward everything waiting, oldest first; return False when Airflow must be retried later.

        Assigned-but-unconfirmed batches go first (with their original run ids). New batches are
        only assigned once those are through, so an outage's backlog is coalesced afterwards.
        Whether a run is in flight is not looked at here (the thread waits for that before it
        calls this): a pass sends everything received up to its start, ``max_ids`` per run.
        """
        with self._lock:
            for unconfirmed in self._store.unforwarded_batches():
                if not self._send(unconfirmed):
                    return False
            # Deliveries arriving while this pass runs wait for the next window; without the
            # cut-off a steady trickle would be sent as many one-delivery runs.
            cutoff = self._store.database_time()
            while (batch := self._store.assign_batch(self._max_ids, cutoff)) is not None:
                if not self._send(batch):
                    return False
                if len(batch.delivery_ids) < self._max_ids:
                    # Only a full batch means a backlog to chunk. A short one is now in flight:
                    # what committed meanwhile (received before the cut-off, committed after the
                    # batch was read) waits for it, with whatever arrives after it (the stores
                    # woke the thread), instead of becoming a second run right behind it.
                    break
            return True

    def _send(self, batch: ForwardBatch) -> bool:
        try:
            outcome = self._client.trigger(batch)
        except RejectedError as exc:
            log.error(
                "Airflow rejected %s (%d deliveries), marking them failed: %s",
                batch.dag_run_id,
                len(batch.delivery_ids),
                exc,
            )
            self._store.record_attempt(batch, str(exc))
            self._store.mark_rejected(batch, str(exc))
            self.stats.batches_rejected += 1
            return True
        except ForwardError as exc:
            log.warning("Could not forward %s: %s", batch.dag_run_id, exc)
            self._store.record_attempt(batch, str(exc))
            self.stats.failed_attempts += 1
            if self.stats.consecutive_failures == 0:
                self.stats.failing_since = datetime.now(UTC).isoformat()
            self.stats.consecutive_failures += 1
            self.stats.last_error = exc.summary
            return False
        self._store.record_attempt(batch, None)
        forwarded = self._store.mark_forwarded(batch)
        if outcome is TriggerOutcome.CREATED:
            self.stats.runs_created += 1
        else:
            self.stats.runs_existing += 1
        self.stats.deliveries_forwarded += forwarded
        self.stats.consecutive_failures = 0
        self.stats.failing_since = None
        self.stats.last_forwarded_at = datetime.now(UTC).isoformat()
        log.info(
            "Forwarded %d deliveries as DAG run %s (%s)",
            len(batch.delivery_ids),
            batch.dag_run_id,
            outcome.value,
        )
        return True
