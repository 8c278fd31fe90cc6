"""Pagination: page links to the end with a correct ``last``, cursors on big issue listings, 422."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import requests

from github_sim import Simulator
from tests.simulator.conftest import OWNER, big_repo, walk


def test_org_repos_walk_to_end_and_last_is_right(shared_sim: Simulator, http: requests.Session) -> None:
    first = http.get(f"{shared_sim.url}/orgs/{OWNER}/repos?per_page=5")
    assert first.status_code == 200
    last_url = first.links["last"]["url"]
    assert 'rel="next"' in first.headers["Link"] and 'rel="prev"' not in first.headers["Link"]
    items, responses = walk(http, f"{shared_sim.url}/orgs/{OWNER}/repos?per_page=5")
    assert len(items) == 12 and len({r["id"] for r in items}) == 12
    assert len(responses) == 3
    assert responses[-1].url == last_url  # the page rel="last" promised is where "next" ends
    assert "next" not in responses[-1].links and "last" not in responses[-1].links
    assert set(responses[-1].links) == {"prev", "first"}
    assert int(parse_qs(urlsplit(last_url).query)["page"][0]) == 3


def test_link_header_format_matches_github(shared_sim: Simulator, http: requests.Session) -> None:
    resp = http.get(f"{shared_sim.url}/orgs/{OWNER}/repos?per_page=5&page=2&sort=full_name")
    parts = [p.strip() for p in resp.headers["Link"].split(",")]
    assert [re.search(r'rel="(\w+)"', p).group(1) for p in parts] == ["prev", "next", "last", "first"]
    for part in parts:
        assert re.fullmatch(r'<http://127\.0\.0\.1:\d+/organizations/\d+/repos\?[^>]+>; rel="\w+"', part)
        assert "per_page=5" in part and "sort=full_name" in part


def test_per_page_default_and_cap(shared_sim: Simulator, http: requests.Session) -> None:
    repo = big_repo(shared_sim)
    default = http.get(f"{shared_sim.url}/repos/{OWNER}/{repo}/commits")
    assert len(default.json()) == 30
    capped = http.get(f"{shared_sim.url}/repos/{OWNER}/{repo}/commits?per_page=500")
    assert len(capped.json()) == 100


def test_issue_listing_pages_to_end_in_small_repo(shared_sim: Simulator, http: requests.Session) -> None:
    with shared_sim.state.lock:
        repo = max(
            (r for r in shared_sim.state.repos() if len(r.issues) <= 1000), key=lambda r: len(r.issues)
        )
        total = len(repo.issues)
        name = repo.name
    items, responses = walk(http, f"{shared_sim.url}/repos/{OWNER}/{name}/issues?state=all&per_page=3")
    assert total > 6 and len(items) == total
    assert sorted(i["number"] for i in items) == sorted(set(i["number"] for i in items))
    assert "page" in parse_qs(urlsplit(responses[0].links["next"]["url"]).query)


def test_cursor_pagination_on_big_issue_listing(shared_sim: Simulator, http: requests.Session) -> None:
    repo = big_repo(shared_sim)
    with shared_sim.state.lock:
        total = len(shared_sim.state.repo(repo).issues)
    assert total > 1000
    items, responses = walk(http, f"{shared_sim.url}/repos/{OWNER}/{repo}/issues?state=all&per_page=100")
    assert len(items) == total and len({i["id"] for i in items}) == total
    nxt = responses[0].links["next"]["url"]
    query = parse_qs(urlsplit(nxt).query)
    assert "after" in query and "page" not in query
    assert "last" not in responses[0].links  # GitHub sends no rel="last" with cursors
    created = [i["created_at"] for i in items]
    assert created == sorted(created, reverse=True)
    # "prev" goes back with a before= cursor to exactly the previous page.
    back = http.get(responses[2].links["prev"]["url"])
    assert [i["id"] for i in back.json()] == [i["id"] for i in responses[1].json()]


def test_page_beyond_100_on_issues_is_422(shared_sim: Simulator, http: requests.Session) -> None:
    repo = big_repo(shared_sim)
    resp = http.get(f"{shared_sim.url}/repos/{OWNER}/{repo}/issues?state=all&per_page=10&page=101")
    assert resp.status_code == 422
    assert resp.json()["message"].startswith(
        "Pagination with the page parameter is not supported for large datasets"
    )
    ok = http.get(f"{shared_sim.url}/repos/{OWNER}/{repo}/issues?state=all&per_page=10&page=100")
    assert ok.status_code == 200 and len(ok.json()) == 10


def test_invalid_cursor_is_422(shared_sim: Simulator, http: requests.Session) -> None:
    repo = big_repo(shared_sim)
    resp = http.get(f"{shared_sim.url}/repos/{OWNER}/{repo}/issues?after=garbage")
    assert resp.status_code == 422


def test_issue_filters(shared_sim: Simulator, http: requests.Session) -> None:
    repo = big_repo(shared_sim)
    base = f"{shared_sim.url}/repos/{OWNER}/{repo}/issues"
    closed = http.get(base, params={"state": "closed", "per_page": 100}).json()
    assert closed and all(i["state"] == "closed" and i["closed_at"] for i in closed)
    since = "2026-09-01T00:00:00Z"
    recent = http.get(base, params={"state": "all", "since": since, "per_page": 100}).json()
    assert recent and all(i["updated_at"] >= since for i in recent)
    labelled = http.get(base, params={"state": "all", "labels": "bug", "per_page": 50}).json()
    assert all("bug" in {lab["name"] for lab in i["labels"]} for i in labelled)
    asc = http.get(base, params={"state": "all", "sort": "updated", "direction": "asc", "page": 1}).json()
    assert [i["updated_at"] for i in asc] == sorted(i["updated_at"] for i in asc)
