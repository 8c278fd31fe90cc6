"""GET /orgs/{org}/issues over real HTTP, as GitHub documents it:
https://docs.github.com/en/rest/issues/issues#list-organization-issues-assigned-to-the-authenticated-user

Issues and pull requests of every repository the token sees, each with its ``repository``;
``filter`` (default ``assigned``), ``state`` (default ``open``), ``labels``, ``sort``,
``direction``, ``since``, paging with Link headers, conditional requests, 422/404/401, and 403
for an installation access token (the operation is not enabled for GitHub Apps).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from github_sim import Simulator
from github_sim.apps import generate_app_key
from github_sim.records import Issue, Repo
from tests.simulator.conftest import OWNER, TOKEN, auth, small_config, walk
from tests.simulator.test_apps import app_config, issue_token

OUTSIDER = "ghp_outsider_token"
ROUTE = "GET /orgs/{org}/issues"


@pytest.fixture(scope="module")
def org_sim() -> Iterator[Simulator]:
    """12 repositories (3 private, 2 archived, one big), read-only; OUTSIDER is not a member."""
    with Simulator(small_config(private_repos=3, outsider_tokens=[OUTSIDER])) as simulator:
        yield simulator


def _issues(sim: Simulator, token: str = TOKEN, private: bool = True) -> list[tuple[Repo, Issue]]:
    """Every (repository, issue) the token's listing could hold (``private``: private repos too)."""
    with sim.state.lock:
        return [(r, i) for r in sim.state.repos() if private or not r.private for i in r.issues.values()]


def _login(sim: Simulator, token: str = TOKEN) -> str:
    return sim.access.account(token).login


def _get(sim: Simulator, query: str, token: str | None = TOKEN) -> requests.Response:
    headers = auth(token) if token is not None else {"Accept": "application/vnd.github+json"}
    return requests.get(f"{sim.url}/orgs/{OWNER}/issues{query}", headers=headers, timeout=10)


def _ids(items: list[dict[str, Any]]) -> list[int]:
    return [i["id"] for i in items]


