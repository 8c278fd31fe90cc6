"""Every endpoint the simulator serves answers with a body valid against GitHub's OpenAPI description."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator

from github_sim import Simulator
from tests.simulator.conftest import OWNER, auth, big_repo, empty_repo, small_config


@pytest.fixture(scope="module")
def openapi(github_samples: Path) -> dict[str, Any]:
    """GitHub's full REST description (13 MB)."""
    with (github_samples / "openapi" / "api.github.com.json").open() as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def schema_sim() -> Iterator[Simulator]:
    """A simulator with some mutations applied, so events and created objects are covered too."""
    with Simulator(small_config()) as sim:
        name = big_repo(sim)
        issue = sim.state.create_issue(
            name, "New bug", labels=["bug"], assignees=[sim.state.data.users[0].login]
        )
        sim.state.label_issue(name, issue["number"], ["P1"])
        pr = sim.state.open_pull_request(name, "Fix it")
        sim.state.merge_pull_request(name, pr["number"])
        sim.state.push_commits(name, n=2)
        # A deleted and a transferred issue (410 and 301 of GET an issue).
        sim.state.delete_issue(name, sim.state.create_issue(name, "Deleted")["number"])
        with sim.state.lock:
            other = next(r.name for r in sim.state.repos() if r.name != name and not r.private)
        sim.state.transfer_issue(name, sim.state.create_issue(name, "Transferred")["number"], other)
        yield sim


def _declared_nullable(error: ValidationError) -> bool:
    """True for a null the schema itself declares ``nullable: true``.

    openapi-schema-validator does not apply ``nullable`` next to ``oneOf`` or ``enum`` (GitHub's
    ``commit.author`` and ``issue.state_reason``), although the description allows null there
    and GitHub sends it.
    """
    return error.instance is None and isinstance(error.schema, dict) and error.schema.get("nullable") is True


def _event_payload(error: ValidationError) -> bool:
    return error.validator == "oneOf" and list(error.absolute_path)[-1:] == ["payload"]


