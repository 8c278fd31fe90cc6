"""Normalizers against GitHub's own samples (webhook payloads and OpenAPI example responses)."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from github_sync import (
    normalize_commit,
    normalize_issue,
    normalize_pull_request,
    normalize_repository,
    project_metrics,
)
from github_sync.transform.normalizer import MalformedPayloadError, NotAnIssueError, is_pull_request
from tests.conftest import GITHUB_SAMPLES
from tests.transform.conftest import AS_OF, load_json, openapi_value, webhook_files

MIGRATIONS = Path(__file__).resolve().parents[2] / "plugins" / "github_sync" / "store" / "migrations"
MIGRATION = MIGRATIONS / "0001_initial.sql"
NOT_FROM_NORMALIZER = {"id", "project_id", "synced_at", "removed_at", "removed_reason"}


def _columns(table: str) -> set[str]:
    sql = MIGRATION.read_text(encoding="utf-8")
    body = re.search(rf"CREATE TABLE {table} \((.*?)\n\);", sql, re.S)
    assert body, table
    names = set()
    for line in body.group(1).splitlines():
        match = re.match(
            r"\s+([a-z_]+)\s+(?:bigserial|bigint|integer|smallint|text|boolean|timestamptz|date)", line
        )
        if match:
            names.add(match.group(1))
    # Columns later migrations add (they are append-only: a new column is a new file).
    for migration in sorted(MIGRATIONS.glob("[0-9]*.sql")):
        names.update(
            re.findall(
                rf"ALTER TABLE {table}\s+ADD COLUMN (?:IF NOT EXISTS )?([a-z_]+)",
                migration.read_text(encoding="utf-8"),
            )
        )
    return names - NOT_FROM_NORMALIZER


def _d(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _ids(event: str) -> list[str]:
    return [p.name for p in webhook_files(GITHUB_SAMPLES, event)]


def test_sample_folders_are_there(github_samples: Path) -> None:
    # Guards the parametrized tests below against silently collecting nothing.
    assert len(webhook_files(github_samples, "issues")) >= 4
    assert len(webhook_files(github_samples, "pull_request")) >= 3


# --- the row keys are exactly the table columns ------------------------------------------------


def test_row_keys_match_migration_columns() -> None:
    issue = load_json(GITHUB_SAMPLES / "webhooks/issues/opened.payload.json")["issue"]
    pr = load_json(GITHUB_SAMPLES / "webhooks/pull_request/opened.payload.json")["pull_request"]
    assert set(normalize_issue(issue, as_of=AS_OF)) == _columns("bugs")
    assert set(normalize_pull_request(pr, as_of=AS_OF)) == _columns("pull_requests")
    assert set(normalize_repository(openapi_value(GITHUB_SAMPLES, "repos__get")[0])) == _columns(
        "projects"
    ) - {
        "complexity",
        "client_appeal",
    }
    assert set(normalize_commit(openapi_value(GITHUB_SAMPLES, "repos__list-commits")[0][0])) == _columns(
        "commits"
    )
    metrics = project_metrics(
        repo_row_or_repo={"github_id": 1},
        tree=None,
        languages=None,
        commits_count=0,
        contributors=0,
        open_issues=0,
        as_of=AS_OF,
    )
    assert set(metrics) == _columns("project_metrics") - {"date"}


# --- webhooks: every issues / pull_request sample ----------------------------------------------


@pytest.mark.parametrize("name", _ids("issues"))
def test_every_issues_webhook_normalizes(github_samples: Path, name: str) -> None:
    payload = load_json(github_samples / "webhooks" / "issues" / name)
    row = normalize_issue(payload["issue"], as_of=AS_OF)
    assert row["github_id"] == payload["issue"]["id"]
    assert row["bug_number"] == f"GH-{payload['issue']['number']}"
    assert isinstance(row["description"], str)
    assert row["severity"] in {"critical", "high", "medium", "low"}
    assert 0 <= row["priority_score"] <= 100


@pytest.mark.parametrize("name", _ids("pull_request"))
def test_every_pull_request_webhook_normalizes(github_samples: Path, name: str) -> None:
    payload = load_json(github_samples / "webhooks" / "pull_request" / name)
    row = normalize_pull_request(payload["pull_request"], as_of=AS_OF)
    assert row["number"] == payload["number"]
    assert isinstance(row["description"], str)
    assert row["state"] in {"open", "closed", "merged"}


@pytest.mark.parametrize(
    ("event", "name"),
    [("issues", "opened.with-empty-body.payload.json"), ("pull_request", "opened.with-null-body.json")],
)
def test_empty_or_null_body_gives_empty_description(github_samples: Path, event: str, name: str) -> None:
    path = github_samples / "webhooks" / event / name
    if not path.exists():
        pytest.skip(f"{name} is not in this copy of the samples")
    payload = load_json(path)
    obj = payload.get("issue") or payload["pull_request"]
    assert obj["body"] is None  # the sample really is the null case
    normalize = normalize_issue if event == "issues" else normalize_pull_request
    assert normalize(obj, as_of=AS_OF)["description"] == ""


def test_issue_opened_row_field_by_field(github_samples: Path) -> None:
    issue = load_json(github_samples / "webhooks/issues/opened.payload.json")["issue"]
    assert normalize_issue(issue, as_of=AS_OF) == {
        "github_id": 444500041,
        "number": 1,
        "bug_number": "GH-1",
        "title": "Spelling error in the README file",
        "description": "It looks like you accidently spelled 'commit' with two 't's.",
        "severity": "medium",  # only "bug": no severity label -> the default
        "status": "in_progress",  # assigned to Codertocat
        "sla_hours": 72,
        # 50 + medium 20 + age capped at 20 (open since 2019-05-15, as of 2024-01-15)
        "priority_score": 90,
        "priority_base": 70,  # the same without the age
        "is_blocker": False,
        "labels": ["bug"],
        "assignees": ["Codertocat"],
        "author": "Codertocat",
        "github_url": "https://github.com/Codertocat/Hello-World/issues/1",
        "created_at": datetime(2019, 5, 15, 15, 20, 18, tzinfo=UTC),
        "updated_at": _d(issue["updated_at"]),
        "resolved_at": None,
    }


def test_issue_reopened_is_not_resolved(github_samples: Path) -> None:
    issue = load_json(github_samples / "webhooks/issues/reopened.payload.json")["issue"]
    assert issue["state"] == "open" and issue["closed_at"] is not None  # GitHub keeps the old close time
    row = normalize_issue(issue, as_of=AS_OF)
    assert row["status"] == "in_progress"
    assert row["resolved_at"] is None
    assert row["description"] == ""
    assert row["created_at"] == datetime(2021, 7, 5, 18, 5, 24, tzinfo=UTC)


def test_issue_closed_status_and_age_stop(github_samples: Path) -> None:
    issue = copy.deepcopy(load_json(github_samples / "webhooks/issues/opened.payload.json")["issue"])
    issue.update(state="closed", closed_at="2019-05-29T15:20:18Z", assignees=[], assignee=None)
    row = normalize_issue(issue, as_of=AS_OF)
    assert row["status"] == "closed"
    assert row["resolved_at"] == datetime(2019, 5, 29, 15, 20, 18, tzinfo=UTC)
    assert row["priority_score"] == 50 + 20 + 2  # two full weeks open, then it stopped ageing


def test_pull_request_closed_row_field_by_field(github_samples: Path) -> None:
    pr = load_json(github_samples / "webhooks/pull_request/closed.payload.json")["pull_request"]
    assert normalize_pull_request(pr, as_of=AS_OF) == {
        "number": 2,
        "title": "Update the README with new information.",
        "description": "This is a pretty simple change that we need to pull into master.",
        "state": "closed",  # closed without merge (merged_at null)
        "draft": False,
        "author": "Codertocat",
        "labels": ["bug"],
        "base_ref": "master",
        "head_ref": "changes",
        "additions": 1,
        "deletions": 1,
        "changed_files": 1,
        "github_url": "https://github.com/Codertocat/Hello-World/pull/2",
        "created_at": datetime(2019, 5, 15, 15, 20, 33, tzinfo=UTC),
        "updated_at": datetime(2019, 5, 15, 15, 21, 18, tzinfo=UTC),
        "closed_at": datetime(2019, 5, 15, 15, 21, 18, tzinfo=UTC),
        "merged_at": None,
    }


def test_normalize_issue_refuses_a_pull_request(github_samples: Path) -> None:
    (item,) = openapi_value(github_samples, "issues__list-for-repo")[0]
    assert is_pull_request(item)
    with pytest.raises(NotAnIssueError, match="#1347 is a pull request"):
        normalize_issue(item, as_of=AS_OF)
    assert issubclass(NotAnIssueError, ValueError)


# --- OpenAPI example responses ----------------------------------------------------------------


@pytest.mark.parametrize("operation", ["repos__list-for-org", "repos__list-for-user"])
def test_repository_listings_normalize(github_samples: Path, operation: str) -> None:
    for page in openapi_value(github_samples, operation):
        rows = [normalize_repository(repo) for repo in page]
        assert rows and all(r["github_id"] == 1296269 for r in rows)
        assert rows[0]["language"] is None and rows[0]["tags"] == ["octocat", "atom", "electron", "api"]


def test_get_repository_row_field_by_field(github_samples: Path) -> None:
    (repo,) = openapi_value(github_samples, "repos__get")
    assert normalize_repository(repo) == {
        "github_id": 1296269,
        "owner": "octocat",
        "name": "Hello-World",
        "full_name": "octocat/Hello-World",
        "description": "This your first repo!",
        "github_url": "https://github.com/octocat/Hello-World",
        "language": None,
        "tags": ["octocat", "atom", "electron", "api"],  # order kept
        "stars": 80,
        "forks": 9,
        "open_issues": 0,
        "default_branch": "master",
        "is_fork": False,
        "last_commit": datetime(2011, 1, 26, 19, 6, 43, tzinfo=UTC),
        "status": "active",
        "created_at": datetime(2011, 1, 26, 19, 1, 12, tzinfo=UTC),
        "updated_at": datetime(2011, 1, 26, 19, 14, 43, tzinfo=UTC),
    }
    archived = normalize_repository({**repo, "archived": True, "topics": None, "pushed_at": None})
    assert (archived["status"], archived["tags"], archived["last_commit"]) == ("shipped", [], None)


@pytest.mark.parametrize("event", ["push", "repository"])
def test_webhook_repositories_normalize(github_samples: Path, event: str) -> None:
    # push events carry created_at/pushed_at as epoch seconds, the others as ISO strings
    for path in webhook_files(github_samples, event):
        row = normalize_repository(load_json(path)["repository"])
        assert row["created_at"].tzinfo is UTC and row["last_commit"].tzinfo is UTC


def test_push_repository_epoch_timestamps(github_samples: Path) -> None:
    row = normalize_repository(load_json(github_samples / "webhooks/push/payload.json")["repository"])
    assert row["last_commit"] == datetime(2019, 5, 15, 15, 20, 57, tzinfo=UTC)  # 1557933657
    assert row["language"] == "Ruby"


def test_issues_listing_items_route_to_the_right_normalizer(github_samples: Path) -> None:
    for page in openapi_value(github_samples, "issues__list-for-repo"):
        for item in page:
            if is_pull_request(item):
                row = normalize_pull_request(item, as_of=AS_OF)
                # the issues listing has no refs or line counts
                assert (row["base_ref"], row["head_ref"], row["additions"]) == (None, None, None)
                assert row["number"] == 1347 and row["state"] == "open"
                assert row["description"] == "I'm having a problem with this."
            else:  # pragma: no cover - the documented example happens to be a PR
                normalize_issue(item, as_of=AS_OF)


def test_issues_listing_pr_merged_inside_pull_request_object(github_samples: Path) -> None:
    (item,) = openapi_value(github_samples, "issues__list-for-repo")[0]
    merged = copy.deepcopy(item)
    merged["state"] = "closed"
    merged["pull_request"]["merged_at"] = "2011-04-23T10:00:00Z"
    row = normalize_pull_request(merged, as_of=AS_OF)
    assert row["state"] == "merged"
    assert row["merged_at"] == datetime(2011, 4, 23, 10, tzinfo=UTC)


def test_pulls_listing_row(github_samples: Path) -> None:
    (page,) = openapi_value(github_samples, "pulls__list")
    rows = [normalize_pull_request(pr, as_of=AS_OF) for pr in page]
    row = rows[0]
    assert row["state"] == "merged"  # merged_at is set in the example
    assert row["merged_at"] == datetime(2011, 1, 26, 19, 1, 12, tzinfo=UTC)
    assert row["base_ref"] == page[0]["base"]["ref"] and row["head_ref"] == page[0]["head"]["ref"]
    assert row["author"] == page[0]["user"]["login"] and row["draft"] is False
    assert row["additions"] is None  # the listing has no line counts


def test_commits_listing_rows(github_samples: Path) -> None:
    (page,) = openapi_value(github_samples, "repos__list-commits")
    rows = [normalize_commit(c) for c in page]
    assert rows[0] == {
        "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
        "author_login": page[0]["author"]["login"],
        "author_name": "Monalisa Octocat",
        "message": "Fix all the bugs",
        "committed_at": datetime(2011, 4, 14, 16, 0, 49, tzinfo=UTC),
        "github_url": "https://github.com/octocat/Hello-World/commit/6dcb09b5b57875f334f61aebed695e2e4193db5e",
    }


def test_commit_with_null_author_and_committer_fallback(github_samples: Path) -> None:
    commit = copy.deepcopy(openapi_value(github_samples, "repos__list-commits")[0][0])
    commit["author"] = None  # e-mail that matches no GitHub account
    commit["commit"]["committer"] = None
    commit["commit"]["author"]["date"] = "2011-04-14T18:00:49+02:00"
    commit["commit"]["message"] = "fix\x00 it"
    row = normalize_commit(commit)
    assert row["author_login"] is None
    assert row["committed_at"] == datetime(2011, 4, 14, 16, 0, 49, tzinfo=UTC)
    assert row["message"] == "fix it"


def test_push_webhook_commits(github_samples: Path) -> None:
    commits = [c for p in webhook_files(github_samples, "push") for c in load_json(p)["commits"]]
    assert commits, "expected at least one push commit in the samples"
    rows = [normalize_commit(c) for c in commits]
    assert rows[0] == {
        "sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "author_login": "Codertocat",
        "author_name": "Codertocat",
        "message": "Initial commit",
        "committed_at": datetime(2019, 5, 15, 15, 19, 25, tzinfo=UTC),
        "github_url": "https://github.com/Codertocat/Hello-World/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    }


def test_push_commit_with_offset_timestamp_and_no_username() -> None:
    row = normalize_commit(
        {
            "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "message": "Update README.md",
            "timestamp": "2015-05-05T19:40:15-04:00",
            "url": "https://github.com/baxterthehacker/public-repo/commit/0d1a26e6",
            "author": {"name": "baxterthehacker", "email": "baxterthehacker@users.noreply.github.com"},
        }
    )
    assert row["committed_at"] == datetime(2015, 5, 5, 23, 40, 15, tzinfo=UTC)
    assert row["author_login"] is None and row["author_name"] == "baxterthehacker"


def test_contributors_listing_counts(github_samples: Path) -> None:
    # the sync counts contributors; the listing's items are users, not rows
    (page,) = openapi_value(github_samples, "repos__list-contributors")
    assert all(isinstance(user["login"], str) for user in page)


def test_tree_and_languages_samples_through_project_metrics(github_samples: Path) -> None:
    (repo,) = openapi_value(github_samples, "repos__get")
    (languages,) = openapi_value(github_samples, "repos__list-languages")
    contributors = len(openapi_value(github_samples, "repos__list-contributors")[0])
    for tree in openapi_value(github_samples, "git__get-tree"):
        row = project_metrics(
            repo_row_or_repo=normalize_repository(repo),
            tree=tree,
            languages=languages,
            commits_count=1,
            contributors=contributors,
            open_issues=0,
            as_of=AS_OF,
        )
        assert row["tech_stack"] == ["C", "Python"]
        assert row["has_ci"] is False
        # 50 + fewer than 5 open issues; the 2011 push is not recent, 80 stars not > 100
        assert row["health_score"] == 60
        assert isinstance(row["lines_of_code"], int) and row["lines_of_code"] >= 0
    # languages only (no tree): (78769 + 7769) bytes / 35 bytes per line
    row = project_metrics(
        repo_row_or_repo=repo,
        tree=None,
        languages=languages,
        commits_count=1,
        contributors=contributors,
        open_issues=0,
        as_of=AS_OF,
    )
    assert row["lines_of_code"] == round((78769 + 7769) / 35) == 2473


# --- the same issue from the REST listing and from a webhook gives the same row ----------------


@pytest.mark.parametrize("name", _ids("issues"))
def test_listing_item_and_webhook_give_the_same_row(github_samples: Path, name: str) -> None:
    payload = load_json(github_samples / "webhooks" / "issues" / name)
    listing_item = copy.deepcopy(payload["issue"])
    # The REST listing returns the same issue representation; it adds/omits a few fields that
    # the row does not use. Shape it like the documented listing item to prove they are ignored.
    (documented,) = openapi_value(github_samples, "issues__list-for-repo")[0]
    extra = {k: v for k, v in documented.items() if k not in listing_item and k != "pull_request"}
    listing_item.update(copy.deepcopy(extra))
    listing_item.pop("performed_via_github_app", None)
    assert set(extra) >= {"closed_by"}  # the listing really has fields the webhook lacks
    assert normalize_issue(listing_item, as_of=AS_OF) == normalize_issue(payload["issue"], as_of=AS_OF)


def test_missing_required_field_is_a_clear_error(github_samples: Path) -> None:
    issue = copy.deepcopy(load_json(github_samples / "webhooks/issues/opened.payload.json")["issue"])
    del issue["created_at"]
    with pytest.raises(MalformedPayloadError, match=r"issue has no 'created_at'.*number=1"):
        normalize_issue(issue, as_of=AS_OF)