def test_filter_all_lists_every_issue_and_pull_request_with_its_repository(org_sim: Simulator) -> None:
    with requests.Session() as http:
        http.headers.update(auth())
        items, responses = walk(http, f"{org_sim.url}/orgs/{OWNER}/issues?filter=all&state=all&per_page=100")
    expected = _issues(org_sim)
    assert len(expected) > 100, "the data set should need more than one page"
    assert sorted(_ids(items)) == sorted(i.id for _, i in expected)
    assert len(responses) == -(-len(expected) // 100)
    # Links use the organisation's id, like the repository listing's.
    org_id = org_sim.state.owner.id
    assert responses[0].links["next"]["url"].startswith(f"{org_sim.url}/organizations/{org_id}/issues?")
    assert any(i.is_pr for _, i in expected) and any(not i.is_pr for _, i in expected)
    by_id = {i.id: (r, i) for r, i in expected}
    for item in items:
        repo, issue = by_id[item["id"]]
        assert item["repository"]["full_name"] == f"{OWNER}/{repo.name}"
        assert (
            item["repository_url"] == item["repository"]["url"] == f"{org_sim.url}/repos/{OWNER}/{repo.name}"
        )
        assert item["number"] == issue.number
        assert ("pull_request" in item) == issue.is_pr
    # Default sort: created, desc (the issue id breaks ties across repositories).
    stamps = [i["created_at"] for i in items]
    assert stamps == sorted(stamps, reverse=True)
    # Archived repositories are listed too.
    archived = {f"{OWNER}/{r.name}" for r, _ in expected if r.archived}
    assert archived and archived <= {i["repository"]["full_name"] for i in items}


def test_defaults_are_assigned_and_open(org_sim: Simulator) -> None:
    login = _login(org_sim)
    expected = {
        i.id for _, i in _issues(org_sim) if i.state == "open" and any(a.login == login for a in i.assignees)
    }
    assert expected, "the token's user should be assigned some open issue"
    got = _get(org_sim, "?per_page=100")
    assert got.status_code == 200 and set(_ids(got.json())) == expected
    created = {i.id for _, i in _issues(org_sim) if i.state == "open" and i.user.login == login}
    assert set(_ids(_get(org_sim, "?filter=created&per_page=100").json())) == created
    closed = _get(org_sim, "?filter=repos&state=closed&per_page=100").json()
    assert closed and all(i["state"] == "closed" for i in closed)


def test_labels_since_sort_and_direction(org_sim: Simulator) -> None:
    every = _issues(org_sim)
    labelled = {i.id for _, i in every if {"bug"} <= {lab.name for lab in i.labels}}
    got = walk_ids(org_sim, "filter=all&state=all&labels=bug")
    assert labelled and set(got) == labelled
    middle = sorted(i.updated_at for _, i in every)[len(every) // 2]
    since = middle.strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = {i.id for _, i in every if i.updated_at >= middle}
    assert set(walk_ids(org_sim, f"filter=all&state=all&since={since}")) == recent
    asc = _get(org_sim, "?filter=all&state=all&sort=updated&direction=asc&per_page=100").json()
    stamps = [i["updated_at"] for i in asc]
    assert stamps == sorted(stamps)
    comments = _get(org_sim, "?filter=all&state=all&sort=comments&per_page=100").json()
    assert [i["comments"] for i in comments] == sorted((i["comments"] for i in comments), reverse=True)
    # `type` names an issue type; no simulated issue has one.
    assert _get(org_sim, "?filter=all&type=Bug").json() == []


def walk_ids(sim: Simulator, query: str) -> list[int]:
    """Ids of every item of the member token's listing ``query``, following Link headers."""
    with requests.Session() as http:
        http.headers.update(auth())
        items, _ = walk(http, f"{sim.url}/orgs/{OWNER}/issues?{query}&per_page=100")
    return _ids(items)


def test_outsiders_see_issues_of_public_repositories_only(org_sim: Simulator) -> None:
    public = {i.id for _, i in _issues(org_sim, private=False)}
    assert public != {i.id for _, i in _issues(org_sim)}, "some repository should be private with issues"
    with requests.Session() as http:
        http.headers.update(auth(OUTSIDER))
        items, _ = walk(http, f"{org_sim.url}/orgs/{OWNER}/issues?filter=all&state=all&per_page=100")
    assert set(_ids(items)) == public
    assert not any(i["repository"]["private"] for i in items)


def test_mentions_and_mutations_show_up(sim: Simulator) -> None:
    login = _login(sim)
    with sim.state.lock:
        repo = next(r.name for r in sim.state.repos() if not r.private)
    sim.clock.advance(3600 * 24 * 400)  # after the generated history: first in created desc order
    mentioned = sim.state.create_issue(repo, "Please look", body=f"cc @{login}, thanks")
    other = sim.state.create_issue(repo, "Not you", body=f"cc @{login}x")
    got = _get(sim, "?filter=mentioned&per_page=100").json()
    assert mentioned["id"] in _ids(got) and other["id"] not in _ids(got)
    assert mentioned["id"] in _ids(_get(sim, "?filter=subscribed&per_page=100").json())
    first = _get(sim, "?filter=all&per_page=1").json()[0]
    assert first["id"] == other["id"] and first["repository"]["name"] == repo
    sim.state.close_issue(repo, mentioned["number"])
    assert mentioned["id"] not in _ids(_get(sim, "?filter=mentioned&per_page=100").json())


def test_conditional_requests_are_free_and_counted(sim: Simulator, http: requests.Session) -> None:
    url = f"{sim.url}/orgs/{OWNER}/issues?filter=all&per_page=10"
    first = http.get(url)
    assert first.status_code == 200 and first.headers["ETag"]
    spent = sim.stats()["budget_spent"]
    cached = http.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert cached.status_code == 304
    stats = sim.stats()
    assert stats["budget_spent"] == spent and stats["not_modified"] == 1
    org_id = sim.state.owner.id
    assert http.get(f"{sim.url}/organizations/{org_id}/issues?filter=all").status_code == 200
    assert sim.stats()["by_endpoint"][ROUTE] == 3


def test_invalid_parameters_are_422_as_github_words_them(org_sim: Simulator) -> None:
    for query, field in (
        ("filter=mine", "filter"),
        ("state=merged", "state"),
        ("sort=popularity", "sort"),
        ("direction=up", "direction"),
    ):
        resp = _get(org_sim, f"?{query}")
        assert resp.status_code == 422, query
        body = resp.json()
        assert body["message"] == "Validation Failed"
        assert body["errors"] == [{"resource": "Issue", "field": field, "code": "invalid"}]


def test_unknown_org_user_owner_and_anonymous(org_sim: Simulator, start_simulator: Any) -> None:
    missing = requests.get(f"{org_sim.url}/orgs/nope/issues", headers=auth(), timeout=10)
    assert missing.status_code == 404 and missing.json()["message"] == "Not Found"
    assert (
        requests.get(f"{org_sim.url}/organizations/1/issues", headers=auth(), timeout=10).status_code == 404
    )
    anonymous = _get(org_sim, "", token=None)
    assert anonymous.status_code == 401 and anonymous.json()["message"] == "Requires authentication"
    user = start_simulator(owner="octo", owner_type="User", repos=3, big_repos=0)
    assert requests.get(f"{user.url}/orgs/octo/issues", headers=auth(), timeout=10).status_code == 404


def test_installation_tokens_are_refused(start_simulator: Any, app_key: tuple[str, str]) -> None:
    sim = start_simulator(repos=4, big_repos=0, apps=[app_config(app_key[1])])
    token = issue_token(sim, app_key[0]).json()["token"]
    resp = requests.get(f"{sim.url}/orgs/{OWNER}/issues?filter=all", headers=auth(token), timeout=10)
    assert resp.status_code == 403
    body = resp.json()
    assert body["message"] == "Resource not accessible by integration"
    assert body["documentation_url"].endswith("#list-organization-issues-assigned-to-the-authenticated-user")
    assert sim.stats()["by_endpoint"][ROUTE] == 1


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    """(private PEM, public PEM) of the test App."""
    return generate_app_key()
