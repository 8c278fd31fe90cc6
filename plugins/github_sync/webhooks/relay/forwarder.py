"""Forward stored deliveries to Airflow as DAG runs of ``github_webhook_events``.

The forwarder is a background thread: the HTTP handler only stores a delivery and wakes it,
so GitHub gets its answer within its 10 s window whatever state Airflow is in.

* Coalescing: after a wake-up the thread waits ``coalesce_seconds`` for the rest of a burst,
  then puts every pending delivery (up to ``max_ids`` per run) into one DAG run whose conf
  carries the delivery ids only (never payloads).
* Exactly one run per batch: a batch's deterministic ``dag_run_id`` is committed to the
  deliveries before the trigger request; a retry (after a timeout, an error or a restart)
  sends the same id, and Airflow's 409 "already exists" counts as done.
* Outages: while Airflow is unreachable or failing, the batches already assigned are retried
  with exponential backoff and nothing new is assigned, so the backlog becomes few runs once
  Airflow is back. On start the thread picks up whatever was left pending.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from github_sync.webhooks.apply import WEBHOOK_DAG_ID
from github_sync.webhooks.relay.store import DeliveryStore, ForwardBatch

log = logging.getLogger(__name__)

TOKEN_PATH = "/auth/token"
DAG_RUNS_PATH = "/api/v2/dags/{dag_id}/dagRuns"
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0
# Renew the JWT this long before it expires, so a request never carries an expiring token.
TOKEN_RENEW_MARGIN_SECONDS = 60.0
# Used when the token's ``exp`` cannot be read; Airflow's default lifetime is longer.
FALLBACK_TOKEN_LIFETIME_SECONDS = 600.0
DEFAULT_BACKOFF_INITIAL_SECONDS = 1.0
DEFAULT_BACKOFF_MAX_SECONDS = 60.0
BACKOFF_JITTER = 0.1
# Safety net: look at the table this often even without a wake-up (another relay's leftovers).
DEFAULT_POLL_SECONDS = 5.0
# Statuses after which resending the same request cannot succeed; anything else is retried.
PERMANENT_REJECTIONS = frozenset({400, 405, 413, 415, 422})
ERROR_BODY_EXCERPT = 300


class ForwardError(RuntimeError):
    """Airflow could not be reached or did not accept the run yet; the batch is retried."""


class RejectedError(ForwardError):
    """Airflow refused the run for good (a malformed request); the batch is failed, not retried."""


class TriggerOutcome(enum.Enum):
    """What Airflow did with a trigger request."""

    CREATED = "created"
    EXISTS = "exists"  # 409: a previous attempt created it (e.g. its answer timed out)


def _token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (epoch seconds), read without verifying: only to renew early."""
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        return None


