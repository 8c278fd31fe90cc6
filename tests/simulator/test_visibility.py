"""Repository visibility per token, as GitHub documents it (real HTTP against a started simulator).

* GET /users/{username}/repos lists public repositories only, whoever asks:
  https://docs.github.com/en/rest/repos/repos#list-repositories-for-a-user
* GET /user/repos lists what the authenticated user may access, private included:
  https://docs.github.com/en/rest/repos/repos#list-repositories-for-the-authenticated-user
* GET /orgs/{org}/repos lists private repositories to members only:
  https://docs.github.com/en/rest/repos/repos#list-organization-repositories
* a private repository is a 404 for anyone without access:
  https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#404-not-found-for-an-existing-resource
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from github_sim import Simulator, SimulatorConfig
from github_sim.dataset import generate
from tests.simulator.conftest import OTHER_TOKEN, OWNER, TOKEN, auth, small_config, walk

USER = "octo"
OUTSIDER = "ghp_outsider_token"
PRIVATE = 3


def _names(sim: Simulator, private: bool | None = None) -> list[str]:
    """Names of the live repositories (``private`` filters), in full_name order."""
    with sim.state.lock:
        repos = [r for r in sim.state.repos() if private is None or r.private == private]
    return sorted((r.name for r in repos), key=str.lower)


def _get(sim: Simulator, path: str, token: str | None = TOKEN) -> requests.Response:
    headers = auth(token) if token is not None else {"Accept": "application/vnd.github+json"}
    return requests.get(sim.url + path, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def user_sim() -> Iterator[Simulator]:
    """A user owner with private repositories; TOKEN is the owner's, OUTSIDER and OTHER_TOKEN are not."""
    config = small_config(
        owner=USER,
        owner_type="User",
        repos=9,
        big_repos=0,
        private_repos=PRIVATE,
        owner_tokens=[TOKEN],
        outsider_tokens=[OUTSIDER],
    )
    with Simulator(config) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def org_sim() -> Iterator[Simulator]:
    """An organisation with private repositories; OUTSIDER is not a member, every other token is."""
    with Simulator(small_config(private_repos=PRIVATE, outsider_tokens=[OUTSIDER])) as simulator:
        yield simulator


# -- GET /users/{username}/repos ----------------------------------------------------------------
def test_user_repos_lists_public_only_even_for_the_owner(user_sim: Simulator) -> None:
    public = _names(user_sim, private=False)
    assert len(public) == 9 - PRIVATE and len(_names(user_sim, private=True)) == PRIVATE
    for token in (TOKEN, OUTSIDER, OTHER_TOKEN, None):
        for query in ("", "&type=owner", "&type=all"):
            resp = _get(user_sim, f"/users/{USER}/repos?per_page=100{query}", token)
            assert resp.status_code == 200, (token, query, resp.text)
            assert [r["name"] for r in resp.json()] == public, (token, query)
            assert all(r["private"] is False for r in resp.json())
        assert _get(user_sim, f"/users/{USER}/repos?type=member", token).json() == []
    # The profile's count agrees with the listing.
    assert _get(user_sim, f"/users/{USER}").json()["public_repos"] == len(public)


