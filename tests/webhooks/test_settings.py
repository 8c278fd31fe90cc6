"""The relay's settings: required variables, defaults, limits, the shared database-URL rule.

Every error must name the variable at fault and never show a value: a URL may carry a
password, and the secrets must not reach a log line through an error message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from github_sync.config import ConfigError, validate_database_url
from github_sync.webhooks.relay.settings import (
    ENV_AIRFLOW_API_PASSWORD,
    ENV_AIRFLOW_API_USERNAME,
    ENV_COALESCE_SECONDS,
    ENV_MAX_IDS_PER_RUN,
    ENV_RELAY_HOST,
    ENV_RELAY_PORT,
    RelayConfigError,
    RelaySettings,
)

SECRET_VALUE = "s3cr3t-value"
DB_PASSWORD = "db-pa55word"
RELAY_VARIABLES = (
    ENV_AIRFLOW_API_USERNAME,
    ENV_AIRFLOW_API_PASSWORD,
    ENV_RELAY_HOST,
    ENV_RELAY_PORT,
    ENV_COALESCE_SECONDS,
    ENV_MAX_IDS_PER_RUN,
)
REQUIRED = {
    "GITHUB_WEBHOOK_SECRET": SECRET_VALUE,
    "GITHUB_SYNC_DATABASE_URL": f"postgresql://u:{DB_PASSWORD}@h/db",
    "AIRFLOW_API_URL": "http://airflow:8080",
}


def config_error(environ: dict[str, str]) -> str:
    with pytest.raises(RelayConfigError) as caught:
        RelaySettings.from_env(environ)
    message = str(caught.value)
    assert SECRET_VALUE not in message and DB_PASSWORD not in message
    return message


def test_settings_refuse_to_start_without_a_secret() -> None:
    env = {"GITHUB_SYNC_DATABASE_URL": "postgresql://u@h/db", "AIRFLOW_API_URL": "http://airflow:8080"}
    assert "GITHUB_WEBHOOK_SECRET is not set" in config_error(env)
    assert "GITHUB_WEBHOOK_SECRET is not set" in config_error({**env, "GITHUB_WEBHOOK_SECRET": "   "})
    settings = RelaySettings.from_env({**env, "GITHUB_WEBHOOK_SECRET": SECRET_VALUE})
    assert (settings.port, settings.coalesce_seconds, settings.max_ids_per_run) == (8090, 2.0, 1000)
    assert SECRET_VALUE not in repr(settings)
    assert "GITHUB_SYNC_RELAY_PORT" in config_error(
        {**env, "GITHUB_WEBHOOK_SECRET": SECRET_VALUE, "GITHUB_SYNC_RELAY_PORT": "x"}
    )


def test_defaults_and_values_as_given() -> None:
    settings = RelaySettings.from_env(
        {
            **REQUIRED,
            "GITHUB_WEBHOOK_SECRET": f" {SECRET_VALUE} ",  # used byte for byte, as GitHub has it
            "AIRFLOW_API_URL": "http://airflow:8080/",
            "AIRFLOW_API_USERNAME": " relay ",
            "AIRFLOW_API_PASSWORD": " pass word ",
            "GITHUB_SYNC_RELAY_HOST": "  ",  # blank: the default
            "GITHUB_SYNC_RELAY_PORT": "9000",
            "GITHUB_SYNC_RELAY_COALESCE_SECONDS": "0",
            "GITHUB_SYNC_RELAY_MAX_IDS_PER_RUN": "10000",
            "UNRELATED": "ignored",
        }
    )
    assert settings.webhook_secret.get_secret_value() == f" {SECRET_VALUE} "
    assert settings.airflow_api_url == "http://airflow:8080"
    assert (settings.airflow_username, settings.airflow_password_value()) == ("relay", " pass word ")
    assert (settings.host, settings.port, settings.coalesce_seconds, settings.max_ids_per_run) == (
        "127.0.0.1",  # loopback unless exposing the relay is asked for
        9000,
        0.0,
        10_000,
    )
    assert (
        settings.header_timeout_seconds,
        settings.body_timeout_seconds,
        settings.idle_timeout_seconds,
    ) == (
        10.0,
        10.0,
        5,
    )
    assert (settings.max_concurrency, settings.admin_token) == (100, None)
    for secret in (SECRET_VALUE, "pass word", DB_PASSWORD):
        assert secret not in repr(settings)


def test_limits_and_admin_token_as_given() -> None:
    token = "an-admin-token-of-32-characters!"
    settings = RelaySettings.from_env(
        {
            **REQUIRED,
            "GITHUB_SYNC_RELAY_HEADER_TIMEOUT_SECONDS": "2.5",
            "GITHUB_SYNC_RELAY_BODY_TIMEOUT_SECONDS": "30",
            "GITHUB_SYNC_RELAY_IDLE_TIMEOUT_SECONDS": "7",
            "GITHUB_SYNC_RELAY_MAX_CONCURRENCY": "12",
            "GITHUB_SYNC_RELAY_ADMIN_TOKEN": token,
        }
    )
    assert (settings.header_timeout_seconds, settings.body_timeout_seconds) == (2.5, 30.0)
    assert (settings.idle_timeout_seconds, settings.max_concurrency) == (7, 12)
    assert settings.admin_token_value() == token and token not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("GITHUB_SYNC_DATABASE_URL", "", "GITHUB_SYNC_DATABASE_URL is not set"),
        ("GITHUB_SYNC_DATABASE_URL", f"mysql://u:{DB_PASSWORD}@h/db", "GITHUB_SYNC_DATABASE_URL must be a postgresql://"),
        ("GITHUB_SYNC_DATABASE_URL", f"postgresql://u:{DB_PASSWORD}@h/", "GITHUB_SYNC_DATABASE_URL must be a postgresql://"),
        ("GITHUB_SYNC_DATABASE_URL", f"postgresql://u:{DB_PASSWORD}@h:port/db", "GITHUB_SYNC_DATABASE_URL must be"),
        ("AIRFLOW_API_URL", " ", "AIRFLOW_API_URL is not set"),
        ("AIRFLOW_API_URL", "not a url", "AIRFLOW_API_URL must be an http(s) URL"),
        ("AIRFLOW_API_URL", f"http://admin:{SECRET_VALUE}@airflow:8080", "AIRFLOW_API_URL must not carry credentials"),
        ("GITHUB_SYNC_RELAY_PORT", "0", "GITHUB_SYNC_RELAY_PORT must be a port number between 1 and 65535"),
        ("GITHUB_SYNC_RELAY_PORT", "65536", "GITHUB_SYNC_RELAY_PORT must be a port number"),
        ("GITHUB_SYNC_RELAY_COALESCE_SECONDS", "61", "GITHUB_SYNC_RELAY_COALESCE_SECONDS must be a number of seconds between 0 and 60"),
        ("GITHUB_SYNC_RELAY_COALESCE_SECONDS", "nan", "GITHUB_SYNC_RELAY_COALESCE_SECONDS must be"),
        ("GITHUB_SYNC_RELAY_MAX_IDS_PER_RUN", "1.5", "GITHUB_SYNC_RELAY_MAX_IDS_PER_RUN must be an integer between 1 and 10000"),
        ("GITHUB_SYNC_RELAY_HEADER_TIMEOUT_SECONDS", "0", "GITHUB_SYNC_RELAY_HEADER_TIMEOUT_SECONDS must be a number of seconds above 0 and at most 120"),
        ("GITHUB_SYNC_RELAY_BODY_TIMEOUT_SECONDS", "inf", "GITHUB_SYNC_RELAY_BODY_TIMEOUT_SECONDS must be a number of seconds"),
        ("GITHUB_SYNC_RELAY_IDLE_TIMEOUT_SECONDS", "2.5", "GITHUB_SYNC_RELAY_IDLE_TIMEOUT_SECONDS must be a whole number of seconds between 1 and 300"),
        ("GITHUB_SYNC_RELAY_MAX_CONCURRENCY", "0", "GITHUB_SYNC_RELAY_MAX_CONCURRENCY must be an integer between 1 and 10000"),
        ("GITHUB_SYNC_RELAY_ADMIN_TOKEN", "short-secret-15", "GITHUB_SYNC_RELAY_ADMIN_TOKEN must be at least 16 characters"),
        ("AIRFLOW_API_USERNAME", "relay", "AIRFLOW_API_USERNAME and AIRFLOW_API_PASSWORD must be set together"),
        ("AIRFLOW_API_PASSWORD", SECRET_VALUE, "AIRFLOW_API_USERNAME and AIRFLOW_API_PASSWORD must be set together"),
    ],
)  # fmt: skip
def test_malformed_values_are_named_never_shown(variable: str, value: str, expected: str) -> None:
    assert expected in config_error({**REQUIRED, variable: value})


def test_every_error_is_reported_at_once() -> None:
    message = config_error({"GITHUB_SYNC_RELAY_PORT": "x"})
    for variable in (
        "GITHUB_WEBHOOK_SECRET",
        "GITHUB_SYNC_DATABASE_URL",
        "AIRFLOW_API_URL",
        "GITHUB_SYNC_RELAY_PORT",
    ):
        assert variable in message


def test_the_real_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """``from_env()`` without a mapping reads os.environ through pydantic-settings, by exact name."""
    for variable in RELAY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in REQUIRED.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("GITHUB_SYNC_RELAY_PORT", "9001")
    monkeypatch.setenv("github_sync_relay_coalesce_seconds", "5")  # not the variable's name
    settings = RelaySettings.from_env()
    assert (settings.port, settings.coalesce_seconds) == (9001, 2.0)
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET")
    with pytest.raises(RelayConfigError, match="GITHUB_WEBHOOK_SECRET is not set"):
        RelaySettings.from_env()


def test_the_relay_uses_the_one_database_url_rule() -> None:
    """The SQLAlchemy spelling is accepted as config.py accepts it, and handed to psycopg as libpq's."""
    sqlalchemy_url = f"postgresql+psycopg://u:{DB_PASSWORD}@h:5433/db?sslmode=require"
    libpq_url = f"postgresql://u:{DB_PASSWORD}@h:5433/db?sslmode=require"
    settings = RelaySettings.from_env({**REQUIRED, "GITHUB_SYNC_DATABASE_URL": sqlalchemy_url})
    assert settings.database_url == libpq_url == validate_database_url("X", sqlalchemy_url)
    assert validate_database_url("X", "postgres://h/db") == "postgres://h/db"
    assert validate_database_url("X", libpq_url) == libpq_url
    for refused in ("postgresql+psycopg2://h/db", "http://h/db", "postgresql://h", "postgresql://[h/db"):
        with pytest.raises(ConfigError) as caught:
            validate_database_url("GITHUB_SYNC_DATABASE_URL", refused)
        assert (
            str(caught.value) == "GITHUB_SYNC_DATABASE_URL must be a postgresql://user@host:port/database URL"
        )