class AirflowClient:
    """Triggers DAG runs through Airflow 3's public REST API, with a JWT from ``/auth/token``."""

    def __init__(
        self,
        api_url: str,
        username: str | None,
        password: str | None,
        *,
        dag_id: str = WEBHOOK_DAG_ID,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._username = username
        self._password = password
        self._dag_id = dag_id
        self._timeout = timeout
        self._session = session or requests.Session()
        self._clock = clock
        self._token: str | None = None
        self._token_expires_at = 0.0

    def _post(self, path: str, **kwargs: Any) -> requests.Response:
        url = self._api_url + path
        try:
            return self._session.post(url, timeout=self._timeout, **kwargs)
        except requests.Timeout as exc:
            raise ForwardError(f"Airflow did not answer POST {url} in time ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise ForwardError(f"Airflow unreachable at {url}: {type(exc).__name__}") from None

    def _auth_headers(self) -> dict[str, str]:
        if self._username is None:
            # No credentials configured: an Airflow that lets every request in.
            return {}
        if self._token is None or self._clock() >= self._token_expires_at - TOKEN_RENEW_MARGIN_SECONDS:
            self._fetch_token()
        return {"Authorization": f"Bearer {self._token}"}

    def _fetch_token(self) -> None:
        response = self._post(TOKEN_PATH, json={"username": self._username, "password": self._password})
        if response.status_code not in (200, 201):
            # The body may echo the request; only the status is reported.
            raise ForwardError(
                f"Airflow {TOKEN_PATH} answered {response.status_code}: check AIRFLOW_API_USERNAME/PASSWORD"
            )
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise ForwardError(f"Airflow {TOKEN_PATH} answered without an access_token") from None
        self._token = str(token)
        expiry = _token_expiry(self._token)
        self._token_expires_at = (
            expiry if expiry is not None else self._clock() + FALLBACK_TOKEN_LIFETIME_SECONDS
        )
        log.info("Obtained an Airflow API token (expires in %.0f s)", self._token_expires_at - self._clock())

    def trigger(self, batch: ForwardBatch) -> TriggerOutcome:
        """Ask Airflow for the DAG run of ``batch``.

        Args:
            batch: The run id and delivery ids.

        Returns:
            CREATED, or EXISTS when Airflow already has a run with that id.

        Raises:
            RejectedError: Airflow refused the request for good.
            ForwardError: Airflow is unreachable, failing or not ready; try again later.
        """
        body = {
            "dag_run_id": batch.dag_run_id,
            "logical_date": None,
            "conf": {"delivery_ids": list(batch.delivery_ids)},
        }
        path = DAG_RUNS_PATH.format(dag_id=self._dag_id)
        response = self._post(path, json=body, headers=self._auth_headers())
        if response.status_code == 401 and self._username is not None:
            # Expired or revoked token (e.g. Airflow restarted with a new signing key): renew once.
            self._token = None
            response = self._post(path, json=body, headers=self._auth_headers())
        status = response.status_code
        if status in (200, 201):
            return TriggerOutcome.CREATED
        if status == 409:
            return TriggerOutcome.EXISTS
        excerpt = response.text[:ERROR_BODY_EXCERPT]
        message = f"Airflow answered {status} to POST {path} for {batch.dag_run_id}: {excerpt}"
        if status in PERMANENT_REJECTIONS:
            raise RejectedError(message)
        # 401/403 (credentials, permissions), 404 (DAG not parsed yet), 429, 5xx: may heal.
        raise ForwardError(message)


@dataclass
class ForwarderStats:
    """What the forwarder did since it started (exposed on /stats)."""

    runs_created: int = 0
    runs_existing: int = 0
    batches_rejected: int = 0
    deliveries_forwarded: int = 0
    failed_attempts: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_forwarded_at: str | None = None


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
        self._store = store
        self._client = client
        self._coalesce_seconds = coalesce_seconds
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
        """A delivery was stored: forward it (after the coalescing window)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.wait(self._poll_seconds)
            if self._stop.is_set():
                return
            self._wake.clear()
            # Let the rest of a burst arrive so that it becomes one run. Not while retrying:
            # the backoff already gave the burst time.
            if woken and self.stats.consecutive_failures == 0 and self._coalesce_seconds > 0:
                if self._stop.wait(self._coalesce_seconds):
                    return
            try:
                done = self.forward_pending()
            except Exception:
                # A database error: keep the thread alive and try again after the backoff.
                log.exception("Forwarding failed; retrying")
                done = False
                self.stats.consecutive_failures += 1
            if done:
                continue
            delay = self._backoff_delay()
            log.warning(
                "Forwarding incomplete (%d consecutive failures); retrying in %.1f s",
                self.stats.consecutive_failures,
                delay,
            )
            if self._stop.wait(delay):
                return
            self._wake.set()

    def _backoff_delay(self) -> float:
        exponent = max(self.stats.consecutive_failures - 1, 0)
        delay = min(self._backoff_initial * (2**exponent), self._backoff_max)
        return delay * (1 + random.uniform(-BACKOFF_JITTER, BACKOFF_JITTER))

    def forward_pending(self) -> bool:
        """Forward everything waiting, oldest first; return False when Airflow must be retried later.

        Assigned-but-unconfirmed batches go first (with their original run ids). New batches are
        only assigned once those are through, so an outage's backlog is coalesced afterwards.
        """
        with self._lock:
            for batch in self._store.unforwarded_batches():
                if not self._send(batch):
                    return False
            # Deliveries arriving while this pass runs wait for the next window; without the
            # cut-off a steady trickle would be sent as many one-delivery runs.
            cutoff = self._store.database_time()
            while (batch := self._store.assign_batch(self._max_ids, cutoff)) is not None:
                if not self._send(batch):
                    return False
            return True

    def _send(self, batch: ForwardBatch) -> bool:
        try:
            outcome = self._client.trigger(batch)
        except RejectedError as exc:
            log.error("Airflow rejected %s (%d deliveries), marking them failed: %s", batch.dag_run_id,
                      len(batch.delivery_ids), exc)  # fmt: skip
            self._store.record_attempt(batch, str(exc))
            self._store.mark_rejected(batch, str(exc))
            self.stats.batches_rejected += 1
            return True
        except ForwardError as exc:
            log.warning("Could not forward %s: %s", batch.dag_run_id, exc)
            self._store.record_attempt(batch, str(exc))
            self.stats.failed_attempts += 1
            self.stats.consecutive_failures += 1
            self.stats.last_error = str(exc)
            return False
        self._store.record_attempt(batch, None)
        forwarded = self._store.mark_forwarded(batch)
        if outcome is TriggerOutcome.CREATED:
            self.stats.runs_created += 1
        else:
            self.stats.runs_existing += 1
        self.stats.deliveries_forwarded += forwarded
        self.stats.consecutive_failures = 0
        self.stats.last_forwarded_at = datetime.now(UTC).isoformat()
        log.info(
            "Forwarded %d deliveries as DAG run %s (%s)", len(batch.delivery_ids), batch.dag_run_id,
            outcome.value,
        )  # fmt: skip
        return True
