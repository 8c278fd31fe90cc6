"""Repository-level behaviour: redirects, deletions, empty repositories, PRs, trees, contributors."""

from __future__ import annotations

import requests

from github_sim import Simulator
from tests.simulator.conftest import OWNER, auth, big_repo, empty_repo


def test_rename_answers_301_to_the_new_location(sim: Simulator, http: requests.Session) -> None:
    name = big_repo(sim)
    repo_id = http.get(f"{sim.url}/repos/{OWNER}/{name}").json()["id"]
    sim.state.rename_repository(name, "renamed-repo")
    old = http.get(f"{sim.url}/repos/{OWNER}/{name}/issues?state=all", allow_redirects=False)
    assert old.status_code == 301
    assert old.headers["Location"] == f"{sim.url}/repositories/{repo_id}/issues?state=all"
    assert old.json()["message"] == "Moved Permanently"
    followed = http.get(f"{sim.url}/repos/{OWNER}/{name}")
    assert followed.status_code == 200 and followed.json()["name"] == "renamed-repo"
    assert followed.history[0].status_code == 301
    assert http.get(f"{sim.url}/repos/{OWNER}/renamed-repo").json()["id"] == repo_id


def test_delete_gives_404_and_leaves_listing(sim: Simulator, http: requests.Session) -> None:
    name = big_repo(sim)
    sim.state.delete_repository(name)
    for sub in ("", "/issues", "/commits"):
        resp = http.get(f"{sim.url}/repos/{OWNER}/{name}{sub}")
        assert resp.status_code == 404 and resp.json()["message"] == "Not Found"
    names = [r["name"] for r in http.get(f"{sim.url}/orgs/{OWNER}/repos?per_page=100").json()]
    assert name not in names and len(names) == 11


def test_empty_repository(shared_sim: Simulator, http: requests.Session) -> None:
    name = empty_repo(shared_sim)
    commits = http.get(f"{shared_sim.url}/repos/{OWNER}/{name}/commits")
    assert commits.status_code == 409 and commits.json()["message"] == "Git Repository is empty."
    assert http.get(f"{shared_sim.url}/repos/{OWNER}/{name}/git/trees/main").status_code == 409
    assert http.get(f"{shared_sim.url}/repos/{OWNER}/{name}/contributors").status_code == 204


def test_pull_requests_show_in_issue_listing(shared_sim: Simulator, http: requests.Session) -> None:
    name = big_repo(shared_sim)
    issues = http.get(f"{shared_sim.url}/repos/{OWNER}/{name}/issues?state=all&per_page=100").json()
    prs = [i for i in issues if "pull_request" in i]
    plain = [i for i in issues if "pull_request" not in i]
    assert prs and plain
    assert all(
        {"url", "html_url", "diff_url", "patch_url", "merged_at"} <= set(i["pull_request"]) for i in prs
    )
    pulls = http.get(f"{shared_sim.url}/repos/{OWNER}/{name}/pulls?state=all&per_page=100").json()
    by_number = {p["number"]: p for p in pulls}
    for issue in prs:
        if issue["number"] in by_number:
            assert by_number[issue["number"]]["merged_at"] == issue["pull_request"]["merged_at"]
    assert all(p["state"] == "open" for p in http.get(f"{shared_sim.url}/repos/{OWNER}/{name}/pulls").json())


def test_tree_and_contributors(shared_sim: Simulator, http: requests.Session) -> None:
    name = big_repo(shared_sim)
    tree = http.get(f"{shared_sim.url}/repos/{OWNER}/{name}/git/trees/HEAD?recursive=1").json()
    blobs = [e for e in tree["tree"] if e["type"] == "blob"]
    assert blobs and all(isinstance(e["size"], int) for e in blobs) and tree["truncated"] is False
    top = http.get(f"{shared_sim.url}/repos/{OWNER}/{name}/git/trees/HEAD").json()
    assert all("/" not in e["path"] for e in top["tree"])
    named = http.get(f"{shared_sim.url}/repos/{OWNER}/{name}/contributors?per_page=100").json()
    with_anon = http.get(f"{shared_sim.url}/repos/{OWNER}/{name}/contributors?anon=1&per_page=100").json()
    assert all(c["type"] == "User" for c in named)
    assert any(c["type"] == "Anonymous" for c in with_anon)
    with shared_sim.state.lock:
        total_commits = len(shared_sim.state.repo(name).commits)
    assert sum(c["contributions"] for c in with_anon) == total_commits
    commits = http.get(f"{shared_sim.url}/repos/{OWNER}/{name}/commits?per_page=100").json()
    assert any(c["author"] is None for c in commits)  # e-mails without a GitHub account


