"""Editing the simulator's records in place (states no mutation produces) through its public back door."""

from __future__ import annotations

import pytest
import requests

from github_sim import Simulator
from github_sim.state import NotFoundError
from tests.simulator.conftest import OWNER, big_repo
from tests.support.simulators import repository


def test_an_edit_in_place_is_served_once_the_repository_is_touched(
    sim: Simulator, http: requests.Session
) -> None:
    name = big_repo(sim)
    with sim.state.lock:
        issue = next(i for i in repository(sim, name).issues.values() if i.state == "open" and not i.is_pr)
    url = f"{sim.url}/repos/{OWNER}/{name}/issues/{issue.number}"
    before = http.get(url)
    assert before.json()["state"] == "open"
    events_before = len(sim.state.events)

    with sim.state.lock:
        issue.state = "closed"  # GitHub-side change without a new updated_at
    # Bodies are cached per repository version: an untouched edit is not served yet.
    assert http.get(url).json()["state"] == "open"

    sim.state.touch_repository(name)
    after = http.get(url, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.json()["state"] == "closed"
    assert after.json()["updated_at"] == before.json()["updated_at"]  # timestamps are the caller's
    assert len(sim.state.events) == events_before  # nothing announced, as GitHub would not


def test_editing_a_repository_touches_it_on_leaving(sim: Simulator, http: requests.Session) -> None:
    name = big_repo(sim)
    with sim.state.lock:
        number = min(repository(sim, name).issues)
    url = f"{sim.url}/repos/{OWNER}/{name}/issues/{number}"
    assert http.get(url).json()["title"] != "edited in place"  # its body is cached now

    with sim.state.editing_repository(name) as repo:
        repo.issues[number].title = "edited in place"

    assert http.get(url).json()["title"] == "edited in place"


def test_touching_an_unknown_repository_is_refused(sim: Simulator) -> None:
    with pytest.raises(NotFoundError):
        sim.state.touch_repository("no-such-repository")
    with pytest.raises(NotFoundError), sim.state.editing_repository("no-such-repository"):
        pass
