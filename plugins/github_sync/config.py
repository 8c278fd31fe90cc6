"""Configuration: the names the product is known by outside its code, and the environment shortcut.

Owns the Airflow connection, pool and DAG ids, the environment variables and their
validation (:class:`Settings`), and the Airflow JSON form of the connections. It is the
foundation every layer may import, so it imports nothing of the package but the owner
rule (:mod:`github_sync.github.owners`), and never Airflow.

The product is configured the Airflow way: the GitHub side is the connection
``github_default`` (GitHub provider type ``github``: token in ``password``, API base URL
in ``host``), the target database is the Postgres connection ``github_sync_db``. The
environment variables below are the documented shortcut that ``github-sync setup``
(and the compose file's airflow-init) turn into those connections.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from github_sync.github.owners import OwnerError, parse_owner_list

GITHUB_CONN_ID = "github_default"
DATABASE_CONN_ID = "github_sync_db"
GITHUB_POOL = "github_api"
GITHUB_POOL_DESCRIPTION = "GitHub API concurrency (github-sync)"
DEFAULT_POOL_SLOTS = 8
DEFAULT_GITHUB_API_URL = "https://api.github.com"
# The simulator's demo organisation: the owner of scheduled runs when GITHUB_OWNER is unset,
# and the one `make run` syncs without credentials.
DEMO_OWNER = "acme"

# The DAG ids: the relay triggers the webhook DAG by id, `make run` watches the full sync.
FULL_SYNC_DAG_ID = "github_full_sync"
INCREMENTAL_SYNC_DAG_ID = "github_incremental_sync"
REPOSITORY_SYNC_DAG_ID = "github_repo_sync"
WEBHOOK_DAG_ID = "github_webhook_events"
DAG_IDS = (FULL_SYNC_DAG_ID, INCREMENTAL_SYNC_DAG_ID, REPOSITORY_SYNC_DAG_ID, WEBHOOK_DAG_ID)

ENV_GITHUB_TOKEN = "GITHUB_TOKEN"
ENV_GITHUB_OWNER = "GITHUB_OWNER"
ENV_GITHUB_API_URL = "GITHUB_API_URL"
ENV_DATABASE_URL = "GITHUB_SYNC_DATABASE_URL"
ENV_WEBHOOK_SECRET = "GITHUB_WEBHOOK_SECRET"
# "false" for databases where the sync may not change the schema: then `github-sync migrate`
# must have run, and a missing or outdated schema fails the run at once.
ENV_AUTO_MIGRATE = "GITHUB_SYNC_AUTO_MIGRATE"
# Slots of the github_api pool, as `github-sync setup-airflow --pool-slots` set them: the run's
# first task sizes its shards from it (tasks may not read Airflow's metadata DB for the pool).
ENV_POOL_SLOTS = "GITHUB_SYNC_POOL_SLOTS"
# Repositories a shard's task syncs at once (threads sharing its GitHub hook).
ENV_SHARD_CONCURRENCY = "GITHUB_SYNC_SHARD_CONCURRENCY"
DEFAULT_SHARD_CONCURRENCY = 4
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names it (never its secret value)."""


def validate_api_base_url(source: str, value: str) -> str:
    """Return the GitHub API base URL ``value`` without its trailing slash, or raise naming ``source``.

    The one rule for every place a base URL enters (``GITHUB_API_URL``, a connection's
    ``host``, a hook's ``base_url``). User info (``user:password@host``) is refused: the
    requests would go to the host after the ``@`` with the token, and the user info (often a
    password) would show in every repr and log line that prints the URL. Its message never
    echoes a value that has user info.

    Args:
        source: what the value is, for the message (``GITHUB_API_URL``, ``connection 'x': host``).
        value: the URL, with its scheme.

    Raises:
        ConfigError: not an http(s) URL with a host, or it has user info, a query or a fragment.
    """
    parts = urlsplit(value.strip())
    if "@" in parts.netloc:
        raise ConfigError(
            f"{source} must not contain user info (the part before '@' in the host): GitHub's token "
            "belongs in the connection's password or GITHUB_TOKEN, and the URL is only the API's address"
        )
    rule = f"{source} must be an http(s) URL such as {DEFAULT_GITHUB_API_URL}"
    try:
        parts.port  # noqa: B018 - parsing the port is the check (urlsplit parses it lazily)
    except ValueError:
        raise ConfigError(f"{rule}; its port is not a number from 0 to 65535, got {value!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{rule}, got {value!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{rule} without a query or fragment, got {value!r}")
    return value.strip().rstrip("/")


# The URL schemes libpq itself understands, and SQLAlchemy's name for psycopg 3 URLs.
_LIBPQ_URL_SCHEMES = ("postgresql", "postgres")
_SQLALCHEMY_URL_SCHEME = "postgresql+psycopg"


