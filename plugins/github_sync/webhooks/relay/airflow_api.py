"""A client of Airflow 3's public REST API for the one call the relay makes: trigger a DAG run.

``POST /api/v2/dags/{dag_id}/dagRuns`` with ``logical_date`` null and the batch's
deterministic ``dag_run_id``; a 409 means a previous attempt created the run (done, not an
error). Authentication is a JWT from ``POST /auth/token``, renewed shortly before it
expires and once more on a 401 (e.g. Airflow restarted with a new signing key).

Owns the HTTP requests, the token and the mapping of answers to outcomes: created, exists,
retry later (:class:`ForwardError`), refused for good (:class:`RejectedError`). Must not:
decide when to retry (the forwarder does), import Airflow, or put credentials or tokens in a
log line or an error (only statuses and a short excerpt of Airflow's answer).

Why this is hand-written rather than ``apache-airflow-client``: that client has no
``POST /auth/token`` (its own README fetches the JWT with ``requests``, as done here), so the
token handling stays ours either way. For the one call left it costs an import of about 480
modules (~2 s, ~55 MiB: every API and model), validates the answer into a strict
``DAGRunResponse`` the relay never reads (an answer with a field or enum value it does not
know would make a created run look failed), and retries connection errors inside urllib3,
under the forwarder's own backoff, unless configured not to. What it would replace is one
JSON POST and a status check.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import requests

from github_sync.config import WEBHOOK_DAG_ID
from github_sync.webhooks.relay.store import ForwardBatch

log = logging.getLogger(__name__)

TOKEN_PATH = "/auth/token"
DAG_RUNS_PATH = "/api/v2/dags/{dag_id}/dagRuns"
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0
# Renew the JWT this long before it expires, so a request never carries an expiring token.
TOKEN_RENEW_MARGIN_SECONDS = 60.0
# Used when the token's ``exp`` cannot be read; Airflow's default lifetime is longer.
FALLBACK_TOKEN_LIFETIME_SECONDS = 600.0
# Statuses after which resending the same request cannot succeed; anything else is retried.
PERMANENT_REJECTIONS = frozenset({400, 405, 413, 415, 422})
ERROR_BODY_EXCERPT = 300


class ForwardError(RuntimeError):
    """Airflow could not be reached or did not accept the run yet; the batch is retried.

    ``str(error)`` is the whole story (URL, Airflow's answer) for the log and the table;
    ``summary`` is what may be shown on the relay's endpoints: the kind of failure only.
    """

    def __init__(self, message: str, *, summary: str) -> None:
        super().__init__(message)
        self.summary = summary


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

    def _post(
        self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> requests.Response:
        url = self._api_url + path
        try:
            return self._session.post(url, json=body, headers=headers, timeout=self._timeout)
        except requests.Timeout as exc:
            raise ForwardError(
                f"Airflow did not answer POST {url} in time ({type(exc).__name__})",
                summary=f"Airflow timed out ({type(exc).__name__})",
            ) from None
        except requests.RequestException as exc:
            raise ForwardError(
                f"Airflow unreachable at {url}: {type(exc).__name__}",
                summary=f"Airflow unreachable ({type(exc).__name__})",
            ) from None

    def _auth_headers(self) -> dict[str, str]:
        if self._username is None:
            # No credentials configured: an Airflow that lets every request in.
            return {}
        if self._token is None or self._clock() >= self._token_expires_at - TOKEN_RENEW_MARGIN_SECONDS:
            self._fetch_token()
        return {"Authorization": f"Bearer {self._token}"}

    def _fetch_token(self) -> None:
        response = self._post(TOKEN_PATH, {"username": self._username, "password": self._password})
        if response.status_code not in (200, 201):
            # The body may echo the request; only the status is reported.
            raise ForwardError(
                f"Airflow {TOKEN_PATH} answered {response.status_code}: check AIRFLOW_API_USERNAME/PASSWORD",
                summary=f"Airflow refused the relay's credentials ({response.status_code})",
            )
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise ForwardError(
                f"Airflow {TOKEN_PATH} answered without an access_token",
                summary="Airflow gave no access token",
            ) from None
        self._token = str(token)
        expiry = _token_expiry(self._token)
        self._token_expires_at = (
            expiry if expiry is not None else self._clock() + FALLBACK_TOKEN_LIFETIME_SECONDS
        )
        log.info("Obtained an Airflow API token (expires in %.0f s)", self._token_expires_at - self._clock())

    def trigger(self, batch: ForwardBatch) -> TriggerOutcome:
        """Ask Airflow for the webhook DAG's run of ``batch``.

        Args:
            batch: The run id and delivery ids.

        Returns:
            CREATED, or EXISTS when Airflow already has a run with that id.

        Raises:
            RejectedError: Airflow refused the request for good.
            ForwardError: Airflow is unreachable, failing or not ready; try again later.
        """
        return self.trigger_run(self._dag_id, batch.dag_run_id, {"delivery_ids": list(batch.delivery_ids)})

    def trigger_run(self, dag_id: str, dag_run_id: str, conf: dict[str, Any]) -> TriggerOutcome:
        """Ask Airflow for a run of ``dag_id`` with this id and conf (409, an existing run, is EXISTS).

        Raises:
            RejectedError: Airflow refused the request for good.
            ForwardError: Airflow is unreachable, failing or not ready; try again later.
        """
        body: dict[str, Any] = {"dag_run_id": dag_run_id, "logical_date": None, "conf": conf}
        path = DAG_RUNS_PATH.format(dag_id=dag_id)
        response = self._post(path, body, self._auth_headers())
        if response.status_code == 401 and self._username is not None:
            # Expired or revoked token (e.g. Airflow restarted with a new signing key): renew once.
            self._token = None
            response = self._post(path, body, self._auth_headers())
        status = response.status_code
        if status in (200, 201):
            return TriggerOutcome.CREATED
        if status == 409:
            return TriggerOutcome.EXISTS
        excerpt = response.text[:ERROR_BODY_EXCERPT]
        message = f"Airflow answered {status} to POST {path} for {dag_run_id}: {excerpt}"
        summary = f"Airflow answered {status}"
        if status in PERMANENT_REJECTIONS:
            raise RejectedError(message, summary=summary)
        # 401/403 (credentials, permissions), 404 (DAG not parsed yet), 429, 5xx: may heal.
        raise ForwardError(message, summary=summary)