def test_repository_private_is_hidden_without_token(sim: Simulator) -> None:
    created = sim.state.create_repository("secret-sauce", private=True, auto_init=True)
    assert requests.get(f"{sim.url}/repos/{OWNER}/secret-sauce", timeout=10).status_code == 404
    authed = requests.get(
        f"{sim.url}/repos/{OWNER}/secret-sauce", headers={"Authorization": "token x"}, timeout=10
    )
    assert authed.status_code == 200 and authed.json()["id"] == created["id"]


def test_archive_transfer_and_label(sim: Simulator, http: requests.Session) -> None:
    name = big_repo(sim)
    with sim.state.lock:
        other = next(r.name for r in sim.state.repos() if r.name != name and r.commits)
    sim.state.archive_repository(other)
    assert http.get(f"{sim.url}/repos/{OWNER}/{other}").json()["archived"] is True
    issue = sim.state.create_issue(name, "Move me")
    labelled = sim.state.label_issue(name, issue["number"], ["P1"])
    assert "P1" in {lab["name"] for lab in labelled["labels"]}
    moved = sim.state.transfer_issue(name, issue["number"], other)
    assert moved["repository_url"].endswith(f"/repos/{OWNER}/{other}")
    old_url = f"{sim.url}/repos/{OWNER}/{name}/issues/{issue['number']}"
    assert http.get(old_url, allow_redirects=False).status_code == 301
    sim.state.delete_issue(other, moved["number"])
    assert http.get(f"{sim.url}/repos/{OWNER}/{other}/issues/{moved['number']}").status_code == 410
    assert http.get(old_url).status_code == 410  # followed to the deleted issue


def test_deleted_issue_answers_410(sim: Simulator, http: requests.Session) -> None:
    # "If the issue was deleted from a repository where the authenticated user has read access,
    # the API returns a 410 Gone status." https://docs.github.com/en/rest/issues/issues#get-an-issue
    name = big_repo(sim)
    issue = sim.state.create_issue(name, "Delete me")
    url = f"{sim.url}/repos/{OWNER}/{name}/issues/{issue['number']}"
    sim.state.delete_issue(name, issue["number"])
    gone = http.get(url)
    assert gone.status_code == 410
    body = gone.json()
    assert body["message"] == "This issue was deleted"
    assert body["documentation_url"] == "https://docs.github.com/rest/issues/issues#get-an-issue"
    with sim.state.lock:
        repo_id = sim.state.repo(name).id
    by_id = http.get(f"{sim.url}/repositories/{repo_id}/issues/{issue['number']}")
    assert by_id.status_code == 410
    # A public repository: anonymous callers can read it, so they get 410 too.
    assert requests.get(url, timeout=10).status_code == 410
    # Numbers never used stay 404.
    with sim.state.lock:
        unused = sim.state.repo(name).next_number + 5
    missing = http.get(f"{sim.url}/repos/{OWNER}/{name}/issues/{unused}")
    assert missing.status_code == 404 and missing.json()["message"] == "Not Found"