def _validate(openapi: dict[str, Any], path: str, status: str, body: Any) -> None:
    operation = openapi["paths"][path]["get"]
    response = operation["responses"][status]
    if "$ref" in response:
        response = openapi["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    # Keep the components next to the schema so "#/components/..." references resolve.
    root = {**schema, "components": openapi["components"]}
    errors = sorted(
        (
            e
            for e in OAS30Validator(root).iter_errors(body)
            if not _declared_nullable(e) and not _event_payload(e)
        ),
        key=lambda e: list(e.absolute_path),
    )
    if path.endswith("/events") and status == "200":
        # The event payload is a oneOf that includes PublicEvent = {"type": "object"}, which matches
        # everything, so no real payload can satisfy it; check each payload against its own type.
        for event in body:
            kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", event["type"]).lower()
            payload_schema = {"$ref": f"#/components/schemas/{kebab}", "components": openapi["components"]}
            errors += [
                e
                for e in OAS30Validator(payload_schema).iter_errors(event["payload"])
                if not _declared_nullable(e)
            ]
    assert not errors, f"{path} {status}: " + "; ".join(
        f"{list(e.absolute_path)[:6]}: {e.message[:200]}" for e in errors[:5]
    )


def _cases(sim: Simulator) -> list[tuple[str, str, str]]:
    name = big_repo(sim)
    empty = empty_repo(sim)
    r = f"/repos/{OWNER}/{name}"
    with sim.state.lock:
        repo_id = sim.state.repo(name).id
        some_issue = next(iter(sim.state.repo(name).issues))
        repo = sim.state.repo(name)
        vanished = [n for n in range(1, repo.next_number) if n not in repo.issues]
        deleted = next(n for n in vanished if sim.state.issue_deleted(repo, n))
        transferred = next(n for n in vanished if sim.state.issue_transferred_to(repo, n))
    return [
        ("/user", "/user", "200"),
        (f"/users/{OWNER}", "/users/{username}", "200"),
        (f"/users/{sim.state.data.users[0].login}", "/users/{username}", "200"),
        (f"/orgs/{OWNER}", "/orgs/{org}", "200"),
        (f"/orgs/{OWNER}/repos?per_page=100", "/orgs/{org}/repos", "200"),
        (f"/users/{OWNER}/repos?per_page=100", "/users/{username}/repos", "200"),
        ("/user/repos?per_page=100", "/user/repos", "200"),  # repos/list-for-authenticated-user
        ("/user/repos?per_page=5&visibility=all&affiliation=organization_member", "/user/repos", "200"),
        ("/user/repos?type=owner&visibility=all", "/user/repos", "422"),
        (r, "/repos/{owner}/{repo}", "200"),
        (f"/repositories/{repo_id}", "/repos/{owner}/{repo}", "200"),
        (f"{r}/issues?state=all&per_page=100", "/repos/{owner}/{repo}/issues", "200"),
        (f"{r}/issues?state=all&sort=updated&per_page=100", "/repos/{owner}/{repo}/issues", "200"),
        (f"{r}/issues/{some_issue}", "/repos/{owner}/{repo}/issues/{issue_number}", "200"),
        (f"{r}/issues/{deleted}", "/repos/{owner}/{repo}/issues/{issue_number}", "410"),
        (f"{r}/issues/{transferred}", "/repos/{owner}/{repo}/issues/{issue_number}", "301"),
        (f"{r}/pulls?state=all&per_page=100", "/repos/{owner}/{repo}/pulls", "200"),
        (f"{r}/pulls?state=all&sort=updated&per_page=100", "/repos/{owner}/{repo}/pulls", "200"),
        (f"{r}/commits?per_page=100", "/repos/{owner}/{repo}/commits", "200"),
        (f"{r}/contributors?anon=1&per_page=100", "/repos/{owner}/{repo}/contributors", "200"),
        (f"{r}/languages", "/repos/{owner}/{repo}/languages", "200"),
        (f"{r}/git/trees/HEAD?recursive=1", "/repos/{owner}/{repo}/git/trees/{tree_sha}", "200"),
        ("/rate_limit", "/rate_limit", "200"),
        (f"/orgs/{OWNER}/events?per_page=100", "/orgs/{org}/events", "200"),
        (f"/orgs/{OWNER}/issues?filter=all&state=all&per_page=100", "/orgs/{org}/issues", "200"),
        ("/orgs/missing/issues", "/orgs/{org}/issues", "404"),
        (f"{r}/events?per_page=100", "/repos/{owner}/{repo}/events", "200"),
        (f"/repos/{OWNER}/missing", "/repos/{owner}/{repo}", "404"),
        (f"/repos/{OWNER}/{empty}/commits", "/repos/{owner}/{repo}/commits", "409"),
        (f"{r}/issues?page=101", "/repos/{owner}/{repo}/issues", "422"),
    ]


def test_every_endpoint_matches_openapi(openapi: dict[str, Any], schema_sim: Simulator) -> None:
    served = set()
    with requests.Session() as http:
        http.headers.update(auth())
        for url_path, op_path, status in _cases(schema_sim):
            resp = http.get(schema_sim.url + url_path, timeout=10, allow_redirects=status != "301")
            assert str(resp.status_code) == status, (url_path, resp.text[:200])
            _validate(openapi, op_path, status, resp.json())
            served.add(op_path)
    endpoints = {k.split(" ", 1)[1] for k in schema_sim.stats()["by_endpoint"] if k.startswith("GET /")}
    assert endpoints <= served | {"/rate_limit"}, endpoints - served


def test_every_repository_validates(openapi: dict[str, Any], shared_sim: Simulator) -> None:
    # Sample across all kinds of repositories (empty, archived, forks, private) with the full schema.
    with requests.Session() as http:
        http.headers.update(auth())
        for repo in http.get(f"{shared_sim.url}/orgs/{OWNER}/repos?per_page=100", timeout=10).json():
            body = http.get(f"{shared_sim.url}/repos/{OWNER}/{repo['name']}", timeout=10).json()
            _validate(openapi, "/repos/{owner}/{repo}", "200", body)


def test_user_owner_endpoints_match_openapi(openapi: dict[str, Any]) -> None:
    # A user owner with private repositories: GET /user answers the owner itself and GET /user/repos
    # (operation repos/list-for-authenticated-user) lists ``repository`` bodies, private ones included.
    config = small_config(owner="octo", owner_type="User", repos=6, big_repos=0, private_repos=2)
    with Simulator(config) as sim, requests.Session() as http:
        http.headers.update(auth())
        cases = [
            ("/user", "/user", "200"),
            ("/users/octo", "/users/{username}", "200"),
            ("/users/octo/repos?per_page=100", "/users/{username}/repos", "200"),
            ("/user/repos?per_page=100", "/user/repos", "200"),
            ("/user/repos?type=private", "/user/repos", "200"),
            ("/user/repos?type=all&affiliation=owner", "/user/repos", "422"),
        ]
        for url_path, op_path, status in cases:
            resp = http.get(sim.url + url_path, timeout=10)
            assert str(resp.status_code) == status, (url_path, resp.text[:200])
            _validate(openapi, op_path, status, resp.json())
        assert any(r["private"] for r in http.get(f"{sim.url}/user/repos", timeout=10).json())
        anonymous = requests.get(f"{sim.url}/user/repos", timeout=10)
        assert anonymous.status_code == 401
        _validate(openapi, "/user/repos", "401", anonymous.json())
