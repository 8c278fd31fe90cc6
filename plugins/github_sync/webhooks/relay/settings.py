"""The relay's configuration, read from the environment and validated before anything starts.

The webhook secret is required: a relay without one would have to accept unsigned
deliveries, so it refuses to start instead. Secrets are kept out of ``repr`` and out of
every error message (a message names the variable, never its value).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from github_sync.config import ENV_DATABASE_URL, ENV_WEBHOOK_SECRET, ConfigError

ENV_AIRFLOW_API_URL = "AIRFLOW_API_URL"
ENV_AIRFLOW_API_USERNAME = "AIRFLOW_API_USERNAME"
ENV_AIRFLOW_API_PASSWORD = "AIRFLOW_API_PASSWORD"
ENV_RELAY_HOST = "GITHUB_SYNC_RELAY_HOST"
ENV_RELAY_PORT = "GITHUB_SYNC_RELAY_PORT"
ENV_COALESCE_SECONDS = "GITHUB_SYNC_RELAY_COALESCE_SECONDS"
ENV_MAX_IDS_PER_RUN = "GITHUB_SYNC_RELAY_MAX_IDS_PER_RUN"

# The relay must be reachable by GitHub, so by default it listens on every interface.
DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 8090
DEFAULT_COALESCE_SECONDS = 2.0
# More than a minute of coalescing would make the dashboard visibly stale.
MAX_COALESCE_SECONDS = 60.0
# One DAG run carries at most this many delivery ids in its conf (the conf stays small).
DEFAULT_MAX_IDS_PER_RUN = 1_000
MAX_IDS_PER_RUN_LIMIT = 10_000


class RelayConfigError(ConfigError):
    """The relay's environment is incomplete or malformed; the message names the variable."""


@dataclass(frozen=True)
class RelaySettings:
    """Validated relay settings. Secrets are excluded from ``repr``."""

    webhook_secret: str = field(repr=False)
    database_url: str = field(repr=False)
    airflow_api_url: str
    airflow_username: str | None = None
    airflow_password: str | None = field(default=None, repr=False)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    coalesce_seconds: float = DEFAULT_COALESCE_SECONDS
    max_ids_per_run: int = DEFAULT_MAX_IDS_PER_RUN

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RelaySettings:
        """Read and validate the relay's variables.

        Args:
            environ: The environment to read (``os.environ`` when None).

        Returns:
            The settings.

        Raises:
            RelayConfigError: A required variable is missing or a value is malformed.
        """
        env = os.environ if environ is None else environ

        def value(name: str) -> str | None:
            raw = env.get(name, "").strip()
            return raw or None

        secret = env.get(ENV_WEBHOOK_SECRET, "")
        if not secret.strip():
            raise RelayConfigError(
                f"{ENV_WEBHOOK_SECRET} is not set: the relay refuses to start without the webhook secret "
                "(it would have to accept unsigned deliveries)"
            )
        database_url = value(ENV_DATABASE_URL)
        if database_url is None:
            raise RelayConfigError(
                f"{ENV_DATABASE_URL} is not set: the relay stores deliveries in PostgreSQL"
            )
        parts = urlsplit(database_url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
            raise RelayConfigError(f"{ENV_DATABASE_URL} must be a postgresql://user@host:port/database URL")
        api_url = value(ENV_AIRFLOW_API_URL)
        if api_url is None:
            raise RelayConfigError(f"{ENV_AIRFLOW_API_URL} is not set (e.g. http://airflow-apiserver:8080)")
        api_parts = urlsplit(api_url)
        if api_parts.scheme not in ("http", "https") or not api_parts.netloc:
            raise RelayConfigError(
                f"{ENV_AIRFLOW_API_URL} must be an http(s) URL such as http://localhost:8080"
            )
        username = value(ENV_AIRFLOW_API_USERNAME)
        password = env.get(ENV_AIRFLOW_API_PASSWORD) or None
        if (username is None) != (password is None):
            raise RelayConfigError(
                f"{ENV_AIRFLOW_API_USERNAME} and {ENV_AIRFLOW_API_PASSWORD} must be set together"
            )
        return cls(
            # The secret is used byte for byte as GitHub has it: no stripping.
            webhook_secret=secret,
            database_url=database_url,
            airflow_api_url=api_url.rstrip("/"),
            airflow_username=username,
            airflow_password=password,
            host=value(ENV_RELAY_HOST) or DEFAULT_HOST,
            port=_port(value(ENV_RELAY_PORT)),
            coalesce_seconds=_coalesce(value(ENV_COALESCE_SECONDS)),
            max_ids_per_run=_max_ids(value(ENV_MAX_IDS_PER_RUN)),
        )


def _port(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise RelayConfigError(f"{ENV_RELAY_PORT} must be a port number, got {raw!r}") from None
    if not 1 <= port <= 65_535:
        raise RelayConfigError(f"{ENV_RELAY_PORT} must be between 1 and 65535, got {port}")
    return port


def _coalesce(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_COALESCE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        raise RelayConfigError(f"{ENV_COALESCE_SECONDS} must be a number of seconds, got {raw!r}") from None
    if not 0 <= seconds <= MAX_COALESCE_SECONDS:
        raise RelayConfigError(f"{ENV_COALESCE_SECONDS} must be between 0 and {MAX_COALESCE_SECONDS:g}")
    return seconds


def _max_ids(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_MAX_IDS_PER_RUN
    try:
        count = int(raw)
    except ValueError:
        raise RelayConfigError(f"{ENV_MAX_IDS_PER_RUN} must be an integer, got {raw!r}") from None
    if not 1 <= count <= MAX_IDS_PER_RUN_LIMIT:
        raise RelayConfigError(f"{ENV_MAX_IDS_PER_RUN} must be between 1 and {MAX_IDS_PER_RUN_LIMIT}")
    return count