GITHUB_TOKEN_VALUE = "ghp_relay_recovery_settings_token"


def test_recovery_is_off_without_hooks_and_configured_with_them(tmp_path: Path) -> None:
    assert RelaySettings.from_env(REQUIRED).hook_deliveries_client() is None
    settings = RelaySettings.from_env(
        {
            **REQUIRED,
            "GITHUB_SYNC_RELAY_HOOKS": "org:acme:42, repo:acme/app",
            "GITHUB_SYNC_RELAY_GITHUB_TOKEN": GITHUB_TOKEN_VALUE,
            "GITHUB_SYNC_RELAY_GITHUB_API_URL": "https://ghe.example.com/api/v3/",
            "GITHUB_SYNC_RELAY_RECOVERY_INTERVAL_SECONDS": "60",
        }
    )
    assert [str(t) for t in settings.hook_targets()] == ["org:acme:42", "repo:acme/app"]
    assert settings.github_api_url == "https://ghe.example.com/api/v3"
    assert settings.recovery_interval_seconds == 60.0
    client = settings.hook_deliveries_client()
    assert client is not None and GITHUB_TOKEN_VALUE not in repr(client) + repr(settings)
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot checked here\n-----END PRIVATE KEY-----\n")
    app = RelaySettings.from_env(
        {
            **REQUIRED,
            "GITHUB_SYNC_RELAY_HOOKS": "app",
            "GITHUB_SYNC_RELAY_GITHUB_APP_ID": "12345",
            "GITHUB_SYNC_RELAY_GITHUB_APP_PRIVATE_KEY_PATH": str(key),
        }
    )
    assert app.hook_deliveries_client() is not None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"GITHUB_SYNC_RELAY_HOOKS": "org:acme:42"}, "no credential may list its deliveries"),
        ({"GITHUB_SYNC_RELAY_HOOKS": "app", "GITHUB_SYNC_RELAY_GITHUB_TOKEN": GITHUB_TOKEN_VALUE}, "needs GITHUB_SYNC_RELAY_GITHUB_APP_ID"),
        ({"GITHUB_SYNC_RELAY_HOOKS": "team:acme:1", "GITHUB_SYNC_RELAY_GITHUB_TOKEN": GITHUB_TOKEN_VALUE}, "GITHUB_SYNC_RELAY_HOOKS entry"),
        ({"GITHUB_SYNC_RELAY_GITHUB_APP_ID": "1"}, "must be set together"),
        ({"GITHUB_SYNC_RELAY_GITHUB_APP_ID": "1", "GITHUB_SYNC_RELAY_GITHUB_APP_PRIVATE_KEY": "k", "GITHUB_SYNC_RELAY_GITHUB_TOKEN": GITHUB_TOKEN_VALUE}, "not both"),
        ({"GITHUB_SYNC_RELAY_GITHUB_APP_ID": "1", "GITHUB_SYNC_RELAY_GITHUB_APP_PRIVATE_KEY_PATH": "/nonexistent/key.pem", "GITHUB_SYNC_RELAY_HOOKS": "app"}, "GITHUB_SYNC_RELAY_GITHUB_APP_PRIVATE_KEY_PATH cannot be read"),
        ({"GITHUB_SYNC_RELAY_GITHUB_API_URL": f"https://x:{GITHUB_TOKEN_VALUE}@ghe.example.com"}, "GITHUB_SYNC_RELAY_GITHUB_API_URL"),
        ({"GITHUB_SYNC_RELAY_RECOVERY_INTERVAL_SECONDS": "5"}, "must be a number of seconds between 10 and 86400"),
    ],
)  # fmt: skip
def test_recovery_settings_errors_name_the_variable(environ: dict[str, str], expected: str) -> None:
    message = config_error({**REQUIRED, **environ})
    assert expected in message and GITHUB_TOKEN_VALUE not in message
