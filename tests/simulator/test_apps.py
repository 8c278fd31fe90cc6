"""GitHub Apps over real HTTP: JWTs, installation access tokens, their budget, and PyGithub as a client."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import github
import jwt
import pytest
import requests
from openapi_schema_validator import OAS30Validator

from github_sim import Simulator
from github_sim.apps import generate_app_key, installation_rate_limit
from github_sim.cli import build_parser, config_from_args
from github_sim.config import AppConfig, InstallationConfig
from tests.simulator.conftest import OWNER, TOKEN, auth, big_repo, walk

APP_ID = 4242
INSTALLATION_ID = 77
SLUG = "sync-app"
CLIENT_ID = "Iv1.0123456789abcdef"
TOKEN_SHAPE = re.compile(r"^ghs_[A-Za-z0-9]{36}$")
TOKENS_ROUTE = "POST /app/installations/{installation_id}/access_tokens"

StartSimulator = Callable[..., Simulator]


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    """(private PEM, public PEM) of the test App."""
    return generate_app_key()


@pytest.fixture(scope="module")
def openapi(github_samples: Path) -> dict[str, Any]:
    """GitHub's REST description."""
    with (github_samples / "openapi" / "api.github.com.json").open() as fh:
        return json.load(fh)


def app_config(public_pem: str, **installation: Any) -> AppConfig:
    """The test App, installed on the organisation."""
    lifetime = installation.pop("token_lifetime_s", 3600)
    return AppConfig(
        app_id=APP_ID,
        slug=SLUG,
        public_key_pem=public_pem,
        client_id=CLIENT_ID,
        installations=[InstallationConfig(installation_id=INSTALLATION_ID, account=OWNER, **installation)],
        token_lifetime_s=lifetime,
    )


@pytest.fixture
def app_sim(start_simulator: StartSimulator, app_key: tuple[str, str]) -> Simulator:
    """12 repositories (some private) and the test App installed on the organisation."""
    return start_simulator(
        repos=12, big_repos=1, private_repos=3, apps=[app_config(app_key[1], token_lifetime_s=30)]
    )


def make_jwt(
    sim: Simulator,
    private_pem: str,
    iss: int | str = APP_ID,
    iat: float = -60,
    exp: float = 540,
    **extra: Any,
) -> str:
    """A JWT signed with ``private_pem``; ``iat``/``exp`` are offsets from the simulator's now."""
    now = int(sim.clock.timestamp())
    return sign({"iat": now + iat, "exp": now + exp, "iss": iss, **extra}, private_pem)


def sign(claims: dict[str, Any], private_pem: str) -> str:
    """An RS256 JWT of ``claims`` (through PyJWS: PyJWT refuses to encode a numeric ``iss``)."""
    return jwt.PyJWS().encode(
        json.dumps(claims).encode(), private_pem, algorithm="RS256", headers={"typ": "JWT"}
    )


def bearer(token: str) -> dict[str, str]:
    """Headers of a request authenticated with ``token``."""
    return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}


def issue_token(sim: Simulator, private_pem: str, body: dict[str, Any] | None = None) -> requests.Response:
    """POST /app/installations/{id}/access_tokens with a fresh JWT."""
    return requests.post(
        f"{sim.url}/app/installations/{INSTALLATION_ID}/access_tokens",
        headers=bearer(make_jwt(sim, private_pem)),
        json=body,
        timeout=10,
    )


def validate(openapi: dict[str, Any], path: str, method: str, status: str, body: Any) -> None:
    """Assert ``body`` is valid against GitHub's description of the operation's answer."""
    response = openapi["paths"][path][method]["responses"][status]
    if "$ref" in response:
        response = openapi["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    errors = [
        e
        for e in OAS30Validator({**schema, "components": openapi["components"]}).iter_errors(body)
        if not (e.instance is None and isinstance(e.schema, dict) and e.schema.get("nullable") is True)
    ]
    assert not errors, [f"{list(e.absolute_path)[:6]}: {e.message[:200]}" for e in errors[:5]]


