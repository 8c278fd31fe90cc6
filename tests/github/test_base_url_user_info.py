"""A base URL with user info (``http://a@b``) is refused wherever a base URL enters, before any request.

``http://a@b`` sends the requests, with the token, to ``b``; and the user info (often a
password) showed in ``repr(hook)``, log lines and ``test_connection``. Each entry point is
checked against a real listening socket: the kernel accepts a connection into the backlog
whether or not anybody calls ``accept``, so a non-blocking ``accept`` after the call tells
whether anything connected.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from github_sync.config import ENV_GITHUB_API_URL, ConfigError, Settings
from github_sync.devtools.cli import main as cli_main
from github_sync.github.hook import GitHubHook
from github_sync.github.retry import RetryPolicy
from github_sync.github.session import without_user_info

# The user info under test: its password part must never be shown.
USER = "robot"
PASSWORD = "s3cret-pa55word"
TOKEN = "ghp_TESTuserinfotoken000000000000000000"
# One attempt with short timeouts: before the fix the request went out, and the listening socket
# never answers, so the call must give up quickly for the test to reach its assertions.
ONE_QUICK_ATTEMPT = {"retry_policy": RetryPolicy(max_attempts=1), "timeout": (1.0, 1.0)}


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on loopback that never answers (it only records connections)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        yield server


def _port(server: socket.socket) -> int:
    return int(server.getsockname()[1])


def _nothing_connected(server: socket.socket) -> bool:
    try:
        client, _ = server.accept()
    except BlockingIOError:
        return True
    client.close()
    return False


def _assert_user_info_hidden(text: str) -> None:
    assert PASSWORD not in text and f"{USER}:" not in text and f"{USER}@" not in text, text


@pytest.mark.parametrize("user_info", [f"{USER}@", f"{USER}:{PASSWORD}@", f"{USER}:{PASSWORD}@evil@"])
def test_a_hooks_base_url_with_user_info_is_refused_before_any_request(
    listener: socket.socket, caplog: pytest.LogCaptureFixture, user_info: str
) -> None:
    hook = GitHubHook(
        base_url=f"http://{user_info}127.0.0.1:{_port(listener)}", token=TOKEN, **ONE_QUICK_ATTEMPT
    )
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(ConfigError, match=r"base_url.*must not contain user info"),
    ):
        hook.get("/repos/acme/portal")
    ok, message = hook.test_connection()
    hook.close()
    assert not ok and "must not contain user info" in message
    assert _nothing_connected(listener)
    for text in (str(message), repr(hook), caplog.text):
        _assert_user_info_hidden(text)
        assert TOKEN not in text


def test_a_connections_host_with_user_info_names_the_connection_and_the_key(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    host = f"http://{USER}:{PASSWORD}@127.0.0.1:{_port(listener)}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_GH_USERINFO", json.dumps({"conn_type": "github", "host": host, "password": TOKEN})
    )
    hook = GitHubHook(github_conn_id="gh_userinfo", **ONE_QUICK_ATTEMPT)
    with pytest.raises(ConfigError) as info:
        hook.get("/repos/acme/portal")
    assert "connection 'gh_userinfo': host must not contain user info" in str(info.value)
    _assert_user_info_hidden(str(info.value))
    ok, message = hook.test_connection()
    assert not ok
    _assert_user_info_hidden(message)
    _assert_user_info_hidden(repr(hook))
    hook.close()
    # The check-connection command exits with the same message.
    with pytest.raises(SystemExit) as exited:
        cli_main(["check-connection", "--conn-id", "gh_userinfo"])
    assert "connection 'gh_userinfo': host must not contain user info" in str(exited.value.code)
    _assert_user_info_hidden(str(exited.value.code) + capsys.readouterr().err)
    assert _nothing_connected(listener)


def test_a_bare_host_with_user_info_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # The connection form accepts bare hosts (a scheme is added): the user info is found after that.
    monkeypatch.setenv(
        "AIRFLOW_CONN_GH_BARE",
        json.dumps(
            {"conn_type": "github", "host": f"{USER}:{PASSWORD}@ghe.example.com/api/v3", "password": TOKEN}
        ),
    )
    with pytest.raises(ConfigError, match="connection 'gh_bare': host must not contain user info") as info:
        GitHubHook(github_conn_id="gh_bare").credentials()
    _assert_user_info_hidden(str(info.value))


def test_github_api_url_with_user_info_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match=f"{ENV_GITHUB_API_URL} must not contain user info") as info:
        Settings.from_env({ENV_GITHUB_API_URL: f"https://{USER}:{PASSWORD}@api.github.com"})
    _assert_user_info_hidden(str(info.value))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://api.github.com", "must be an http(s) URL"),
        ("https://", "must be an http(s) URL"),
        ("https://api.github.com:99999", "its port is not a number"),
        ("https://api.github.com?x=1", "without a query or fragment"),
    ],
)
def test_other_malformed_base_urls_say_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"{ENV_GITHUB_API_URL} must be an http") as info:
        Settings.from_env({ENV_GITHUB_API_URL: value})
    assert message in str(info.value)


def test_urls_from_elsewhere_are_shown_without_user_info() -> None:
    # A Link or Location from a server may carry user info; reprs and log lines drop it.
    assert (
        without_user_info(f"https://{USER}:{PASSWORD}@api.github.com/x?page=2")
        == "https://api.github.com/x?page=2"
    )
    assert without_user_info("https://api.github.com/x") == "https://api.github.com/x"


def test_an_app_credential_refuses_a_base_url_with_user_info() -> None:
    # Its JWT would go to the host after the "@".
    from github_sync.github.credentials import AppInstallationCredential

    def never_sends(*_: object) -> Any:
        raise AssertionError("nothing may be sent")

    with pytest.raises(ConfigError, match="GitHub App 1: base_url must not contain user info") as info:
        AppInstallationCredential(
            app_id="1",
            private_key="-----BEGIN PRIVATE KEY-----",
            base_url=f"https://{USER}:{PASSWORD}@api.github.com",
            send=never_sends,
            label="GitHub App 1",
        )
    _assert_user_info_hidden(str(info.value))
