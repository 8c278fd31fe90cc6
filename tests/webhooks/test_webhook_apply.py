"""Applying stored deliveries (github_sync.webhooks.apply) on a real PostgreSQL, sample by sample.

Every row is compared field by field with the normalizer's output for the same payload.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from github_sync.transform.normalizer import (
    normalize_commit,
    normalize_issue,
    normalize_pull_request,
    normalize_repository,
)
from github_sync.webhooks.apply import (
    WebhookConfError,
    WebhookDeliveriesFailed,
    process_deliveries,
    validate_conf,
)
from github_sync.webhooks.relay.payload import build_delivery
from github_sync.webhooks.relay.store import DeliveryStore
from tests.webhooks.helpers import SAMPLES

AS_OF = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def load(github_samples: Path, sample: str) -> dict[str, Any]:
    return json.loads((github_samples / "webhooks" / sample).read_text())


def store_delivery(
    store: DeliveryStore, conn: psycopg.Connection, event: str, payload: dict[str, Any], received_at: datetime
) -> str:
    delivery_id = str(uuid.uuid4())
    assert store.insert(build_delivery(delivery_id=delivery_id, event=event, hook_id="1", payload=payload))
    conn.execute(
        "UPDATE webhook_deliveries SET received_at = %s WHERE delivery_id = %s", (received_at, delivery_id)
    )
    conn.commit()
    return delivery_id


def run(conn: psycopg.Connection, ids: list[str]) -> dict[str, Any]:
    return process_deliveries(
        conn, dag_id="github_webhook_events", run_id=f"test__{uuid.uuid4().hex}", try_number=1, as_of=AS_OF,
        delivery_ids=ids,
    )  # fmt: skip


def assert_row(conn: psycopg.Connection, table: str, where: dict[str, Any], expected: dict[str, Any]) -> None:
    """The stored row equals ``expected`` in every one of its columns."""
    columns = list(expected)
    conditions = " AND ".join(f"{c} = %s" for c in where)
    row = conn.execute(
        f"SELECT {', '.join(columns)} FROM {table} WHERE {conditions}", tuple(where.values())
    ).fetchone()
    assert row is not None, f"no {table} row for {where}"
    for column, actual in zip(columns, row, strict=True):
        assert actual == expected[column], f"{table}.{column}: {actual!r} != {expected[column]!r}"


def statuses(conn: psycopg.Connection) -> dict[str, str]:
    conn.commit()
    return dict(conn.execute("SELECT delivery_id, status FROM webhook_deliveries").fetchall())


def project_id(conn: psycopg.Connection, github_id: int) -> int:
    return conn.execute("SELECT id FROM projects WHERE github_id = %s", (github_id,)).fetchone()[0]


@pytest.mark.parametrize(("event", "sample"), SAMPLES, ids=[s for _, s in SAMPLES])
def test_each_sample_is_applied_like_the_normalizer_says(
    store: DeliveryStore, pg_conn: psycopg.Connection, github_samples: Path, event: str, sample: str
) -> None:
    payload = load(github_samples, sample)
    delivery_id = store_delivery(store, pg_conn, event, payload, T0)
    summary = run(pg_conn, [delivery_id])
    assert statuses(pg_conn) == {delivery_id: "processed"}
    assert summary["applied"] == 1 and summary["failed"] == 0
    counts = {t: pg_conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("projects", "bugs",
              "pull_requests", "commits")}  # fmt: skip
    if event == "ping":
        assert counts == {"projects": 0, "bugs": 0, "pull_requests": 0, "commits": 0}
        return
    repo = payload["repository"]
    assert_row(pg_conn, "projects", {"github_id": repo["id"]}, normalize_repository(repo))
    pid = project_id(pg_conn, repo["id"])
    if event == "issues":
        expected = {**normalize_issue(payload["issue"], as_of=AS_OF), "project_id": pid, "removed_at": None}
        assert_row(pg_conn, "bugs", {"github_id": payload["issue"]["id"]}, expected)
        assert counts["bugs"] == 1
    elif event == "pull_request":
        expected = {**normalize_pull_request(payload["pull_request"], as_of=AS_OF), "project_id": pid}
        assert_row(pg_conn, "pull_requests", {"project_id": pid, "number": payload["number"]}, expected)
    elif event == "push":
        on_default = payload["ref"] == f"refs/heads/{repo['default_branch']}"
        expected_commits = [normalize_commit(c) for c in payload["commits"]] if on_default else []
        assert counts["commits"] == len(expected_commits)
        for commit in expected_commits:
            assert_row(pg_conn, "commits", {"project_id": pid, "sha": commit["sha"]}, commit)
    else:
        assert counts == {"projects": 1, "bugs": 0, "pull_requests": 0, "commits": 0}


@pytest.mark.parametrize("action", ["deleted", "transferred"])
def test_deleted_or_transferred_issue_is_tombstoned_and_not_revived_by_an_older_delivery(
    store: DeliveryStore, pg_conn: psycopg.Connection, github_samples: Path, action: str
) -> None:
    opened = load(github_samples, "issues/opened.payload.json")
    edited = load(github_samples, "issues/edited.payload.json")
    removed = copy.deepcopy(opened)
    removed["action"] = action
    if action == "transferred":
        removed["changes"] = {
            "new_issue": {**opened["issue"], "id": 999},
            "new_repository": opened["repository"],
        }
    first = store_delivery(store, pg_conn, "issues", opened, T0)
    gone = store_delivery(store, pg_conn, "issues", removed, T0 + timedelta(seconds=2))
    run(pg_conn, [first, gone])
    row = pg_conn.execute("SELECT removed_at, removed_reason FROM bugs WHERE github_id = %s",
                          (opened["issue"]["id"],)).fetchone()  # fmt: skip
    assert row == (T0 + timedelta(seconds=2), action)
    # An edit GitHub sent before the removal, processed late (another run): the bug stays removed.
    late = store_delivery(store, pg_conn, "issues", edited, T0 + timedelta(seconds=1))
    run(pg_conn, [late])
    assert statuses(pg_conn)[late] == "processed"
    assert pg_conn.execute("SELECT removed_reason FROM bugs").fetchone() == (action,)


def test_a_transferred_issue_appears_in_its_new_repository(
    store: DeliveryStore, pg_conn: psycopg.Connection, github_samples: Path
) -> None:
    opened = load(github_samples, "issues/opened.payload.json")
    new_repository = {**opened["repository"], "id": opened["repository"]["id"] + 1, "name": "elsewhere",
                      "full_name": f"{opened['repository']['owner']['login']}/elsewhere",
                      "html_url": opened["repository"]["html_url"] + "-elsewhere"}  # fmt: skip
    new_issue = {**opened["issue"], "id": opened["issue"]["id"] + 1, "number": 7}
    transferred = {**copy.deepcopy(opened), "action": "transferred",
                   "changes": {"new_issue": new_issue, "new_repository": new_repository}}  # fmt: skip
    first = store_delivery(store, pg_conn, "issues", opened, T0)
    moved = store_delivery(store, pg_conn, "issues", transferred, T0 + timedelta(seconds=2))
    run(pg_conn, [first, moved])
    assert pg_conn.execute("SELECT removed_reason FROM bugs WHERE github_id = %s",
                           (opened["issue"]["id"],)).fetchone() == ("transferred",)  # fmt: skip
    assert pg_conn.execute(
        "SELECT p.name, b.bug_number, b.removed_at FROM bugs b JOIN projects p ON p.id = b.project_id "
        "WHERE b.github_id = %s",
        (new_issue["id"],),
    ).fetchone() == ("elsewhere", "GH-7", None)


def test_removal_of_an_issue_never_seen_before_keeps_a_tombstone(
    store: DeliveryStore, pg_conn: psycopg.Connection, github_samples: Path
) -> None:
    removed = load(github_samples, "issues/opened.payload.json")
    removed["action"] = "deleted"
    opened = load(github_samples, "issues/opened.payload.json")
    # Processed in the wrong order (two runs): the older "opened" must not bring the issue back.
    gone = store_delivery(store, pg_conn, "issues", removed, T0 + timedelta(seconds=5))
    run(pg_conn, [gone])
    early = store_delivery(store, pg_conn, "issues", opened, T0)
    run(pg_conn, [early])
    assert pg_conn.execute("SELECT removed_reason FROM bugs").fetchall() == [("deleted",)]


@pytest.mark.parametrize("action", ["deleted", "transferred"])
def test_deleted_or_transferred_repository_is_tombstoned(
    store: DeliveryStore, pg_conn: psycopg.Connection, github_samples: Path, action: str
) -> None:
    created = load(github_samples, "repository/created.payload.json")
    removed = {**copy.deepcopy(created), "action": action}
    ids = [store_delivery(store, pg_conn, "repository", created, T0),
           store_delivery(store, pg_conn, "repository", removed, T0 + timedelta(seconds=1))]  # fmt: skip
    run(pg_conn, ids)
    assert pg_conn.execute("SELECT removed_at, removed_reason FROM projects").fetchall() == [
        (T0 + timedelta(seconds=1), action)
    ]


def test_rename_and_archive_update_the_project(
    store: DeliveryStore, pg_conn: psycopg.Connection, github_samples: Path
) -> None:
    created = load(github_samples, "repository/created.payload.json")
    renamed = copy.deepcopy(load(github_samples, "repository/renamed.payload.json"))
    renamed["repository"].update(name="Hello-Universe", full_name="Octocoders/Hello-Universe",
                                 html_url="https://github.com/Octocoders/Hello-Universe",
                                 updated_at="2019-05-15T15:30:00Z")  # fmt: skip
    archived = copy.deepcopy(renamed)
    archived["action"] = "archived"
    archived["repository"].update(archived=True, updated_at="2019-05-15T15:31:00Z")
    ids = [store_delivery(store, pg_conn, "repository", p, T0 + timedelta(seconds=i))
           for i, p in enumerate([created, renamed, archived])]  # fmt: skip
    run(pg_conn, ids)
    expected = normalize_repository(archived["repository"])
    assert expected["status"] == "shipped"
    assert_row(pg_conn, "projects", {"github_id": created["repository"]["id"]}, expected)
    assert pg_conn.execute("SELECT count(*) FROM projects").fetchone() == (1,)


def test_out_of_order_deliveries_never_overwrite_newer_data(
    store: DeliveryStore, pg_conn: psycopg.Connection, github_samples: Path
) -> None:
    reopened = load(github_samples, "issues/reopened.payload.json")  # issue updated 2021
    opened = load(github_samples, "issues/opened.payload.json")  # same issue, updated 2019
    newer_repo = copy.deepcopy(opened)
    newer_repo["repository"].update(description="newest description", updated_at="2019-05-16T00:00:00Z",
                                    pushed_at="2019-05-15T00:00:00Z")  # fmt: skip
    older_repo = copy.deepcopy(opened)
    older_repo["repository"].update(description="stale description", updated_at="2019-05-14T00:00:00Z",
                                    pushed_at="2019-05-17T00:00:00Z")  # fmt: skip
    ids = [store_delivery(store, pg_conn, "issues", reopened, T0),
           store_delivery(store, pg_conn, "issues", opened, T0 + timedelta(seconds=1)),
           store_delivery(store, pg_conn, "issues", newer_repo, T0 + timedelta(seconds=2)),
           store_delivery(store, pg_conn, "issues", older_repo, T0 + timedelta(seconds=3))]  # fmt: skip
    run(pg_conn, ids)
    pid = project_id(pg_conn, opened["repository"]["id"])
    assert_row(pg_conn, "bugs", {"github_id": opened["issue"]["id"]},
               {**normalize_issue(reopened["issue"], as_of=AS_OF), "project_id": pid})  # fmt: skip
    expected_project = normalize_repository(newer_repo["repository"])
    expected_project["last_commit"] = datetime(2019, 5, 17, tzinfo=UTC)  # pushed_at only moves forward
    assert_row(pg_conn, "projects", {"id": pid}, expected_project)


def test_issue_comment_upserts_the_issue_or_the_pull_request(
    store: DeliveryStore, pg_conn: psycopg.Connection, github_samples: Path
) -> None:
    issue_payload = load(github_samples, "issues/edited.payload.json")
    on_issue = {"action": "created", "issue": issue_payload["issue"], "comment": {"id": 1, "body": "hi"},
                "repository": issue_payload["repository"]}  # fmt: skip
    pr_issue = {**copy.deepcopy(issue_payload["issue"]), "id": 555, "number": 7,
                "pull_request": {"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/7",
                                 "merged_at": None}}  # fmt: skip
    on_pr = {**on_issue, "action": "deleted", "issue": pr_issue}  # a deleted *comment* keeps the PR
    ids = [store_delivery(store, pg_conn, "issue_comment", p, T0 + timedelta(seconds=i))
           for i, p in enumerate([on_issue, on_pr])]  # fmt: skip
    run(pg_conn, ids)
    pid = project_id(pg_conn, issue_payload["repository"]["id"])
    assert_row(
        pg_conn,
        "bugs",
        {"github_id": issue_payload["issue"]["id"]},
        {**normalize_issue(issue_payload["issue"], as_of=AS_OF), "project_id": pid, "removed_at": None},
    )
    assert_row(pg_conn, "pull_requests", {"project_id": pid, "number": 7},
               {**normalize_pull_request(pr_issue, as_of=AS_OF), "removed_at": None})  # fmt: skip


def test_push_to_another_branch_moves_last_commit_but_stores_no_commits(
    store: DeliveryStore, pg_conn: psycopg.Connection, github_samples: Path
) -> None:
    push = copy.deepcopy(load(github_samples, "push/with-new-branch.payload.json"))
    push["ref"] = "refs/heads/feature"
    push["repository"]["pushed_at"] = 1_800_000_000
    run(pg_conn, [store_delivery(store, pg_conn, "push", push, T0)])
    assert pg_conn.execute("SELECT count(*) FROM commits").fetchone() == (0,)
    assert pg_conn.execute("SELECT last_commit FROM projects").fetchone() == (
        datetime.fromtimestamp(1_800_000_000, tz=UTC),
    )


def test_a_bad_delivery_fails_alone_and_the_run_raises_with_details(
    store: DeliveryStore, pg_conn: psycopg.Connection, github_samples: Path
) -> None:
    good = load(github_samples, "issues/opened.payload.json")
    bad = copy.deepcopy(load(github_samples, "pull_request/opened.payload.json"))
    del bad["pull_request"]["created_at"]
    ping = load(github_samples, "ping/payload.json")
    ids = [store_delivery(store, pg_conn, "pull_request", bad, T0),
           store_delivery(store, pg_conn, "issues", good, T0 + timedelta(seconds=1)),
           store_delivery(store, pg_conn, "ping", ping, T0 + timedelta(seconds=2))]  # fmt: skip
    with pytest.raises(WebhookDeliveriesFailed, match=f"{ids[0]} \\(pull_request.opened\\).*created_at"):
        run(pg_conn, [*ids, "no-such-delivery"])
    assert statuses(pg_conn) == {ids[0]: "failed", ids[1]: "processed", ids[2]: "processed"}
    assert "created_at" in pg_conn.execute("SELECT error FROM webhook_deliveries WHERE delivery_id = %s",
                                           (ids[0],)).fetchone()[0]  # fmt: skip
    assert pg_conn.execute("SELECT count(*) FROM bugs").fetchone() == (1,)
    outcomes = dict(pg_conn.execute(
        "SELECT repository, state FROM sync_repository_runs WHERE run_id = ("
        "SELECT run_id FROM sync_runs ORDER BY started_at DESC LIMIT 1)").fetchall())  # fmt: skip
    assert outcomes == {"Codertocat/Hello-World": "failed", "Octocoders/Hello-World": "success",
                        "(missing deliveries)": "failed"}  # fmt: skip


def test_rerun_skips_processed_deliveries(
    store: DeliveryStore, pg_conn: psycopg.Connection, github_samples: Path
) -> None:
    ids = [store_delivery(store, pg_conn, "issues", load(github_samples, "issues/opened.payload.json"), T0)]
    assert run(pg_conn, ids)["applied"] == 1
    again = run(pg_conn, ids)
    assert (again["applied"], again["already_done"]) == (0, 1)


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (None, "must be an object"),
        ({}, "has no 'delivery_ids'"),
        ({"delivery_ids": []}, "non-empty list"),
        ({"delivery_ids": "abc"}, "non-empty list"),
        ({"delivery_ids": ["ok", 3, ""]}, "invalid"),
    ],
)
def test_conf_validation_names_the_problem(conf: object, message: str) -> None:
    with pytest.raises(WebhookConfError, match=message):
        validate_conf(conf)


def test_conf_validation_keeps_order_and_drops_duplicates() -> None:
    assert validate_conf({"delivery_ids": ["b", "a", "b"]}) == ["b", "a"]
