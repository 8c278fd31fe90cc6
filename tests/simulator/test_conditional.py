"""Conditional requests: strong ETags per body and token, 304 round trips, mutations change them."""

from __future__ import annotations

import requests

from github_sim import Simulator
from tests.simulator.conftest import OTHER_TOKEN, OWNER, auth


def _first_repo(sim: Simulator) -> str:
    with sim.state.lock:
        return next(r.name for r in sim.state.repos() if r.commits and r.issues)


def test_etag_round_trip(sim: Simulator, http: requests.Session) -> None:
    url = f"{sim.url}/repos/{OWNER}/{_first_repo(sim)}"
    first = http.get(url)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert http.get(url).headers["ETag"] == etag  # stable while nothing changes
    cached = http.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.headers["ETag"] == etag
    assert http.get(url, headers={"If-None-Match": '"nope"'}).status_code == 200
    assert "Last-Modified" in first.headers
    assert http.get(url, headers={"If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304


def test_etags_differ_per_token(sim: Simulator, http: requests.Session) -> None:
    url = f"{sim.url}/orgs/{OWNER}/repos"
    mine = http.get(url)
    theirs = requests.get(url, headers=auth(OTHER_TOKEN), timeout=10)
    assert mine.content == theirs.content
    assert mine.headers["ETag"] != theirs.headers["ETag"]
    # An ETag obtained with another token does not validate.
    assert http.get(url, headers={"If-None-Match": theirs.headers["ETag"]}).status_code == 200


def test_mutations_move_updated_at_and_change_etags(sim: Simulator, http: requests.Session) -> None:
    name = _first_repo(sim)
    issues_url = f"{sim.url}/repos/{OWNER}/{name}/issues?state=all&sort=updated"
    before = http.get(issues_url)
    sim.clock.advance(3600 * 24 * 400)  # far beyond the generated history
    created = sim.state.create_issue(name, "Crash on save", body="boom", labels=["bug", "sev2"], assignees=[])
    after = http.get(issues_url)
    assert after.headers["ETag"] != before.headers["ETag"]
    top = after.json()[0]
    assert top["number"] == created["number"] and top["updated_at"] == created["updated_at"]
    assert {lab["name"] for lab in top["labels"]} == {"bug", "sev2"}
    assert http.get(issues_url, headers={"If-None-Match": before.headers["ETag"]}).status_code == 200

    sim.clock.advance(60)
    closed = sim.state.close_issue(name, created["number"])
    assert (
        closed["state"] == "closed" and closed["closed_at"] and closed["updated_at"] > created["updated_at"]
    )
    reopened = sim.state.reopen_issue(name, created["number"])
    assert (
        reopened["state"] == "open"
        and reopened["closed_at"] is None
        and reopened["state_reason"] == "reopened"
    )

    repo_url = f"{sim.url}/repos/{OWNER}/{name}"
    repo_before = http.get(repo_url)
    sim.clock.advance(60)
    shas = sim.state.push_commits(name, n=2, message="Hotfix")
    repo_after = http.get(repo_url)
    assert repo_after.headers["ETag"] != repo_before.headers["ETag"]
    assert repo_after.json()["pushed_at"] > repo_before.json()["pushed_at"]
    commits = http.get(f"{sim.url}/repos/{OWNER}/{name}/commits?per_page=3").json()
    assert [c["sha"] for c in commits[:2]] == shas
    assert commits[0]["parents"][0]["sha"] == shas[1]


def test_pull_request_lifecycle_in_both_listings(sim: Simulator, http: requests.Session) -> None:
    name = _first_repo(sim)
    sim.clock.advance(3600 * 24 * 400)
    pr = sim.state.open_pull_request(name, "Add retries", head="feature/retries", draft=True)
    pulls = http.get(f"{sim.url}/repos/{OWNER}/{name}/pulls").json()
    assert pulls[0]["number"] == pr["number"] and pulls[0]["draft"] is True
    sim.clock.advance(60)
    merged = sim.state.merge_pull_request(name, pr["number"])
    assert merged["merged_at"] and merged["state"] == "closed"
    issue = http.get(f"{sim.url}/repos/{OWNER}/{name}/issues?state=closed&sort=updated").json()[0]
    assert issue["number"] == pr["number"] and issue["pull_request"]["merged_at"] == merged["merged_at"]
    head = http.get(f"{sim.url}/repos/{OWNER}/{name}/commits?per_page=1").json()[0]
    assert head["sha"] == merged["merge_commit_sha"]