def test_transferred_issue_answers_301_to_its_new_url(sim: Simulator, http: requests.Session) -> None:
    # "The API returns a 301 Moved Permanently status if the issue was transferred to another
    # repository." https://docs.github.com/en/rest/issues/issues#get-an-issue
    name = big_repo(sim)
    with sim.state.lock:
        other = next(r.name for r in sim.state.repos() if r.name != name and not r.private)
    issue = sim.state.create_issue(name, "Move me")
    moved = sim.state.transfer_issue(name, issue["number"], other)
    url = f"{sim.url}/repos/{OWNER}/{name}/issues/{issue['number']}"
    new_url = f"{sim.url}/repos/{OWNER}/{other}/issues/{moved['number']}"
    redirect = http.get(url, allow_redirects=False)
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == new_url == moved["url"]
    body = redirect.json()
    assert body["message"] == "Moved Permanently" and body["url"] == new_url
    assert "documentation_url" in body
    followed = http.get(url)
    assert followed.status_code == 200 and followed.history[0].status_code == 301
    assert followed.url == new_url
    assert followed.json()["id"] == issue["id"] and followed.json()["number"] == moved["number"]
    assert followed.json()["repository_url"].endswith(f"/repos/{OWNER}/{other}")
    # The target renamed afterwards: the Location names it as it is called now.
    sim.state.rename_repository(other, "moved-here")
    assert http.get(url, allow_redirects=False).headers["Location"] == (
        f"{sim.url}/repos/{OWNER}/moved-here/issues/{moved['number']}"
    )
    assert http.get(url).json()["id"] == issue["id"]
    # The target deleted: nothing readable is left to point to.
    sim.state.delete_repository("moved-here")
    assert http.get(url, allow_redirects=False).status_code == 404


def test_issue_transferred_to_an_unreadable_repository_answers_404(sim: Simulator) -> None:
    # "If the issue was transferred to [...] a repository where the authenticated user lacks read
    # access, the API returns a 404 Not Found status."
    # https://docs.github.com/en/rest/issues/issues#get-an-issue
    name = big_repo(sim)
    sim.state.create_repository("private-target", private=True)
    issue = sim.state.create_issue(name, "Move me somewhere private")
    moved = sim.state.transfer_issue(name, issue["number"], "private-target")
    url = f"{sim.url}/repos/{OWNER}/{name}/issues/{issue['number']}"
    anonymous = requests.get(url, allow_redirects=False, timeout=10)  # reads the public source only
    assert anonymous.status_code == 404 and anonymous.json()["message"] == "Not Found"
    authed = requests.get(url, headers=auth(), allow_redirects=False, timeout=10)
    assert authed.status_code == 301
    assert authed.headers["Location"] == f"{sim.url}/repos/{OWNER}/private-target/issues/{moved['number']}"


def test_determinism_per_seed() -> None:
    from tests.simulator.conftest import small_config

    paths = [f"/orgs/{OWNER}/repos?per_page=100", "/users/acme"]

    def fetch(seed: int) -> list[bytes]:
        with Simulator(small_config(seed=seed, start_time=None)) as s:
            name = big_repo(s)
            extra = [f"/repos/{OWNER}/{name}/issues?state=all&per_page=100", f"/repos/{OWNER}/{name}/commits"]
            out = []
            for path in paths + extra:
                body = requests.get(s.url + path, headers={"Authorization": "token t"}, timeout=10).content
                out.append(body.replace(s.url.encode(), b"http://sim"))  # ports differ per run
            return out

    assert fetch(1) == fetch(1)
    assert fetch(1) != fetch(2)


def test_user_owner() -> None:
    from tests.simulator.conftest import small_config

    config = small_config(owner="octo", owner_type="User", repos=4, big_repos=0, private_repos=1)
    with Simulator(config) as s:
        headers = {"Authorization": "token t"}  # owner_tokens=None: every token is octo's own
        assert requests.get(f"{s.url}/orgs/octo", headers=headers, timeout=5).status_code == 404
        user = requests.get(f"{s.url}/users/octo", headers=headers, timeout=5).json()
        assert user["type"] == "User" and user["public_repos"] == 3
        # GET /users/{username}/repos lists public repositories only, even to the user themself.
        first = requests.get(f"{s.url}/users/octo/repos?per_page=2", headers=headers, timeout=5)
        names = [r["name"] for r in first.json()]
        assert names == sorted(names) and first.links["next"]["url"].startswith(
            f"{s.url}/user/{user['id']}/repos"
        )
        second = requests.get(first.links["next"]["url"], headers=headers, timeout=5).json()
        assert len(second) == 1 and second[0]["owner"]["login"] == "octo"
        assert not any(r["private"] for r in [*first.json(), *second])
        # The private one is listed by GET /user/repos for the owner's token.
        mine = requests.get(f"{s.url}/user/repos", headers=headers, timeout=5).json()
        assert len(mine) == 4 and sum(r["private"] for r in mine) == 1
