"""The relay's configuration: its environment variables, read and validated before anything starts.

Owns the variables' names, defaults and limits, and turns a malformed environment into one
:class:`RelayConfigError` whose message names each variable at fault. The reading and type
conversion are pydantic-settings'; the database-URL rule is :func:`github_sync.config.
validate_database_url` (the one rule, shared with ``github-sync``), not a copy.

Must not: echo a value in an error (a URL may hold a password, and pydantic's own messages
quote inputs, so they are never shown), show a secret in ``repr``, or start anything.
The webhook secret is required: a relay without one would have to accept unsigned
deliveries, so it refuses to start instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict

from github_sync.config import (
    DEFAULT_GITHUB_API_URL,
    ENV_DATABASE_URL,
    ENV_WEBHOOK_SECRET,
    ConfigError,
    validate_api_base_url,
    validate_database_url,
)
from github_sync.webhooks.relay.hook_deliveries import (
    ENV_RELAY_HOOKS,
    AppCredentials,
    HookDeliveriesClient,
    HookTarget,
    HookTargetError,
    parse_hook_targets,
)

ENV_AIRFLOW_API_URL = "AIRFLOW_API_URL"
ENV_AIRFLOW_API_USERNAME = "AIRFLOW_API_USERNAME"
ENV_AIRFLOW_API_PASSWORD = "AIRFLOW_API_PASSWORD"
ENV_RELAY_HOST = "GITHUB_SYNC_RELAY_HOST"
ENV_RELAY_PORT = "GITHUB_SYNC_RELAY_PORT"
ENV_COALESCE_SECONDS = "GITHUB_SYNC_RELAY_COALESCE_SECONDS"
ENV_MAX_IDS_PER_RUN = "GITHUB_SYNC_RELAY_MAX_IDS_PER_RUN"
ENV_HEADER_TIMEOUT = "GITHUB_SYNC_RELAY_HEADER_TIMEOUT_SECONDS"
ENV_BODY_TIMEOUT = "GITHUB_SYNC_RELAY_BODY_TIMEOUT_SECONDS"
ENV_IDLE_TIMEOUT = "GITHUB_SYNC_RELAY_IDLE_TIMEOUT_SECONDS"
ENV_MAX_CONCURRENCY = "GITHUB_SYNC_RELAY_MAX_CONCURRENCY"
ENV_ADMIN_TOKEN = "GITHUB_SYNC_RELAY_ADMIN_TOKEN"
ENV_RELAY_GITHUB_TOKEN = "GITHUB_SYNC_RELAY_GITHUB_TOKEN"
ENV_RELAY_GITHUB_APP_ID = "GITHUB_SYNC_RELAY_GITHUB_APP_ID"
ENV_RELAY_GITHUB_APP_PRIVATE_KEY = "GITHUB_SYNC_RELAY_GITHUB_APP_PRIVATE_KEY"
ENV_RELAY_GITHUB_APP_PRIVATE_KEY_PATH = "GITHUB_SYNC_RELAY_GITHUB_APP_PRIVATE_KEY_PATH"
ENV_RELAY_GITHUB_API_URL = "GITHUB_SYNC_RELAY_GITHUB_API_URL"
ENV_RECOVERY_INTERVAL = "GITHUB_SYNC_RELAY_RECOVERY_INTERVAL_SECONDS"

# Loopback unless told otherwise: exposing the relay (to GitHub, or to a load balancer) is
# a deliberate choice (docker-compose sets 0.0.0.0 inside its network).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090
MAX_PORT = 65_535
DEFAULT_COALESCE_SECONDS = 2.0
# More than a minute of coalescing would make the dashboard visibly stale.
MAX_COALESCE_SECONDS = 60.0
# One DAG run carries at most this many delivery ids in its conf (the conf stays small).
DEFAULT_MAX_IDS_PER_RUN = 1_000
MAX_IDS_PER_RUN_LIMIT = 10_000
# GitHub sends a delivery's headers and body at once and gives up after 10 s
# (https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks#respond-within-10-seconds):
# a client slower than that is not GitHub.
DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0
DEFAULT_BODY_TIMEOUT_SECONDS = 10.0
MAX_READ_TIMEOUT_SECONDS = 120.0
# An idle keep-alive connection is closed after this many (whole) seconds (uvicorn's default).
DEFAULT_IDLE_TIMEOUT_SECONDS = 5
MAX_IDLE_TIMEOUT_SECONDS = 300
# Connections plus requests in progress; past this uvicorn answers 503 at once. Each request
# holds at most a 1 MB spool in memory (body.SPOOL_MEMORY_BYTES), so 100 stay well inside a
# small container.
DEFAULT_MAX_CONCURRENCY = 100
MAX_CONCURRENCY_LIMIT = 10_000
# Missed-delivery recovery scans each hook at start and then this often. GitHub keeps
# deliveries 3 days, so anything up to a day loses nothing; 5 minutes bounds how long a
# delivery missed during a short outage waits.
DEFAULT_RECOVERY_INTERVAL_SECONDS = 300.0
MIN_RECOVERY_INTERVAL_SECONDS = 10.0
MAX_RECOVERY_INTERVAL_SECONDS = 86_400.0
# Shorter tokens are guessable; any generator (openssl rand -hex 32) gives more.
MIN_ADMIN_TOKEN_LENGTH = 16

# What to say when a required variable is unset (or blank).
_MISSING_MESSAGES = {
    ENV_WEBHOOK_SECRET: (
        f"{ENV_WEBHOOK_SECRET} is not set: the relay refuses to start without the webhook secret "
        "(it would have to accept unsigned deliveries)"
    ),
    ENV_DATABASE_URL: f"{ENV_DATABASE_URL} is not set: the relay stores deliveries in PostgreSQL",
    ENV_AIRFLOW_API_URL: f"{ENV_AIRFLOW_API_URL} is not set (e.g. http://airflow-apiserver:8080)",
}
# What a variable must be, for a value pydantic could not convert or that is out of range.
_RULES = {
    ENV_RELAY_PORT: f"{ENV_RELAY_PORT} must be a port number between 1 and {MAX_PORT}",
    ENV_COALESCE_SECONDS: f"{ENV_COALESCE_SECONDS} must be a number of seconds between 0 and {MAX_COALESCE_SECONDS:g}",
    ENV_MAX_IDS_PER_RUN: f"{ENV_MAX_IDS_PER_RUN} must be an integer between 1 and {MAX_IDS_PER_RUN_LIMIT}",
    ENV_HEADER_TIMEOUT: f"{ENV_HEADER_TIMEOUT} must be a number of seconds above 0 and at most {MAX_READ_TIMEOUT_SECONDS:g}",
    ENV_BODY_TIMEOUT: f"{ENV_BODY_TIMEOUT} must be a number of seconds above 0 and at most {MAX_READ_TIMEOUT_SECONDS:g}",
    ENV_IDLE_TIMEOUT: f"{ENV_IDLE_TIMEOUT} must be a whole number of seconds between 1 and {MAX_IDLE_TIMEOUT_SECONDS}",
    ENV_MAX_CONCURRENCY: f"{ENV_MAX_CONCURRENCY} must be an integer between 1 and {MAX_CONCURRENCY_LIMIT}",
    ENV_RECOVERY_INTERVAL: (
        f"{ENV_RECOVERY_INTERVAL} must be a number of seconds between {MIN_RECOVERY_INTERVAL_SECONDS:g} "
        f"and {MAX_RECOVERY_INTERVAL_SECONDS:g}"
    ),
    ENV_ADMIN_TOKEN: f"{ENV_ADMIN_TOKEN} must be at least {MIN_ADMIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 32)",
}


class RelayConfigError(ConfigError):
    """The relay's environment is incomplete or malformed; the message names the variable."""