def validate_database_url(name: str, value: str) -> str:
    """The one rule for a target-database URL; returns the URL in the form libpq accepts.

    Accepted: ``postgresql://`` and ``postgres://`` (libpq's own schemes) and
    ``postgresql+psycopg://`` (SQLAlchemy's spelling of the same URL, easily copied from an
    Airflow configuration), each naming a database. Every consumer hands the value to
    psycopg/libpq, which does not know the SQLAlchemy scheme, so that one is converted to
    ``postgresql://`` (only the scheme changes) rather than refused: it has always been
    accepted here, and converting keeps those configurations working.

    Args:
        name: The variable the value comes from (named in the error).
        value: The URL; it may hold a password, so it is never part of an error.

    Returns:
        The URL with a libpq scheme.

    Raises:
        ConfigError: Not such a URL (wrong scheme, no database name, unparsable host or port).
    """
    rule = f"{name} must be a postgresql://user@host:port/database URL"
    try:
        parts = urlsplit(value)
        _ = parts.port  # parsed only for its ValueError on a malformed port
    except ValueError:
        # urlsplit's own message could quote part of the value: replace it with the rule.
        raise ConfigError(rule) from None
    if parts.scheme not in (*_LIBPQ_URL_SCHEMES, _SQLALCHEMY_URL_SCHEME) or not parts.path.strip("/"):
        # The value may hold a password: name the variable and the rule, never echo it.
        raise ConfigError(rule)
    if parts.scheme == _SQLALCHEMY_URL_SCHEME:
        return f"{_LIBPQ_URL_SCHEMES[0]}://{value.partition('://')[2]}"
    return value


# The key of github-sync's tunables in the GitHub connection's extra (beside the provider's keys).
GITHUB_CONN_OPTIONS_KEY = "github_sync"


def github_connection(
    api_url: str, token: str, options: dict[str, object] | None = None
) -> dict[str, object]:
    """The ``github_default`` connection (GitHub provider type) in Airflow's JSON form.

    ``options`` are github-sync's tunables, kept under the extra's ``github_sync`` key
    (:mod:`github_sync.github.connection`).
    """
    connection: dict[str, object] = {"conn_type": "github", "host": api_url, "password": token}
    if options:
        connection["extra"] = {GITHUB_CONN_OPTIONS_KEY: options}
    return connection


def postgres_connection(database_url: str) -> dict[str, object]:
    """The ``github_sync_db`` connection for a ``postgresql://`` URL, in Airflow's JSON form."""
    parts = urlsplit(database_url)
    return {
        "conn_type": "postgres",
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "login": parts.username or "",
        "password": parts.password or "",
        "schema": parts.path.lstrip("/"),
    }


def connection_env(connections: dict[str, dict[str, object]]) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` environment variables for connections (how local processes get them)."""
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in connections.items()}


def auto_migrate_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a run's first task may bring the target schema up to date (default: yes).

    Raises:
        ConfigError: the variable holds something other than a yes/no word.
    """
    raw = (os.environ if environ is None else environ).get(ENV_AUTO_MIGRATE, "").strip().lower()
    if raw in ("", *_TRUE):
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{ENV_AUTO_MIGRATE} must be true or false, got {raw!r}")


def positive_int_setting(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    """The whole number in environment variable ``name`` (``default`` when unset or empty).

    Raises:
        ConfigError: the variable holds something other than a whole number of at least 1.
    """
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, got {raw!r}")
    return value


def pool_slots(environ: Mapping[str, str] | None = None) -> int:
    """Slots of the ``github_api`` pool (``GITHUB_SYNC_POOL_SLOTS``, default 8)."""
    return positive_int_setting(ENV_POOL_SLOTS, DEFAULT_POOL_SLOTS, environ)


def shard_concurrency(environ: Mapping[str, str] | None = None) -> int:
    """Repositories one shard syncs at once (``GITHUB_SYNC_SHARD_CONCURRENCY``, default 4)."""
    return positive_int_setting(ENV_SHARD_CONCURRENCY, DEFAULT_SHARD_CONCURRENCY, environ)


@dataclass(frozen=True)
class Settings:
    """The environment shortcut, validated. Secrets are excluded from ``repr``."""

    github_owners: tuple[str, ...] = ()
    github_api_url: str = DEFAULT_GITHUB_API_URL
    github_token: str | None = field(default=None, repr=False)
    database_url: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the ``GITHUB_*`` variables.

        Raises:
            ConfigError: a variable is set but malformed.
        """
        env = os.environ if environ is None else environ

        def value(name: str) -> str | None:
            raw = env.get(name, "").strip()
            return raw or None

        api_url = value(ENV_GITHUB_API_URL)
        database_url = value(ENV_DATABASE_URL)
        try:
            owners = tuple(parse_owner_list(value(ENV_GITHUB_OWNER) or "", source=ENV_GITHUB_OWNER))
        except OwnerError as exc:
            raise ConfigError(str(exc)) from None
        return cls(
            github_owners=owners,
            github_api_url=validate_api_base_url(ENV_GITHUB_API_URL, api_url)
            if api_url
            else DEFAULT_GITHUB_API_URL,
            github_token=value(ENV_GITHUB_TOKEN),
            database_url=validate_database_url(ENV_DATABASE_URL, database_url) if database_url else None,
            webhook_secret=value(ENV_WEBHOOK_SECRET),
        )

    def airflow_connections(self) -> dict[str, dict[str, object]]:
        """The Airflow connections these settings describe, as Airflow's JSON connection form."""
        connections = {GITHUB_CONN_ID: github_connection(self.github_api_url, self.github_token or "")}
        if self.database_url:
            connections[DATABASE_CONN_ID] = postgres_connection(self.database_url)
        return connections
