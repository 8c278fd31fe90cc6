"""The ``owner`` filter of the status API and ``GET /github-sync/api/owners``.

Seeded: acme's history (rows of before runs listed their owners), two runs of ``octo``
(one spelled ``Octo``), one run of acme and octo together, an old run of ``Ghost`` and
running runs where needed. Expectations come from the seed and from the rows as stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.sse import ServerSentEvent

from github_sync.status import api as status_api
from github_sync.status import live_runs
from tests.status.seed import OWNER_PROJECTS, Repo, Seeded, SeedRun, write_run

FILTERED_ROUTES = (
    "/github-sync/api/stats",
    "/github-sync/api/history",
    "/github-sync/api/repositories",
    "/github-sync/api/progress",
    "/github-sync/stream",
)
NOT_LOGINS = (
    "",
    "-acme",
    "acme\n",
    "a" * 40,
    "acme/svc-0",
    "ac me",
    "acme'--",
    "ácme",
    "acme_corp",
    "%",
)
OWNER_MESSAGE = "owner must be a GitHub user or organisation login"


def stored_runs(conn: psycopg.Connection, owner: str) -> list[dict[str, Any]]:
    """The import_logs rows of the runs that included ``owner``, read straight from the table."""
    rows = conn.execute("SELECT metadata, records_imported FROM import_logs ORDER BY id").fetchall()
    picked = []
    for metadata, records in rows:
        listed = metadata.get("owners") or (metadata.get("owner") or "").split(", ")
        if owner.lower() in {o.lower() for o in listed}:
            picked.append({**metadata, "records_imported": records})
    return picked


def status_app() -> Any:
    """The status app the plugin mounted (its stream registry counts open streams)."""
    from github_sync.orchestration.plugin import GitHubSyncPlugin

    return GitHubSyncPlugin.fastapi_apps[0]["app"].app


@pytest.mark.parametrize("path", FILTERED_ROUTES)
@pytest.mark.parametrize("owner", NOT_LOGINS, ids=repr)
def test_an_owner_that_is_not_a_login_is_a_422(
    auth_client: Any, run_tables: Any, path: str, owner: str
) -> None:
    streams = status_app().state.streams
    opened = streams.open
    response = auth_client.get(path, params={"owner": owner})
    assert streams.open == opened, "a rejected stream must not be opened"
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(OWNER_MESSAGE)


def test_the_422_echoes_a_bounded_value(auth_client: Any, run_tables: Any) -> None:
    detail = auth_client.get("/github-sync/api/stats", params={"owner": "x" * 5000}).json()["detail"]
    assert len(detail) < 300


def test_the_longest_login_is_accepted(auth_client: Any, seeded_owners: Seeded) -> None:
    body = auth_client.get("/github-sync/api/history", params={"owner": "a" * 39}).json()
    assert body["total"] == 0 and body["items"] == []


def test_authentication_comes_before_validation(client: Any) -> None:
    # Without a token, a malformed owner is still a 401: nothing is said about the parameter.
    response = client.get("/github-sync/api/stats", params={"owner": "-bad"})
    assert response.status_code in (401, 403)
    assert client.get("/github-sync/api/owners").status_code in (401, 403)


def test_owners_lists_projects_and_runs(
    auth_client: Any, seeded_owners: Seeded, run_tables: psycopg.Connection
) -> None:
    body = auth_client.get("/github-sync/api/owners").json()
    assert body == {
        "owners": [
            {"owner": "acme", "repositories": 6},  # acme/retired is removed
            {"owner": "Ghost", "repositories": 0},  # only known from a run, spelled as the run did
            {"owner": "octo", "repositories": 2},  # one run spells it Octo: listed once
        ]
    }
    live = dict(
        run_tables.execute(
            "SELECT lower(owner), count(*) FROM projects WHERE removed_at IS NULL GROUP BY 1"
        ).fetchall()
    )
    assert {o["owner"].lower(): o["repositories"] for o in body["owners"] if o["repositories"]} == live
    assert live == {
        "acme": sum(1 for p in OWNER_PROJECTS if p.owner == "acme" and not p.removed),
        "octo": 2,
    }


def test_owners_of_an_empty_database(auth_client: Any, run_tables: Any) -> None:
    assert auth_client.get("/github-sync/api/owners").json() == {"owners": []}


def test_statistics_by_owner(auth_client: Any, seeded_owners: Seeded, run_tables: psycopg.Connection) -> None:
    everything = auth_client.get("/github-sync/api/stats").json()
    assert everything["overall"]["runs"] == len(seeded_owners.runs) == 14
    by_owner = {}
    for owner in ("acme", "octo", "Ghost"):
        body = auth_client.get("/github-sync/api/stats", params={"owner": owner}).json()
        by_owner[owner] = body
        assert body["owner"] == owner
        expected = [r for r in seeded_owners.runs if r.includes(owner)]
        stored = stored_runs(run_tables, owner)
        overall = body["overall"]
        assert overall["runs"] == len(expected) == len(stored)
        assert overall["succeeded"] == sum(r.state == "success" for r in expected)
        assert overall["failed"] == sum(r.state == "failed" for r in expected)
        assert overall["records_imported"] == sum(r["records_imported"] for r in stored)
        assert overall["records_imported"] == sum(
            repo.records for r in expected for repo in r.repos if repo.state == "success"
        )
        assert overall["requests"] == sum(repo.requests for r in expected for repo in r.repos)
        for mode, stats in body["modes"].items():
            mode_runs = [r for r in expected if r.mode == mode]
            assert stats["runs"] == len(mode_runs)
            newest = min(mode_runs, key=lambda r: r.ended_ago, default=None)
            assert (stats["last_sync"] or {}).get("run_id") == (newest.run_id if newest else None)
    assert (by_owner["acme"]["overall"]["runs"], by_owner["octo"]["overall"]["runs"]) == (11, 3)
    octo = by_owner["octo"]
    # octo's runs are all incremental; the last one was acme and octo's, and it succeeded.
    assert octo["modes"]["full"]["runs"] == 0 and octo["modes"]["full"]["last_sync"] is None
    assert octo["modes"]["incremental"]["last_sync"]["run_id"] == "manual__acme-and-octo"
    assert octo["overall"]["success_rate"] == round(2 / 3, 4)
    assert by_owner["Ghost"]["modes"]["webhook"]["last_sync"]["run_id"] == "manual__ghost-delivery"
    # Logins are case-insensitive.
    upper = auth_client.get("/github-sync/api/stats", params={"owner": "OCTO"}).json()
    assert upper["overall"] == octo["overall"] and upper["modes"] == octo["modes"]
    narrow = auth_client.get("/github-sync/api/stats", params={"owner": "octo", "days": 1}).json()
    assert narrow["overall"]["runs"] == 2  # manual__octo-1 ended 30 hours ago


def test_history_by_owner(auth_client: Any, seeded_owners: Seeded, run_tables: psycopg.Connection) -> None:
    def run_ids(**params: Any) -> list[str]:
        body = auth_client.get("/github-sync/api/history", params={"limit": 100, **params}).json()
        assert body["total"] == len(body["items"])
        return [item["run_id"] for item in body["items"]]

    newest_first = sorted(seeded_owners.runs, key=lambda r: r.ended_ago)
    for owner in ("acme", "octo", "OCTO", "ghost"):
        expected = [r.run_id for r in newest_first if r.includes(owner)]
        assert run_ids(owner=owner) == expected
        assert set(expected) == {m["run_id"] for m in stored_runs(run_tables, owner)}
    assert run_ids(owner="octo") == ["manual__acme-and-octo", "manual__octo-2", "manual__octo-1"]
    assert "manual__acme-and-octo" in run_ids(owner="acme")
    assert run_ids(owner="nobody") == []
    # Combined with the other filters.
    assert run_ids(owner="octo", state="failed") == ["manual__octo-2"]
    assert run_ids(owner="acme", mode="full") == run_ids(mode="full")
    assert run_ids(owner="octo", mode="full") == []

    body = auth_client.get("/github-sync/api/history", params={"owner": "octo", "limit": 1}).json()
    assert body["total"] == 3 and len(body["items"]) == 1
    item = body["items"][0]
    assert item["owners"] == ["acme", "octo"] and item["owner"] == "acme, octo"
    legacy = auth_client.get("/github-sync/api/history", params={"owner": "ghost"}).json()["items"][0]
    assert legacy["owners"] == ["Ghost"]


def test_repositories_by_owner(
    auth_client: Any, seeded_owners: Seeded, run_tables: psycopg.Connection
) -> None:
    everything = auth_client.get("/github-sync/api/repositories", params={"limit": 100}).json()
    names = {r["repository"] for r in everything["slowest"]}
    assert {"octo/app-0", "acme/monolith", "Ghost/tool"} <= names
    finished = {
        row[0]
        for row in run_tables.execute(
            "SELECT DISTINCT repository FROM sync_repository_runs "
            "WHERE finished_at IS NOT NULL AND state IN ('success', 'failed')"
        ).fetchall()
    }
    assert names == finished
    for owner in ("acme", "octo", "OCTO", "ghost"):
        body = auth_client.get("/github-sync/api/repositories", params={"owner": owner, "limit": 100}).json()
        assert body["owner"] == owner
        slowest = [r["repository"] for r in body["slowest"]]
        assert set(slowest) == {n for n in finished if n.lower().startswith(owner.lower() + "/")}
        assert all(r["repository"].lower().startswith(owner.lower() + "/") for r in body["failing"])
    octo = auth_client.get("/github-sync/api/repositories", params={"owner": "octo"}).json()
    assert [r["repository"] for r in octo["slowest"]] == ["octo/app-0", "octo/app-1"]  # 55 s vs 13.5 s avg
    assert octo["slowest"][0]["runs"] == 2  # its own run and acme and octo's
    assert [(r["repository"], r["failures"], r["runs"]) for r in octo["failing"]] == [("octo/app-1", 1, 2)]
    assert octo["failing"][0]["run_id"] == "manual__octo-2"
    acme = auth_client.get("/github-sync/api/repositories", params={"owner": "acme"}).json()
    assert {r["repository"] for r in acme["failing"]} == {"acme/legacy", "acme/monolith"}
    assert acme["slowest"][0]["repository"] == "acme/monolith"


def running_runs(conn: psycopg.Connection) -> list[SeedRun]:
    """Three running runs: octo's, one of before the owners list ("acme, octo" text only), acme's."""
    now = datetime.now(UTC)
    runs = [
        SeedRun("full", "manual__live-octo", "running", 30, timedelta(0),
                (Repo("octo/app-0", duration_s=2), Repo("octo/app-1", state="running")), total=2,
                owners=("octo",)),
        SeedRun("incremental", "manual__live-both", "running", 20, timedelta(0),
                (Repo("acme/svc-0", state="running"),), total=3, owner="acme, octo"),
        SeedRun("webhook", "manual__live-acme", "running", 10, timedelta(0),
                (Repo("acme/svc-1", state="running"),), total=1, owners=("acme",)),
    ]  # fmt: skip
    for run in runs:
        write_run(conn, run, now=now, finished=False)
    return runs


def test_progress_by_owner(auth_client: Any, run_tables: psycopg.Connection) -> None:
    runs = running_runs(run_tables)

    def live(**params: Any) -> set[str]:
        body = auth_client.get("/github-sync/api/progress", params=params).json()
        return {r["run_id"] for r in body["runs"]}

    assert live() == {r.run_id for r in runs}
    assert live(owner="octo") == {"manual__live-octo", "manual__live-both"}
    assert live(owner="Acme") == {"manual__live-both", "manual__live-acme"}
    assert live(owner="ghost") == set()
    body = auth_client.get("/github-sync/api/progress", params={"owner": "octo"}).json()
    assert body["owner"] == "octo"
    snapshot = {r["run_id"]: r for r in body["runs"]}
    assert snapshot["manual__live-octo"]["owners"] == ["octo"]
    assert snapshot["manual__live-both"]["owners"] == ["acme", "octo"]
    assert (snapshot["manual__live-octo"]["done"], snapshot["manual__live-octo"]["total"]) == (1, 2)


def test_snapshots_by_owner_keep_the_followed_runs(run_tables: psycopg.Connection) -> None:
    running_runs(run_tables)
    _, octo = live_runs.run_snapshots(run_tables, owner="octo")
    assert {key[1] for key in octo} == {"manual__live-octo", "manual__live-both"}
    # A run the stream already follows is always returned, so it can never "vanish".
    followed = ("github_webhook_sync", "manual__live-acme")
    _, with_followed = live_runs.run_snapshots(run_tables, owner="octo", tracked=[followed])
    assert set(with_followed) == set(octo) | {followed}


def test_stream_route_passes_the_owner(auth_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    async def fake_events(connect: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["owner"])
        yield ServerSentEvent(comment="done")

    monkeypatch.setattr(status_api, "sync_events", fake_events)
    streams = status_app().state.streams
    closed = streams.closed
    for params in ({"owner": "Octo"}, {}):
        response = auth_client.get("/github-sync/stream", params=params)
        assert response.status_code == 200 and response.text == ": done\n\n"
    assert streams.closed == closed + 2
    assert seen == ["Octo", None]