# -- GET /user/repos ----------------------------------------------------------------------------
def test_authenticated_repos_lists_private_for_the_owner(user_sim: Simulator) -> None:
    everything = _names(user_sim)
    private = _names(user_sim, private=True)
    resp = _get(user_sim, "/user/repos?per_page=100")
    assert resp.status_code == 200
    assert [r["name"] for r in resp.json()] == everything  # default sort full_name, asc
    assert {r["name"] for r in resp.json() if r["private"]} == set(private)
    assert all(r["owner"]["login"] == USER for r in resp.json())
    cases = {
        "visibility=private": private,
        "visibility=public": _names(user_sim, private=False),
        "visibility=all&affiliation=owner": everything,
        "affiliation=owner,collaborator": everything,
        "affiliation=collaborator": [],
        "affiliation=organization_member": [],  # a user owner is nobody's member
        "type=owner": everything,
        "type=private": private,
        "type=member": [],
    }
    for query, expected in cases.items():
        got = _get(user_sim, f"/user/repos?per_page=100&{query}")
        assert got.status_code == 200, (query, got.text)
        assert [r["name"] for r in got.json()] == expected, query
    desc = [r["name"] for r in _get(user_sim, "/user/repos?per_page=100&direction=desc").json()]
    assert desc == everything[::-1]
    created = _get(user_sim, "/user/repos?per_page=100&sort=created").json()
    stamps = [r["created_at"] for r in created]
    assert stamps == sorted(stamps, reverse=True)  # desc by default for sorts other than full_name
    updated = sorted(r["updated_at"] for r in resp.json())
    middle = updated[len(updated) // 2]
    after = _get(user_sim, f"/user/repos?per_page=100&since={middle}").json()
    earlier = _get(user_sim, f"/user/repos?per_page=100&before={middle}").json()
    assert after and all(r["updated_at"] > middle for r in after)
    assert earlier and all(r["updated_at"] < middle for r in earlier)


def test_authenticated_repos_pages_with_link_headers(user_sim: Simulator) -> None:
    with requests.Session() as http:
        http.headers.update(auth())
        items, responses = walk(http, f"{user_sim.url}/user/repos?per_page=2&visibility=all")
    assert [r["name"] for r in items] == _names(user_sim)
    assert len(responses) == 5 and [len(r.json()) for r in responses] == [2, 2, 2, 2, 1]
    first = responses[0].links
    assert first["next"]["url"] == f"{user_sim.url}/user/repos?per_page=2&visibility=all&page=2"
    assert first["last"]["url"] == f"{user_sim.url}/user/repos?per_page=2&visibility=all&page=5"
    assert "prev" not in first
    last = responses[-1].links
    assert "next" not in last and last["first"]["url"].startswith(f"{user_sim.url}/user/repos?")


def test_authenticated_repos_type_with_visibility_or_affiliation_is_422(user_sim: Simulator) -> None:
    for query in (
        "type=owner&visibility=all",
        "type=all&affiliation=owner",
        "type=private&visibility=private",
    ):
        resp = _get(user_sim, f"/user/repos?{query}")
        assert resp.status_code == 422, query
        body = resp.json()
        assert body["message"] == "Validation Failed"
        assert body["errors"][0]["field"] == "type" and body["errors"][0]["code"] == "invalid"
        assert body["documentation_url"].endswith("#list-repositories-for-the-authenticated-user")
    for query in ("visibility=secret", "affiliation=friend", "type=forks", "sort=stars"):
        assert _get(user_sim, f"/user/repos?{query}").status_code == 422, query


def test_authenticated_repos_requires_authentication(user_sim: Simulator) -> None:
    resp = _get(user_sim, "/user/repos", token=None)
    assert resp.status_code == 401 and resp.json()["message"] == "Requires authentication"


# -- outsiders of a user owner --------------------------------------------------------------------
def test_user_owner_outsiders_see_public_only(user_sim: Simulator) -> None:
    secret = _names(user_sim, private=True)[0]
    public = _names(user_sim, private=False)[0]
    assert _get(user_sim, f"/repos/{USER}/{secret}").status_code == 200  # the owner's own token
    # OUTSIDER is listed as an outsider; OTHER_TOKEN is simply not one of owner_tokens.
    for token in (OUTSIDER, OTHER_TOKEN, None):
        if token is not None:
            assert _get(user_sim, "/user/repos?per_page=100", token).json() == []
            assert _get(user_sim, "/user/repos?visibility=public", token).json() == []
        for sub in ("", "/issues", "/commits", "/languages"):
            resp = _get(user_sim, f"/repos/{USER}/{secret}{sub}", token)
            assert resp.status_code == 404 and resp.json()["message"] == "Not Found", (token, sub)
        assert _get(user_sim, f"/repos/{USER}/{public}", token).status_code == 200


# -- GET /user ------------------------------------------------------------------------------------
def test_authenticated_user_is_the_owner_for_its_token(user_sim: Simulator) -> None:
    profile = _get(user_sim, f"/users/{USER}").json()
    me = _get(user_sim, "/user").json()
    assert me["login"] == USER and me["id"] == profile["id"] and me["type"] == "User"
    assert me["owned_private_repos"] == PRIVATE and me["total_private_repos"] == PRIVATE
    assert me["public_repos"] == 9 - PRIVATE
    for token in (OUTSIDER, OTHER_TOKEN):
        other = _get(user_sim, "/user", token).json()
        assert other["login"] != USER and other["owned_private_repos"] == 0
        assert other["login"] == user_sim.state.user_for_token(token).login  # stable pool account


def test_user_owner_without_owner_tokens_accepts_any_token_as_the_owners() -> None:
    config = small_config(owner=USER, owner_type="User", repos=5, big_repos=0, private_repos=2)
    with Simulator(config) as sim:
        for token in ("t1", "another"):
            me = _get(sim, "/user", token).json()
            assert me["login"] == USER and me["owned_private_repos"] == 2
            listed = _get(sim, "/user/repos", token).json()
            assert [r["name"] for r in listed] == _names(sim)
            assert len(_get(sim, f"/users/{USER}/repos", token).json()) == 3


# -- organisation owner ---------------------------------------------------------------------------
def test_organization_outsider_sees_public_only(org_sim: Simulator) -> None:
    everything = _names(org_sim)
    public = _names(org_sim, private=False)
    secret = _names(org_sim, private=True)
    assert len(secret) == PRIVATE

    def listed(token: str | None) -> list[str]:
        # The organisation listing sorts by created by default: compare sorted names.
        return sorted(r["name"] for r in _get(org_sim, f"/orgs/{OWNER}/repos?per_page=100", token).json())

    assert listed(TOKEN) == sorted(everything) and listed(OTHER_TOKEN) == sorted(everything)
    assert listed(OUTSIDER) == sorted(public) and listed(None) == sorted(public)
    assert _get(org_sim, f"/orgs/{OWNER}/repos?type=private", OUTSIDER).json() == []
    for sub in ("", "/issues", "/pulls"):
        assert _get(org_sim, f"/repos/{OWNER}/{secret[0]}{sub}", OUTSIDER).status_code == 404
        assert _get(org_sim, f"/repos/{OWNER}/{secret[0]}{sub}", None).status_code == 404
        assert _get(org_sim, f"/repos/{OWNER}/{secret[0]}{sub}", TOKEN).status_code == 200
    repo_id = _get(org_sim, f"/repos/{OWNER}/{secret[0]}").json()["id"]
    assert _get(org_sim, f"/repositories/{repo_id}", OUTSIDER).status_code == 404
    assert _get(org_sim, f"/repos/{OWNER}/{public[0]}", OUTSIDER).status_code == 200


def test_organization_members_list_org_repos_in_user_repos(org_sim: Simulator) -> None:
    everything = _names(org_sim)
    for token in (TOKEN, OTHER_TOKEN):
        assert [r["name"] for r in _get(org_sim, "/user/repos?per_page=100", token).json()] == everything
        member = _get(org_sim, "/user/repos?per_page=100&affiliation=organization_member", token).json()
        assert [r["name"] for r in member] == everything
        assert [r["name"] for r in _get(org_sim, "/user/repos?type=member&per_page=100", token).json()] == (
            everything
        )
        assert _get(org_sim, "/user/repos?affiliation=owner", token).json() == []  # members own nothing
        assert _get(org_sim, "/user", token).json()["login"] != OWNER  # an organisation has no token
    assert _get(org_sim, "/user/repos?per_page=100", OUTSIDER).json() == []


def test_organization_events_hide_private_repositories(org_sim: Simulator) -> None:
    # Read-only on the shared simulator: the seeded push events cover every repository with commits.
    with org_sim.state.lock:
        secret_ids = {r.id for r in org_sim.state.repos() if r.private and r.commits}
    assert secret_ids
    member = _get(org_sim, f"/orgs/{OWNER}/events?per_page=100").json()
    assert {e["repo"]["id"] for e in member if e["public"] is False} == secret_ids
    for token in (OUTSIDER, None):
        shown = _get(org_sim, f"/orgs/{OWNER}/events?per_page=100", token).json()
        assert shown and all(e["repo"]["id"] not in secret_ids and e["public"] for e in shown)
    secret = _names(org_sim, private=True)[0]
    assert _get(org_sim, f"/repos/{OWNER}/{secret}/events", OUTSIDER).status_code == 404


# -- configuration --------------------------------------------------------------------------------
def test_private_repos_is_exact_deterministic_and_changes_nothing_else() -> None:
    default = generate(SimulatorConfig(owner=OWNER, repos=30, seed=7))

    def fields(repo: object) -> dict[str, object]:
        return {k: getattr(repo, k) for k in repo.__slots__ if k != "private"}  # type: ignore[attr-defined]

    for count in (0, 4, 30):
        config = SimulatorConfig(owner=OWNER, repos=30, seed=7, private_repos=count)
        first, again = generate(config), generate(config)
        private = [r.name for r in first.repos if r.private]
        assert len(private) == count and private == [r.name for r in again.repos if r.private]
        # Only the private flags differ from the seeded data set.
        assert [fields(r) for r in first.repos] == [fields(r) for r in default.repos]
        if count == 4:
            assert all(r.commits for r in first.repos if r.private)  # non-empty ones are preferred


def test_config_rejects_impossible_visibility_settings() -> None:
    with pytest.raises(ValueError, match="private_repos"):
        SimulatorConfig(repos=3, private_repos=4)
    with pytest.raises(ValueError, match="private_repos"):
        SimulatorConfig(private_repos=-1)
    with pytest.raises(ValueError, match="owner and outsider"):
        SimulatorConfig(owner_type="User", owner_tokens=["a", "b"], outsider_tokens=["b"])
