"""GitHub App auth through the hook, against the simulator's App endpoints (real HTTP, real JWTs).

The connection is the provider's documented form (``app_id``, ``installation_id``,
``private_key`` in extra) read from ``AIRFLOW_CONN_*``; the provider's own ``GithubHook``
(PyGithub) is pointed at the same simulator with the same connection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from github_sim import AppConfig, InstallationConfig, Simulator
from github_sim.apps import generate_app_key
from github_sync.github.access import check_access
from github_sync.github.credentials import AppInstallationCredential
from github_sync.github.errors import CredentialError
from github_sync.github.hook import GitHubHook
from tests.support.hooks import SimSleep

APP_ID = 31337
INSTALLATION_ID = 4711
TOKEN_LIFETIME_S = 30
TOKENS_ROUTE = "POST /app/installations/{installation_id}/access_tokens"


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    return generate_app_key()


@pytest.fixture
def app_sim(start_simulator: Any, app_key: tuple[str, str]) -> Simulator:
    app = AppConfig(
        app_id=APP_ID,
        slug="dashboard-sync",
        public_key_pem=app_key[1],
        installations=[InstallationConfig(installation_id=INSTALLATION_ID, account="acme")],
        token_lifetime_s=TOKEN_LIFETIME_S,
    )
    simulator: Simulator = start_simulator(repos=25, seed=4, big_repos=0, latency_ms=0, apps=[app])
    return simulator


def _connect(monkeypatch: pytest.MonkeyPatch, sim: Simulator, private_pem: str, **extra: Any) -> str:
    fields = {"app_id": APP_ID, "installation_id": INSTALLATION_ID, "private_key": private_pem, **extra}
    fields = {key: value for key, value in fields.items() if value is not None}
    monkeypatch.setenv(
        "AIRFLOW_CONN_GH_APP", json.dumps({"conn_type": "github", "host": sim.url, "extra": fields})
    )
    return "gh_app"


@pytest.fixture
def app_hook(
    monkeypatch: pytest.MonkeyPatch, app_sim: Simulator, app_key: tuple[str, str]
) -> Iterator[GitHubHook]:
    hook = GitHubHook(
        _connect(monkeypatch, app_sim, app_key[0]), sleep=SimSleep(app_sim), clock=app_sim.clock.now
    )
    yield hook
    hook.close()


def test_installation_tokens_are_bought_again_before_they_expire(
    app_sim: Simulator, app_hook: GitHubHook
) -> None:
    names = [repo.name for repo in app_sim.state.repos()]
    for name in names:
        app_hook.get(f"/repos/acme/{name}")
        app_sim.clock.advance(5)  # 25 repositories x 5 s: about four token lifetimes
    # Bought ahead of expiry: no request was refused.
    assert app_sim.stats()["by_status"].get(401, 0) == 0
    assert app_sim.tokens_issued()[INSTALLATION_ID] >= (len(names) * 5) // TOKEN_LIFETIME_S
    assert app_hook.stats.credential_refreshes == 0
    # The installation's budget (5,000 + 50 per repository beyond 20) is what the hook reports.
    window = app_hook.rate_limit("core")
    assert window is not None and window.limit == 5000 + 50 * (25 - 20)


def test_a_401_buys_a_new_token_once_and_retries(
    monkeypatch: pytest.MonkeyPatch, app_sim: Simulator, app_key: tuple[str, str]
) -> None:
    # The hook's clock lags the simulator's by 40 s: it believes an expired token still fresh,
    # as after a token revoked early; GitHub answers 401 and the hook must recover by itself.
    lag = timedelta(seconds=40)
    hook = GitHubHook(_connect(monkeypatch, app_sim, app_key[0]), clock=lambda: app_sim.clock.now() - lag)
    repo = app_sim.state.repos()[0].name
    hook.get(f"/repos/acme/{repo}")
    app_sim.clock.advance(TOKEN_LIFETIME_S + 1)
    assert hook.get(f"/repos/acme/{repo}", conditional=False).status == 200
    assert hook.stats.credential_refreshes == 1
    assert app_sim.stats()["by_status"].get(401) == 1
    assert app_sim.tokens_issued()[INSTALLATION_ID] == 2
    hook.close()


def test_without_installation_id_the_owners_installation_is_found(
    monkeypatch: pytest.MonkeyPatch, app_sim: Simulator, app_key: tuple[str, str]
) -> None:
    hook = GitHubHook(
        _connect(monkeypatch, app_sim, app_key[0], installation_id=None), clock=app_sim.clock.now
    )
    [credential] = hook.credentials()
    assert isinstance(credential, AppInstallationCredential)
    assert credential.installation_for("/orgs/acme/repos") == INSTALLATION_ID
    assert len(list(hook.paginate("/orgs/acme/repos"))) == 25
    with pytest.raises(CredentialError, match="check installation_id"):
        credential.installation(999999)
    hook.close()


def test_a_wrong_key_fails_at_once_and_says_what_to_fix(
    monkeypatch: pytest.MonkeyPatch, app_sim: Simulator
) -> None:
    other_private, _ = generate_app_key()
    hook = GitHubHook(_connect(monkeypatch, app_sim, other_private), clock=app_sim.clock.now)
    with pytest.raises(CredentialError) as info:
        hook.get("/orgs/acme/repos")
    assert info.value.status == 401 and "check the app id and private key" in str(info.value)
    assert other_private not in str(info.value)
    hook.close()


def test_check_access_describes_the_installation_without_spending_budget(
    app_sim: Simulator, app_hook: GitHubHook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = app_sim.rate_limit(installation_id=INSTALLATION_ID)["remaining"]
    [report] = check_access(app_hook)
    assert report.ok and report.kind == "github_app" and report.app == "dashboard-sync"
    assert (report.installation_id, report.account) == (INSTALLATION_ID, "acme")
    assert report.permissions["issues"] == "read" and report.budget["core"].limit == 5250
    assert app_sim.rate_limit(installation_id=INSTALLATION_ID)["remaining"] == before
    ok, message = app_hook.test_connection()
    assert ok and "installation 4711 on acme" in message
    [credential] = app_hook.credentials()
    for secret in credential.secrets():
        assert secret not in caplog.text and secret not in message


def test_the_providers_hook_works_on_the_same_connection(
    monkeypatch: pytest.MonkeyPatch, start_simulator: Any, app_key: tuple[str, str]
) -> None:
    from airflow.providers.github.hooks.github import GithubHook

    # PyGithub signs its JWT with the wall clock: a simulator on real time.
    app = AppConfig(
        app_id=APP_ID,
        slug="dashboard-sync",
        public_key_pem=app_key[1],
        installations=[InstallationConfig(installation_id=INSTALLATION_ID, account="acme")],
    )
    sim: Simulator = start_simulator(repos=3, seed=4, big_repos=0, apps=[app], start_time=None)
    conn_id = _connect(monkeypatch, sim, app_key[0])
    repo = sim.state.repos()[0].name
    provider = GithubHook(github_conn_id=conn_id)
    assert provider.client.get_repo(f"acme/{repo}").name == repo
    ours = GitHubHook(conn_id)
    assert ours.get(f"/repos/acme/{repo}").json["name"] == repo
    assert sim.stats()["by_endpoint"][TOKENS_ROUTE] == 2  # one token each
    ours.close()


def test_check_connection_command_reports_every_credential_as_json(
    monkeypatch: pytest.MonkeyPatch,
    app_sim: Simulator,
    app_key: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from github_sync.devtools.cli import main

    # An App connection that also lists a token connection: two credentials, two reports.
    conn_id = _connect(monkeypatch, app_sim, app_key[0], github_sync={"credentials": ["gh_pat"]})
    monkeypatch.setenv(
        "AIRFLOW_CONN_GH_PAT",
        json.dumps({"conn_type": "github", "host": app_sim.url, "password": "ghp_cli_token"}),
    )
    spent_before = app_sim.stats()["budget_spent"]
    assert main(["check-connection", "--conn-id", conn_id, "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [(r["kind"], r["ok"]) for r in reports] == [("github_app", True), ("token", True)]
    assert reports[0]["installation_id"] == INSTALLATION_ID and reports[0]["account"] == "acme"
    assert reports[1]["budget"]["core"]["limit"] == 5000
    assert app_sim.stats()["budget_spent"] == spent_before  # nothing spent
    assert app_key[0] not in json.dumps(reports) and "ghp_cli_token" not in json.dumps(reports)
    # A credential GitHub refuses makes the command fail, naming it.
    monkeypatch.setenv(
        "AIRFLOW_CONN_GH_PAT",
        json.dumps({"conn_type": "github", "host": app_sim.url, "password": "ghs_not_issued"}),
    )
    assert main(["check-connection", "--conn-id", conn_id]) == 1
