"""What GitHub documents about the side effects of activity, read back over real HTTP.

* repository listings sort by ``created``, ``updated``, ``pushed`` or ``full_name``, ``direction``
  defaulting to ``asc`` for ``full_name`` and ``desc`` otherwise:
  https://docs.github.com/en/rest/repos/repos#list-organization-repositories
* ``open_issues_count`` counts open issues and open pull requests ("Issues" endpoints return both,
  https://docs.github.com/en/rest/issues/issues#list-repository-issues, and the repository's
  count follows them: https://docs.github.com/en/rest/repos/repos#get-a-repository);
* ``pushed_at`` is the time of the last push (a merge pushes a commit), issue activity leaves it;
* an issue's ``updated_at`` moves with every change; a transferred issue gets the next number of
  the target repository:
  https://docs.github.com/en/issues/tracking-your-work-with-issues/administering-issues/transferring-an-issue-to-another-repository
"""

from __future__ import annotations

from typing import Any

import requests

from github_sim import Simulator
from tests.simulator.conftest import OWNER, big_repo


def _repo(sim: Simulator, http: requests.Session, name: str) -> dict[str, Any]:
    resp = http.get(f"{sim.url}/repos/{OWNER}/{name}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _open_count(sim: Simulator, name: str) -> int:
    with sim.state.lock:
        return sum(1 for i in sim.state.repo(name).issues.values() if i.state == "open")  # type: ignore[union-attr]


def test_repository_listings_sort_by_every_documented_key(sim: Simulator, http: requests.Session) -> None:
    url = f"{sim.url}/orgs/{OWNER}/repos?per_page=100"
    for sort, field in (("created", "created_at"), ("updated", "updated_at"), ("pushed", "pushed_at")):
        desc = http.get(f"{url}&sort={sort}").json()
        stamps = [r[field] for r in desc]
        assert stamps == sorted(stamps, reverse=True), sort  # desc by default
        asc = [r[field] for r in http.get(f"{url}&sort={sort}&direction=asc").json()]
        assert asc == sorted(stamps), sort
    names = [r["full_name"].lower() for r in http.get(f"{url}&sort=full_name").json()]
    assert names == sorted(names)  # asc by default for full_name
    assert [r["full_name"].lower() for r in http.get(f"{url}&sort=full_name&direction=desc").json()] == names[
        ::-1
    ]
    assert http.get(f"{url}&sort=stars").status_code == 422
    # A push moves the repository to the top of sort=pushed.
    last = http.get(f"{url}&sort=pushed").json()[-1]["name"]
    sim.clock.advance(3600 * 24 * 400)
    sim.state.push_commits(last)
    assert http.get(f"{url}&sort=pushed").json()[0]["name"] == last


def test_open_issues_count_follows_issues_and_pull_requests(sim: Simulator, http: requests.Session) -> None:
    name = big_repo(sim)
    with sim.state.lock:
        other = next(r.name for r in sim.state.repos() if r.name != name and r.commits)
    start = _repo(sim, http, name)["open_issues_count"]
    assert start == _open_count(sim, name)
    with sim.state.lock:
        repo = sim.state.repo(name)
        assert repo is not None
        assert any(i.is_pr and i.state == "open" for i in repo.issues.values()), "open PRs are counted"

    def count(repo_name: str = name) -> int:
        body = _repo(sim, http, repo_name)
        assert body["open_issues"] == body["open_issues_count"]
        return int(body["open_issues_count"])

    issue = sim.state.create_issue(name, "Counted")
    assert count() == start + 1
    sim.state.close_issue(name, issue["number"])
    assert count() == start
    sim.state.reopen_issue(name, issue["number"])
    assert count() == start + 1
    pr = sim.state.open_pull_request(name, "Counted too")
    assert count() == start + 2
    sim.state.merge_pull_request(name, pr["number"])
    assert count() == start + 1
    before_other = count(other)
    moved = sim.state.transfer_issue(name, issue["number"], other)
    assert count() == start and count(other) == before_other + 1
    sim.state.delete_issue(other, moved["number"])
    assert count(other) == before_other
    # The org listing shows the same counts.
    listed = {r["name"]: r for r in http.get(f"{sim.url}/orgs/{OWNER}/repos?per_page=100").json()}
    assert listed[name]["open_issues_count"] == start and listed[other]["open_issues_count"] == before_other


def test_pushed_at_moves_on_pushes_only(sim: Simulator, http: requests.Session) -> None:
    name = big_repo(sim)
    pushed = _repo(sim, http, name)["pushed_at"]
    sim.clock.advance(3600)
    issue = sim.state.create_issue(name, "Activity")
    sim.state.label_issue(name, issue["number"], ["bug"])
    sim.state.close_issue(name, issue["number"])
    pr = sim.state.open_pull_request(name, "Change")
    assert _repo(sim, http, name)["pushed_at"] == pushed
    sim.clock.advance(3600)
    sim.state.push_commits(name, n=2)
    after_push = _repo(sim, http, name)["pushed_at"]
    assert after_push > pushed
    sim.clock.advance(3600)
    sim.state.merge_pull_request(name, pr["number"])
    assert _repo(sim, http, name)["pushed_at"] > after_push


def test_issue_updated_at_moves_with_every_change(sim: Simulator, http: requests.Session) -> None:
    name = big_repo(sim)
    with sim.state.lock:
        target = next(r for r in sim.state.repos() if r.name != name and r.commits)
        target_name, next_number = target.name, target.next_number
    issue = sim.state.create_issue(name, "Track me")
    url = f"{sim.url}/repos/{OWNER}/{name}/issues/{issue['number']}"
    seen = [http.get(url).json()["updated_at"]]
    for change in (
        lambda: sim.state.edit_issue(name, issue["number"], title="Tracked"),
        lambda: sim.state.label_issue(name, issue["number"], ["bug"]),
        lambda: sim.state.close_issue(name, issue["number"]),
        lambda: sim.state.reopen_issue(name, issue["number"]),
    ):
        sim.clock.advance(60)
        change()
        seen.append(http.get(url).json()["updated_at"])
    assert seen == sorted(set(seen)), seen  # strictly later each time
    sim.clock.advance(60)
    moved = sim.state.transfer_issue(name, issue["number"], target_name)
    assert http.get(url, allow_redirects=False).status_code == 301  # to the new number
    assert moved["number"] == next_number  # the target repository's next number
    fetched = http.get(f"{sim.url}/repos/{OWNER}/{target_name}/issues/{next_number}").json()
    assert fetched["id"] == issue["id"] and fetched["updated_at"] > seen[-1]
    listed = http.get(f"{sim.url}/repos/{OWNER}/{target_name}/issues?sort=updated&per_page=1").json()
    assert listed[0]["id"] == issue["id"]
    # The webhook names the old issue and the new one.
    feed = http.get(f"{sim.url}/repos/{OWNER}/{name}/events?per_page=1").json()[0]
    assert feed["payload"]["action"] == "transferred"
    assert feed["payload"]["issue"]["number"] == issue["number"]
