"""The ``github`` connection read as ``apache-airflow-providers-github`` reads it, plus github-sync's namespace.

Connections come from ``AIRFLOW_CONN_*`` environment variables, as a deployment would set
them; the provider's own ``GithubHook`` is built from the same connection to prove one
connection serves both.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from github_sync.config import ConfigError
from github_sync.github.connection import HookOptions, read_connection
from github_sync.github.credentials import AppInstallationCredential, TokenCredential
from github_sync.github.hook import GitHubHook
from github_sync.github.retry import RetryPolicy


@pytest.fixture(scope="module")
def private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _set(monkeypatch: pytest.MonkeyPatch, conn_id: str, **connection: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "github", **connection}))


def _read(conn_id: str) -> Any:
    from airflow.sdk import BaseHook

    return read_connection(conn_id, BaseHook.get_connection(conn_id))


def test_a_provider_style_app_connection_serves_this_project_and_the_provider(
    monkeypatch: pytest.MonkeyPatch, private_pem: str
) -> None:
    from airflow.providers.github.hooks.github import GithubHook

    # Only the provider's documented extras.
    extra = {"app_id": 123456, "installation_id": 654321, "private_key": private_pem}
    _set(monkeypatch, "gh_app", host="https://ghe.example.com/api/v3", extra=extra)
    provider = GithubHook(github_conn_id="gh_app")
    assert type(provider.client.requester.auth).__name__ == "AppInstallationAuth"

    ours = GitHubHook("gh_app")
    assert ours.base_url == "https://ghe.example.com/api/v3"
    [credential] = ours.credentials()
    assert isinstance(credential, AppInstallationCredential)
    assert credential.app_id == "123456" and credential.key_for("/repos/acme/api").endswith(":654321")
    assert private_pem not in repr(ours) + repr(credential) + repr(_read("gh_app"))


def test_a_token_wins_over_app_extras_as_in_the_provider(
    monkeypatch: pytest.MonkeyPatch, private_pem: str, caplog: pytest.LogCaptureFixture
) -> None:
    _set(monkeypatch, "gh_both", password="ghp_secret_token", extra={"app_id": 1, "private_key": private_pem})
    with caplog.at_level(logging.WARNING):
        connection = _read("gh_both")
    assert connection.auth_kind == "token" and connection.app is None
    assert "the token is used" in caplog.text and "ghp_secret_token" not in caplog.text
    assert "ghp_secret_token" not in repr(connection)


def test_tunables_live_under_github_sync_and_unknown_keys_only_warn(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    extra = {
        "github_sync": {"max_wait_s": 5, "retry_max_attempts": 2, "credentials": ["gh_two"], "typo_key": 1},
        "some_future_provider_key": True,
    }
    _set(monkeypatch, "gh_tuned", password="t1", extra=extra)
    with caplog.at_level(logging.WARNING):
        options = _read("gh_tuned").options
    assert options.credentials == ("gh_two",) and options.shared_budget is True
    kwargs = options.hook_kwargs()
    assert kwargs["max_wait_s"] == 5 and kwargs["retry_policy"] == RetryPolicy(max_attempts=2)
    assert "github_sync.typo_key" in caplog.text and "'some_future_provider_key'" in caplog.text


def test_top_level_tunables_of_older_connections_are_honoured_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _set(monkeypatch, "gh_old", password="t1", extra={"max_wait_s": 1, "reserve_fraction": 0.2})
    with caplog.at_level(logging.WARNING):
        options = _read("gh_old").options
    assert (options.max_wait_s, options.reserve_fraction) == (1, 0.2)
    assert "belong under 'github_sync'" in caplog.text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"github_sync": {"max_wait_s": "5"}}, "github_sync.max_wait_s must be a number"),
        ({"github_sync": {"reserve_fraction": 1.5}}, "github_sync.reserve_fraction"),
        ({"github_sync": {"max_in_flight": True}}, "github_sync.max_in_flight must be a number"),
        ({"github_sync": [1]}, "must be a JSON object"),
        ({"app_id": 1, "installation_id": "12", "private_key": "x"}, "'installation_id' must be an integer"),
        ({"app_id": True, "private_key": "x"}, "'app_id' must be the App's ID"),
        ({"app_id": 1}, "needs extra 'private_key'"),
        ({"app_id": 1, "private_key": "not a key"}, "is not a PEM private key"),
        ({"app_id": 1, "key_path": "/etc/key.txt"}, "'key_path' must name a .pem"),
        ({"app_id": 1, "key_path": "/nonexistent/app.pem"}, "cannot read key_path"),
        ({"app_id": 1, "private_key": "k", "token_permissions": ["issues"]}, "'token_permissions' must map"),
        ({}, "has no GitHub credential"),
    ],
)
def test_invalid_connections_say_what_and_where(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], message: str
) -> None:
    _set(monkeypatch, "gh_bad", extra=extra)
    with pytest.raises(ConfigError, match="connection 'gh_bad'") as info:
        _read("gh_bad")
    assert message in str(info.value)


def test_key_path_and_escaped_newlines(
    monkeypatch: pytest.MonkeyPatch, private_pem: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(private_pem)
    _set(monkeypatch, "gh_path", extra={"app_id": "Iv1.abc", "key_path": str(key_file)})
    app = _read("gh_path").app
    assert app is not None and app.private_key == private_pem and app.installation_id is None
    # A key pasted into JSON with its newlines escaped ("\\n") is restored.
    _set(monkeypatch, "gh_escaped", extra={"app_id": 7, "private_key": private_pem.replace("\n", "\\n")})
    escaped = _read("gh_escaped").app
    assert escaped is not None and escaped.private_key == private_pem


def test_several_connections_become_several_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(
        monkeypatch,
        "gh_main",
        password="t-main",
        host="http://127.0.0.1:1",
        extra={"github_sync": {"credentials": ["gh_second"]}},
    )
    _set(monkeypatch, "gh_second", password="t-second", host="http://127.0.0.1:1")
    labels = [c.label for c in GitHubHook("gh_main").credentials()]
    assert labels == ["connection 'gh_main'", "connection 'gh_second'"]
    assert all(isinstance(c, TokenCredential) for c in GitHubHook("gh_main").credentials())
    _set(monkeypatch, "gh_second", password="t-second", host="https://api.github.com")
    with pytest.raises(ConfigError, match="credentials of one hook must be for one GitHub"):
        GitHubHook("gh_main").credentials()


def test_defaults_are_the_hooks_own() -> None:
    assert HookOptions().hook_kwargs() == {}


def test_a_task_reads_its_connection_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from github_sync.orchestration.runtime import build_github_hook

    _set(monkeypatch, "gh_task", password="t1", host="http://127.0.0.1:1", extra={"github_sync": {"typo": 1}})
    with caplog.at_level(logging.WARNING):
        hook = build_github_hook("gh_task")
        assert [c.label for c in hook.credentials()] == ["connection 'gh_task'"]
    # The warning about the unknown key is written once per task, not once per reading.
    assert caplog.text.count("github_sync.typo") == 1