class RelaySettings(BaseSettings):
    """Validated relay settings, one field per environment variable. Secrets are hidden in ``repr``.

    ``RelaySettings()`` reads ``os.environ``; :meth:`from_env` is the entry point that also
    turns validation errors into a :class:`RelayConfigError`. Construction by field name
    (``RelaySettings.model_validate({"webhook_secret": ...})``) is for tests.
    """

    # case_sensitive: the variables are exact names, as everywhere else in the product.
    # validate_by_name: fields may also be given by their Python names (tests).
    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, validate_by_name=True, extra="ignore")

    webhook_secret: SecretStr = Field(validation_alias=ENV_WEBHOOK_SECRET)
    # The URL may carry a password: kept out of repr (it is not a SecretStr because every
    # consumer hands it to psycopg as it is).
    database_url: str = Field(validation_alias=ENV_DATABASE_URL, repr=False)
    airflow_api_url: str = Field(validation_alias=ENV_AIRFLOW_API_URL)
    airflow_username: str | None = Field(None, validation_alias=ENV_AIRFLOW_API_USERNAME)
    airflow_password: SecretStr | None = Field(None, validation_alias=ENV_AIRFLOW_API_PASSWORD)
    host: str = Field(DEFAULT_HOST, validation_alias=ENV_RELAY_HOST)
    port: int = Field(DEFAULT_PORT, validation_alias=ENV_RELAY_PORT, ge=1, le=MAX_PORT)
    coalesce_seconds: float = Field(
        DEFAULT_COALESCE_SECONDS,
        validation_alias=ENV_COALESCE_SECONDS,
        ge=0,
        le=MAX_COALESCE_SECONDS,
        allow_inf_nan=False,
    )
    max_ids_per_run: int = Field(
        DEFAULT_MAX_IDS_PER_RUN, validation_alias=ENV_MAX_IDS_PER_RUN, ge=1, le=MAX_IDS_PER_RUN_LIMIT
    )
    header_timeout_seconds: float = Field(
        DEFAULT_HEADER_TIMEOUT_SECONDS,
        validation_alias=ENV_HEADER_TIMEOUT,
        gt=0,
        le=MAX_READ_TIMEOUT_SECONDS,
        allow_inf_nan=False,
    )
    body_timeout_seconds: float = Field(
        DEFAULT_BODY_TIMEOUT_SECONDS,
        validation_alias=ENV_BODY_TIMEOUT,
        gt=0,
        le=MAX_READ_TIMEOUT_SECONDS,
        allow_inf_nan=False,
    )
    idle_timeout_seconds: int = Field(
        DEFAULT_IDLE_TIMEOUT_SECONDS, validation_alias=ENV_IDLE_TIMEOUT, ge=1, le=MAX_IDLE_TIMEOUT_SECONDS
    )
    max_concurrency: int = Field(
        DEFAULT_MAX_CONCURRENCY, validation_alias=ENV_MAX_CONCURRENCY, ge=1, le=MAX_CONCURRENCY_LIMIT
    )
    # Unset: /stats and /openapi.json are not served at all (404).
    admin_token: SecretStr | None = Field(
        None, validation_alias=ENV_ADMIN_TOKEN, min_length=MIN_ADMIN_TOKEN_LENGTH
    )
    # Missed-delivery recovery (off while no hook is named): the hooks, and the credential
    # that may administer them (a token, or a GitHub App's id and private key).
    hooks: str | None = Field(None, validation_alias=ENV_RELAY_HOOKS)
    github_token: SecretStr | None = Field(None, validation_alias=ENV_RELAY_GITHUB_TOKEN)
    github_app_id: str | None = Field(None, validation_alias=ENV_RELAY_GITHUB_APP_ID)
    github_app_private_key: SecretStr | None = Field(None, validation_alias=ENV_RELAY_GITHUB_APP_PRIVATE_KEY)
    github_app_private_key_path: str | None = Field(
        None, validation_alias=ENV_RELAY_GITHUB_APP_PRIVATE_KEY_PATH
    )
    github_api_url: str = Field(DEFAULT_GITHUB_API_URL, validation_alias=ENV_RELAY_GITHUB_API_URL)
    recovery_interval_seconds: float = Field(
        DEFAULT_RECOVERY_INTERVAL_SECONDS,
        validation_alias=ENV_RECOVERY_INTERVAL,
        ge=MIN_RECOVERY_INTERVAL_SECONDS,
        le=MAX_RECOVERY_INTERVAL_SECONDS,
        allow_inf_nan=False,
    )

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _secret_is_set(cls, value: object) -> object:
        # Used byte for byte as GitHub has it: never stripped, only refused when blank.
        if isinstance(value, str) and not value.strip():
            raise PydanticUseDefault  # no default: reported as unset
        return value

    @field_validator(
        "database_url",
        "airflow_api_url",
        "airflow_username",
        "host",
        "port",
        "coalesce_seconds",
        "max_ids_per_run",
        "header_timeout_seconds",
        "body_timeout_seconds",
        "idle_timeout_seconds",
        "max_concurrency",
        "admin_token",
        "hooks",
        "github_token",
        "github_app_id",
        "github_app_private_key",
        "github_app_private_key_path",
        "github_api_url",
        "recovery_interval_seconds",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # A variable set to spaces counts as unset (the default, or "not set" when required).
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise PydanticUseDefault
        return value

    @field_validator("airflow_password", mode="before")
    @classmethod
    def _empty_password_is_unset(cls, value: object) -> object:
        # A password is used as given (spaces included); only an empty one means "none".
        if value == "":
            raise PydanticUseDefault
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return validate_database_url(ENV_DATABASE_URL, value)

    @field_validator("airflow_api_url")
    @classmethod
    def _airflow_api_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{ENV_AIRFLOW_API_URL} must be an http(s) URL such as http://localhost:8080")
        if parts.username is not None or parts.password is not None:
            # The URL is logged and quoted in forwarding errors; credentials have their own variables.
            raise ValueError(
                f"{ENV_AIRFLOW_API_URL} must not carry credentials: "
                f"set {ENV_AIRFLOW_API_USERNAME} and {ENV_AIRFLOW_API_PASSWORD} instead"
            )
        return value.rstrip("/")

    @field_validator("hooks")
    @classmethod
    def _hooks(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return " ".join(str(target) for target in parse_hook_targets(value))
        except HookTargetError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("github_api_url")
    @classmethod
    def _github_api_url(cls, value: str) -> str:
        try:
            return validate_api_base_url(ENV_RELAY_GITHUB_API_URL, value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _recovery_has_a_credential(self) -> Self:
        has_key = self.github_app_private_key is not None or self.github_app_private_key_path is not None
        if self.github_app_private_key is not None and self.github_app_private_key_path is not None:
            raise ValueError(
                f"set {ENV_RELAY_GITHUB_APP_PRIVATE_KEY} or {ENV_RELAY_GITHUB_APP_PRIVATE_KEY_PATH}, not both"
            )
        if (self.github_app_id is None) != (not has_key):
            raise ValueError(
                f"{ENV_RELAY_GITHUB_APP_ID} and a private key ({ENV_RELAY_GITHUB_APP_PRIVATE_KEY} or "
                f"{ENV_RELAY_GITHUB_APP_PRIVATE_KEY_PATH}) must be set together"
            )
        if self.github_app_id is not None and self.github_token is not None:
            raise ValueError(f"set {ENV_RELAY_GITHUB_TOKEN} or the GitHub App's credentials, not both")
        if self.hooks is None:
            return self
        if self.github_token is None and self.github_app_id is None:
            raise ValueError(
                f"{ENV_RELAY_HOOKS} is set but no credential may list its deliveries: set "
                f"{ENV_RELAY_GITHUB_TOKEN} (a token with admin rights on the hooks) or "
                f"{ENV_RELAY_GITHUB_APP_ID} and {ENV_RELAY_GITHUB_APP_PRIVATE_KEY}"
            )
        if self.github_app_id is None and any(t.kind == "app" for t in self.hook_targets()):
            raise ValueError(
                f"{ENV_RELAY_HOOKS} names the App's hook ('app'), which needs {ENV_RELAY_GITHUB_APP_ID} "
                f"and a private key, not a token"
            )
        if self.github_app_private_key_path is not None:
            self._read_private_key()  # fails now, at start, naming the variable
        return self

    @model_validator(mode="after")
    def _credentials_come_in_pairs(self) -> Self:
        if (self.airflow_username is None) != (self.airflow_password is None):
            raise ValueError(
                f"{ENV_AIRFLOW_API_USERNAME} and {ENV_AIRFLOW_API_PASSWORD} must be set together"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RelaySettings:
        """Read and validate the relay's variables.

        Args:
            environ: The environment to read (``os.environ``, through pydantic-settings, when None).

        Returns:
            The settings.

        Raises:
            RelayConfigError: A required variable is missing or a value is malformed.
        """
        try:
            if environ is None:
                # pydantic-settings fills every field from the environment (pydantic's mypy
                # plugin knows that the constructor's arguments are optional for settings).
                return cls()
            # The fields' aliases are the variables' names: a mapping validates like the environment.
            return cls.model_validate(dict(environ))
        except ValidationError as exc:
            # ``from None``: the ValidationError quotes the inputs, secrets included.
            raise RelayConfigError("; ".join(_describe(error) for error in exc.errors())) from None

    def hook_targets(self) -> list[HookTarget]:
        """The hooks whose missed deliveries the relay recovers (empty: recovery is off)."""
        return parse_hook_targets(self.hooks) if self.hooks else []

    def _read_private_key(self) -> str:
        path = self.github_app_private_key_path
        assert path is not None
        try:
            with open(path, encoding="utf-8") as key_file:
                return key_file.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"{ENV_RELAY_GITHUB_APP_PRIVATE_KEY_PATH} cannot be read ({type(exc).__name__})"
            ) from None

    def hook_deliveries_client(self) -> HookDeliveriesClient | None:
        """The client of GitHub's deliveries API with the configured credential (None: recovery is off)."""
        if not self.hooks:
            return None
        if self.github_token is not None:
            return HookDeliveriesClient(self.github_api_url, self.github_token.get_secret_value())
        assert self.github_app_id is not None
        if self.github_app_private_key is not None:
            key = self.github_app_private_key.get_secret_value()
        else:
            key = self._read_private_key()
        if "\\n" in key and "\n" not in key:
            # A PEM put in one line of an env file, its line breaks written as \n.
            key = key.replace("\\n", "\n")
        return HookDeliveriesClient(self.github_api_url, AppCredentials(self.github_app_id, key))

    def admin_token_value(self) -> str | None:
        """The admin token in clear, for the one place that compares it."""
        return self.admin_token.get_secret_value() if self.admin_token is not None else None

    def airflow_password_value(self) -> str | None:
        """The Airflow API password in clear, for the one place that sends it."""
        return self.airflow_password.get_secret_value() if self.airflow_password is not None else None


def _describe(error: ErrorDetails) -> str:
    """One validation error as a sentence naming the variable, without its value."""
    variable = str(error["loc"][0]) if error["loc"] else ""
    variable = _ALIASES.get(variable, variable)
    if error["type"] == "missing":
        return _MISSING_MESSAGES.get(variable, f"{variable} is not set")
    if error["type"] == "value_error" and "ctx" in error:
        # Raised by a validator above (or validate_database_url): already names the variable.
        return str(error["ctx"]["error"])
    return _RULES.get(variable, f"{variable} is malformed")


# Field name -> variable, for errors of settings given by field name.
_ALIASES = {
    name: str(field.validation_alias)
    for name, field in RelaySettings.model_fields.items()
    if field.validation_alias is not None
}