# -- JWT ----------------------------------------------------------------------------------------
def test_valid_jwt_gets_the_app(
    app_sim: Simulator, app_key: tuple[str, str], openapi: dict[str, Any]
) -> None:
    private = app_key[0]
    for iss in (APP_ID, str(APP_ID), CLIENT_ID):
        resp = requests.get(
            f"{app_sim.url}/app", headers=bearer(make_jwt(app_sim, private, iss=iss)), timeout=10
        )
        assert resp.status_code == 200, (iss, resp.text)
        body = resp.json()
        assert (body["id"], body["slug"], body["client_id"]) == (APP_ID, SLUG, CLIENT_ID)
        assert body["installations_count"] == 1
    validate(openapi, "/app", "get", "200", body)
    # JWT requests spend nobody's budget.
    assert app_sim.stats()["budget_spent"] == 0
    assert resp.headers["x-ratelimit-remaining"] == resp.headers["x-ratelimit-limit"]


def _tampered(token: str) -> str:
    head, payload, sig = token.split(".")
    middle = len(sig) // 2
    return f"{head}.{payload}.{sig[:middle]}{'A' if sig[middle] != 'A' else 'B'}{sig[middle + 1 :]}"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bad signature", "A JSON web token could not be decoded"),
        ("wrong key", "A JSON web token could not be decoded"),
        ("unknown issuer", "A JSON web token could not be decoded"),
        ("expired", "'Expiration time' claim ('exp') must be a numeric value"),
        ("exp 11 minutes ahead", "'Expiration time' claim ('exp') is too far in the future"),
        ("iat in the future", "'Issued at' claim ('iat') must be an Integer"),
        ("no exp", "'Expiration time' claim ('exp') must be a numeric value"),
        ("garbage", "A JSON web token could not be decoded"),
    ],
)
def test_refused_jwts_answer_401(
    app_sim: Simulator, app_key: tuple[str, str], case: str, message: str
) -> None:
    private = app_key[0]
    now = int(app_sim.clock.timestamp())
    tokens = {
        "bad signature": lambda: _tampered(make_jwt(app_sim, private)),
        "wrong key": lambda: make_jwt(app_sim, generate_app_key()[0]),
        "unknown issuer": lambda: make_jwt(app_sim, private, iss=APP_ID + 1),
        "expired": lambda: make_jwt(app_sim, private, iat=-700, exp=-10),
        "exp 11 minutes ahead": lambda: make_jwt(app_sim, private, iat=0, exp=660),
        "iat in the future": lambda: make_jwt(app_sim, private, iat=120, exp=300),
        "no exp": lambda: sign({"iat": now - 60, "iss": APP_ID}, private),
        "garbage": lambda: "eyJhbGciOiJSUzI1NiJ9.Z2FyYmFnZQ.c2ln",
    }
    for path in ("/app", f"/app/installations/{INSTALLATION_ID}/access_tokens"):
        method = requests.post if path.endswith("access_tokens") else requests.get
        resp = method(app_sim.url + path, headers=bearer(tokens[case]()), timeout=10)
        assert resp.status_code == 401, (case, resp.text)
        body = resp.json()
        assert body["message"].startswith(message) and body["documentation_url"].startswith(
            "https://docs.github.com"
        )
    assert app_sim.tokens_issued() == {INSTALLATION_ID: 0}


def test_jwt_uses_the_simulator_clock(app_sim: Simulator, app_key: tuple[str, str]) -> None:
    token = make_jwt(app_sim, app_key[0], iat=-60, exp=120)
    assert requests.get(f"{app_sim.url}/app", headers=bearer(token), timeout=10).status_code == 200
    app_sim.clock.advance(121)
    assert requests.get(f"{app_sim.url}/app", headers=bearer(token), timeout=10).status_code == 401


def test_jwt_only_reaches_app_routes_and_tokens_do_not_reach_them(
    app_sim: Simulator, app_key: tuple[str, str]
) -> None:
    jwt_headers = bearer(make_jwt(app_sim, app_key[0]))
    resp = requests.get(f"{app_sim.url}/orgs/{OWNER}/repos", headers=jwt_headers, timeout=10)
    assert resp.status_code == 403 and resp.json()["message"] == "Resource not accessible by integration"
    # GET /rate_limit stays available (and free) to a JWT.
    assert requests.get(f"{app_sim.url}/rate_limit", headers=jwt_headers, timeout=10).status_code == 200
    for path in ("/app", "/app/installations", f"/orgs/{OWNER}/installation"):
        resp = requests.get(app_sim.url + path, headers=auth(), timeout=10)
        assert resp.status_code == 401 and resp.json()["message"] == "A JSON web token could not be decoded"


# -- installations ------------------------------------------------------------------------------
def test_installation_lookups(app_sim: Simulator, app_key: tuple[str, str], openapi: dict[str, Any]) -> None:
    headers = bearer(make_jwt(app_sim, app_key[0]))
    name = big_repo(app_sim)
    found = {
        f"/app/installations/{INSTALLATION_ID}": "/app/installations/{installation_id}",
        f"/orgs/{OWNER}/installation": "/orgs/{org}/installation",
        f"/users/{OWNER}/installation": "/users/{username}/installation",
        f"/repos/{OWNER}/{name}/installation": "/repos/{owner}/{repo}/installation",
    }
    for path, op in found.items():
        resp = requests.get(app_sim.url + path, headers=headers, timeout=10)
        assert resp.status_code == 200, (path, resp.text)
        body = resp.json()
        assert body["id"] == INSTALLATION_ID and body["account"]["login"] == OWNER
        assert body["app_id"] == APP_ID and body["repository_selection"] == "all"
        assert body["access_tokens_url"] == f"{app_sim.url}/app/installations/{INSTALLATION_ID}/access_tokens"
        validate(openapi, op, "get", "200", body)
    listing = requests.get(f"{app_sim.url}/app/installations", headers=headers, timeout=10)
    assert listing.status_code == 200 and [i["id"] for i in listing.json()] == [INSTALLATION_ID]
    # The listing's inline item schema puts `account` under allOf(simple-user, enterprise), which
    # no account satisfies; each item is the `installation` GET /app/installations/{id} answers.
    for item in listing.json():
        validate(openapi, "/app/installations/{installation_id}", "get", "200", item)
    for path in (
        "/app/installations/999",
        "/orgs/other-org/installation",
        "/users/someone/installation",
        f"/repos/{OWNER}/no-such-repo/installation",
    ):
        resp = requests.get(app_sim.url + path, headers=headers, timeout=10)
        assert resp.status_code == 404 and resp.json()["message"] == "Not Found", path
    assert (
        requests.post(
            f"{app_sim.url}/app/installations/999/access_tokens", headers=headers, timeout=10
        ).status_code
        == 404
    )


def test_org_route_is_404_for_a_user_account(
    start_simulator: StartSimulator, app_key: tuple[str, str]
) -> None:
    app = AppConfig(
        app_id=APP_ID,
        slug=SLUG,
        public_key_pem=app_key[1],
        installations=[InstallationConfig(installation_id=5, account="octo")],
    )
    sim = start_simulator(owner="octo", owner_type="User", repos=4, big_repos=0, apps=[app])
    headers = bearer(make_jwt(sim, app_key[0]))
    assert requests.get(f"{sim.url}/orgs/octo/installation", headers=headers, timeout=10).status_code == 404
    user = requests.get(f"{sim.url}/users/octo/installation", headers=headers, timeout=10)
    assert user.status_code == 200 and user.json()["target_type"] == "User"


# -- installation access tokens -----------------------------------------------------------------
def test_access_token_is_201_and_reads_everything(
    app_sim: Simulator, app_key: tuple[str, str], openapi: dict[str, Any]
) -> None:
    resp = issue_token(app_sim, app_key[0])
    assert resp.status_code == 201, resp.text
    body = resp.json()
    validate(openapi, "/app/installations/{installation_id}/access_tokens", "post", "201", body)
    assert set(body) == {"token", "expires_at", "permissions", "repository_selection"}
    assert TOKEN_SHAPE.match(body["token"])
    assert body["permissions"] == {
        "metadata": "read",
        "contents": "read",
        "issues": "read",
        "pull_requests": "read",
    }
    assert body["repository_selection"] == "all"
    assert body["expires_at"].endswith("Z")
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert abs((expires - (app_sim.clock.now() + timedelta(seconds=30))).total_seconds()) <= 2
    # Issuing spends nothing; the route is counted.
    stats = app_sim.stats()
    assert stats["by_endpoint"][TOKENS_ROUTE] == 1 and stats["budget_spent"] == 0
    assert app_sim.tokens_issued() == {INSTALLATION_ID: 1}
    assert app_sim.rate_limit_remaining(installation_id=INSTALLATION_ID) == 5000

    with requests.Session() as http:
        http.headers.update(bearer(body["token"]))
        with app_sim.state.lock:
            every = {r.name for r in app_sim.state.repos()}
            private = {r.name for r in app_sim.state.repos() if r.private}
        assert private, "the data set should have private repositories"
        repos, _ = walk(http, f"{app_sim.url}/orgs/{OWNER}/repos?per_page=5")
        assert {r["name"] for r in repos} == every  # private ones included
        issues = http.get(f"{app_sim.url}/repos/{OWNER}/{big_repo(app_sim)}/issues", timeout=10)
        assert issues.status_code == 200 and issues.json()
        first = http.get(f"{app_sim.url}/installation/repositories?per_page=5", timeout=10)
        assert first.status_code == 200
        page = first.json()
        assert page["total_count"] == len(every) and page["repository_selection"] == "all"
        assert len(page["repositories"]) == 5 and 'rel="next"' in first.headers["Link"]
        validate(openapi, "/installation/repositories", "get", "200", page)
        names = []
        next_url: str | None = first.url
        while next_url:
            resp = http.get(next_url, timeout=10)
            names += [r["name"] for r in resp.json()["repositories"]]
            next_url = resp.links.get("next", {}).get("url")
        assert sorted(names) == sorted(every)
        # Conditional requests work as on other routes.
        cached = http.get(first.url, headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
        assert cached.status_code == 304
        # An installation token is no user.
        me = http.get(f"{app_sim.url}/user", timeout=10)
        assert me.status_code == 403 and me.json()["message"] == "Resource not accessible by integration"
    assert app_sim.rate_limit_remaining(body["token"]) < 5000


def test_installation_repositories_needs_an_installation_token(app_sim: Simulator) -> None:
    resp = requests.get(f"{app_sim.url}/installation/repositories", headers=auth(), timeout=10)
    assert resp.status_code == 403
    assert resp.json()["message"].startswith("You must authenticate with an installation access token")


def test_token_expires_on_the_simulator_clock(app_sim: Simulator, app_key: tuple[str, str]) -> None:
    token = issue_token(app_sim, app_key[0]).json()["token"]
    url = f"{app_sim.url}/orgs/{OWNER}/repos"
    assert requests.get(url, headers=bearer(token), timeout=10).status_code == 200
    app_sim.clock.advance(31)
    expired = requests.get(url, headers=bearer(token), timeout=10)
    assert expired.status_code == 401 and expired.json()["message"] == "Bad credentials"
    fresh = issue_token(app_sim, app_key[0])
    assert fresh.status_code == 201
    assert requests.get(url, headers=bearer(fresh.json()["token"]), timeout=10).status_code == 200
    info = requests.get(f"{app_sim.url}/_sim/apps", timeout=10).json()
    assert info["apps"][0]["installations"][0]["tokens_issued"] == 2


def test_requested_permissions_must_be_granted(app_sim: Simulator, app_key: tuple[str, str]) -> None:
    refused = issue_token(app_sim, app_key[0], {"permissions": {"issues": "write"}})
    assert refused.status_code == 422
    assert refused.json()["message"] == "The permissions requested are not granted to this installation."
    assert issue_token(app_sim, app_key[0], {"permissions": {"administration": "read"}}).status_code == 422
    narrowed = issue_token(app_sim, app_key[0], {"permissions": {"issues": "read"}})
    assert narrowed.status_code == 201 and narrowed.json()["permissions"] == {"issues": "read"}


def test_token_restricted_to_repositories(app_sim: Simulator, app_key: tuple[str, str]) -> None:
    with app_sim.state.lock:
        private = next(r.name for r in app_sim.state.repos() if r.private)
        other_private = [r.name for r in app_sim.state.repos() if r.private and r.name != private]
    resp = issue_token(app_sim, app_key[0], {"repositories": [private]})
    assert resp.status_code == 201
    body = resp.json()
    assert body["repository_selection"] == "selected" and [r["name"] for r in body["repositories"]] == [
        private
    ]
    headers = bearer(body["token"])
    listing = requests.get(f"{app_sim.url}/installation/repositories", headers=headers, timeout=10).json()
    assert listing["total_count"] == 1 and listing["repository_selection"] == "selected"
    assert (
        requests.get(f"{app_sim.url}/repos/{OWNER}/{private}", headers=headers, timeout=10).status_code == 200
    )
    for name in other_private:
        assert (
            requests.get(f"{app_sim.url}/repos/{OWNER}/{name}", headers=headers, timeout=10).status_code
            == 404
        )
    assert issue_token(app_sim, app_key[0], {"repositories": ["no-such-repo"]}).status_code == 422


def test_issued_tokens_are_accepted_next_to_a_fixed_token_list(
    start_simulator: StartSimulator, app_key: tuple[str, str]
) -> None:
    sim = start_simulator(repos=4, big_repos=0, tokens=[TOKEN], apps=[app_config(app_key[1])])
    token = issue_token(sim, app_key[0]).json()["token"]
    assert requests.get(f"{sim.url}/orgs/{OWNER}/repos", headers=bearer(token), timeout=10).status_code == 200
    made_up = "ghs_" + "x" * 36
    assert (
        requests.get(f"{sim.url}/orgs/{OWNER}/repos", headers=bearer(made_up), timeout=10).status_code == 401
    )


# -- the installation's budget ------------------------------------------------------------------
def test_installation_rate_limit_formula() -> None:
    assert installation_rate_limit(0) == 5000
    assert installation_rate_limit(20) == 5000
    assert installation_rate_limit(21) == 5050
    assert installation_rate_limit(120) == 10000
    assert installation_rate_limit(120, users=30) == 10500
    assert installation_rate_limit(120, users=30, organization=False) == 10000
    assert installation_rate_limit(300) == 12500


def test_tokens_of_an_installation_share_its_budget(
    start_simulator: StartSimulator, app_key: tuple[str, str]
) -> None:
    sim = start_simulator(repos=120, big_repos=0, apps=[app_config(app_key[1])])
    first, second = (issue_token(sim, app_key[0]).json()["token"] for _ in range(2))
    url = f"{sim.url}/orgs/{OWNER}/repos"
    resp = requests.get(url, headers=bearer(first), timeout=10)
    assert resp.headers["x-ratelimit-limit"] == "10000"  # 5,000 + 50 x (120 - 20)
    assert resp.headers["x-ratelimit-remaining"] == "9999"
    resp = requests.get(url, headers=bearer(second), timeout=10)
    assert resp.headers["x-ratelimit-remaining"] == "9998"
    assert sim.rate_limit_remaining(installation_id=INSTALLATION_ID) == 9998
    assert sim.rate_limit_remaining(first) == sim.rate_limit_remaining(second) == 9998
    assert sim.rate_limit_remaining(TOKEN) == 5000  # a user's token has its own
    rate = requests.get(f"{sim.url}/rate_limit", headers=bearer(first), timeout=10).json()
    assert rate["resources"]["core"]["limit"] == 10000 and rate["rate"]["remaining"] == 9998
    assert sim.rate_limit_remaining(installation_id=INSTALLATION_ID) == 9998  # /rate_limit is free
    # Exhausting the installation (Python and control API) refuses every one of its tokens.
    sim.set_rate_limit_remaining(None, 0, installation_id=INSTALLATION_ID)
    limited = requests.get(url, headers=bearer(second), timeout=10)
    assert limited.status_code == 403
    assert limited.json()["message"].startswith(
        f"API rate limit exceeded for installation ID {INSTALLATION_ID}."
    )
    control = requests.post(
        f"{sim.url}/_sim/rate-limit", json={"installation_id": INSTALLATION_ID, "remaining": 7}, timeout=10
    ).json()
    assert control["remaining"] == 7 and control["limit"] == 10000
    read = requests.get(f"{sim.url}/_sim/rate-limit", params={"token": first}, timeout=10).json()
    assert read["remaining"] == 7
    assert requests.get(url, headers=bearer(first), timeout=10).status_code == 200


def test_installation_limit_is_capped(start_simulator: StartSimulator, app_key: tuple[str, str]) -> None:
    sim = start_simulator(repos=300, big_repos=0, apps=[app_config(app_key[1])])
    token = issue_token(sim, app_key[0]).json()["token"]
    resp = requests.get(f"{sim.url}/rate_limit", headers=bearer(token), timeout=10)
    assert resp.json()["resources"]["core"]["limit"] == 12500
    assert resp.headers["x-ratelimit-limit"] == "12500"


# -- an independent client ----------------------------------------------------------------------
def test_pygithub_authenticates_as_the_installation(
    start_simulator: StartSimulator, app_key: tuple[str, str]
) -> None:
    # Real time (start_time=None): PyGithub signs its JWT with time.time().
    sim = start_simulator(repos=6, big_repos=0, start_time=None, apps=[app_config(app_key[1])])
    with sim.state.lock:
        name = sim.state.repos()[0].name
    installation_auth = github.Auth.AppAuth(APP_ID, app_key[0]).get_installation_auth(INSTALLATION_ID)
    client = github.Github(auth=installation_auth, base_url=sim.url)
    try:
        assert client.get_repo(f"{OWNER}/{name}").name == name
        assert sim.tokens_issued() == {INSTALLATION_ID: 1}
        integration = github.GithubIntegration(auth=github.Auth.AppAuth(APP_ID, app_key[0]), base_url=sim.url)
        assert [i.id for i in integration.get_installations()] == [INSTALLATION_ID]
        assert integration.get_org_installation(OWNER).id == INSTALLATION_ID
    finally:
        client.close()
    assert sim.stats()["by_endpoint"][TOKENS_ROUTE] >= 1


# -- command line -------------------------------------------------------------------------------
def test_cli_enables_one_app(tmp_path: Path, app_key: tuple[str, str]) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(app_key[1])
    args = build_parser().parse_args(
        [
            "--owner",
            "acme",
            "--app-id",
            "12",
            "--app-public-key-file",
            str(key_file),
            "--app-installation-id",
            "34",
            "--app-token-lifetime",
            "30",
            "--token-user",
            "t1=alice",
            "--token-user",
            "t2=alice",
        ]
    )
    config = config_from_args(args)
    (app,) = config.apps
    assert (app.app_id, app.token_lifetime_s, app.public_key_pem) == (12, 30, app_key[1])
    assert [(i.installation_id, i.account) for i in app.installations] == [(34, "acme")]
    assert config.token_users == {"t1": "alice", "t2": "alice"}
    assert config_from_args(build_parser().parse_args([])).apps == []
