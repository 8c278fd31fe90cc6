"""The status API inside Airflow's real api-server app, against PostgreSQL holding seeded runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.status.seed import Repo, Seeded, SeedRun, percentile_cont, write_run

API_ROUTES = (
    "/github-sync/",
    "/github-sync/api/stats",
    "/github-sync/api/history",
    "/github-sync/api/runs/github_full_sync/x",
    "/github-sync/api/rate-limit",
    "/github-sync/api/repositories",
    "/github-sync/api/progress",
    "/github-sync/api/owners",
    "/github-sync/api/repositories?owner=acme",
    "/github-sync/stream",
    "/github-sync/static/dashboard.js",
)


@pytest.mark.parametrize("path", API_ROUTES)
def test_every_route_requires_authentication(client: Any, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code in (401, 403), response.text


def test_invalid_token_is_rejected(client: Any) -> None:
    response = client.get("/github-sync/api/stats", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code in (401, 403)


def test_browser_without_session_is_sent_to_login(client: Any) -> None:
    response = client.get("/github-sync/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303
    assert "/auth/login" in response.headers["location"]


def test_session_cookie_authenticates_the_page(client: Any, admin_token: str, seeded: Seeded) -> None:
    # What a logged-in browser sends: Airflow's _token cookie, no Authorization header.
    client.cookies.set("_token", admin_token)
    page = client.get("/github-sync/")
    assert page.status_code == 200
    assert "/github-sync/static/dashboard.js" in page.text
    assert client.get("/github-sync/api/stats").status_code == 200
    script = client.get("/github-sync/static/vendor/chart-4.4.9.umd.min.js")
    assert script.status_code == 200 and "Chart.js v4.4.9" in script.text[:200]


def test_static_files_stay_inside_the_static_folder(auth_client: Any) -> None:
    assert auth_client.get("/github-sync/static/../api.py").status_code == 404
    assert auth_client.get("/github-sync/static/%2e%2e/api.py").status_code == 404
    assert auth_client.get("/github-sync/static/nope.js").status_code == 404


def test_plugin_registers_the_navigation_entry() -> None:
    from airflow import plugins_manager

    external_views, _ = plugins_manager._get_ui_plugins()
    view = next(v for v in external_views if v["url_route"] == "github-sync")
    assert view["href"] == "/github-sync/"
    assert view["destination"] == "nav"


def test_statistics_match_the_database(auth_client: Any, seeded: Seeded) -> None:
    body = auth_client.get("/github-sync/api/stats").json()
    runs = seeded.runs
    overall = body["overall"]
    assert overall["runs"] == len(runs) == 10
    assert overall["succeeded"] == 8 and overall["failed"] == 2
    assert overall["success_rate"] == 0.8
    successful = [r for run in runs for r in run.repos if r.state == "success"]
    all_repos = [r for run in runs for r in run.repos]
    assert overall["records_imported"] == sum(r.records for r in successful)
    assert overall["requests"] == sum(r.requests for r in all_repos)
    assert overall["not_modified"] == sum(r.not_modified for r in all_repos)
    assert overall["budget_spent"] == sum(r.requests - r.not_modified for r in all_repos)
    assert overall["not_modified_share"] == round(overall["not_modified"] / overall["requests"], 4)

    for mode in ("full", "incremental", "webhook"):
        mode_runs = [r for r in runs if r.mode == mode]
        stats = body["modes"][mode]
        durations = [r.duration_s for r in mode_runs]
        assert stats["runs"] == len(mode_runs)
        assert stats["avg_duration_s"] == pytest.approx(sum(durations) / len(durations), abs=0.01)
        assert stats["p95_duration_s"] == pytest.approx(percentile_cont(durations, 0.95), abs=0.01)
        ok = [r for r in mode_runs if r.state == "success"]
        assert stats["success_rate"] == round(len(ok) / len(mode_runs), 4)
        newest_ok = min(ok, key=lambda r: r.ended_ago)
        assert stats["last_success"]["run_id"] == newest_ok.run_id
        assert stats["last_success"]["grid_path"].startswith(f"/dags/{newest_ok.dag_id}/runs/")
        newest = min(mode_runs, key=lambda r: r.ended_ago)
        assert stats["last_sync"]["run_id"] == newest.run_id
    # The last incremental run failed: last_sync and last_success differ.
    assert body["modes"]["incremental"]["last_sync"]["state"] == "failed"
    assert body["modes"]["repository"]["runs"] == 0 and body["modes"]["repository"]["last_sync"] is None

    narrow = auth_client.get("/github-sync/api/stats", params={"days": 7}).json()
    assert narrow["overall"]["runs"] == 7  # the three full runs are older than a week


def test_history_is_paged_newest_first(auth_client: Any, seeded: Seeded) -> None:
    page1 = auth_client.get("/github-sync/api/history", params={"limit": 4}).json()
    page2 = auth_client.get("/github-sync/api/history", params={"limit": 4, "offset": 4}).json()
    assert page1["total"] == 10 and len(page1["items"]) == 4 and len(page2["items"]) == 4
    expected = sorted(seeded.runs, key=lambda r: r.ended_ago)
    assert [i["run_id"] for i in page1["items"] + page2["items"]] == [r.run_id for r in expected[:8]]
    first = page1["items"][0]
    assert first["mode"] == "webhook" and first["state"] == "success"
    assert first["duration_s"] == pytest.approx(4.0)
    assert first["repositories"]["ok"] == 1
    assert first["rate_limit_remaining"] == 4321

    failed = auth_client.get("/github-sync/api/history", params={"state": "failed"}).json()
    assert {i["run_id"] for i in failed["items"]} == {r.run_id for r in seeded.runs if r.state == "failed"}
    full = auth_client.get("/github-sync/api/history", params={"mode": "full"}).json()
    assert full["total"] == 3
    assert auth_client.get("/github-sync/api/history", params={"mode": "nope"}).status_code == 422
    assert auth_client.get("/github-sync/api/history", params={"limit": 0}).status_code == 422


def test_run_detail_lists_every_repository_and_error(auth_client: Any, seeded: Seeded) -> None:
    run = next(r for r in seeded.runs if r.mode == "full" and r.state == "failed")
    body = auth_client.get(f"/github-sync/api/runs/{run.dag_id}/{run.run_id}").json()
    assert body["state"] == "failed" and body["mode"] == "full"
    assert body["duration_s"] == pytest.approx(run.duration_s)
    assert body["counts"] == {"success": 2, "failed": 2}
    assert [r["repository"] for r in body["repositories"][:2]] == ["acme/legacy", "acme/monolith"]
    monolith = next(r for r in body["repositories"] if r["repository"] == "acme/monolith")
    assert monolith["error"].startswith("HTTP 502")
    assert monolith["duration_s"] == pytest.approx(1100)
    assert any("acme/legacy | HTTP 451" in e for e in body["errors"])
    assert body["log"]["records_imported"] == 160
    assert body["grid_path"] == "/dags/github_full_sync/runs/manual__2026-10-20T09%3A15%3A00%2B00%3A00"

    missing = auth_client.get("/github-sync/api/runs/github_full_sync/nope")
    assert missing.status_code == 404


def test_rate_limit_is_the_latest_observation(auth_client: Any, seeded: Seeded) -> None:
    body = auth_client.get("/github-sync/api/rate-limit").json()
    assert body["remaining"] == 4321
    assert body["run_id"] == "manual__webhook-delivery-2"
    assert body["source"] == "repository_run"


def test_repositories_slowest_and_failing(auth_client: Any, seeded: Seeded) -> None:
    body = auth_client.get("/github-sync/api/repositories").json()
    assert body["slowest"][0]["repository"] == "acme/monolith"
    assert body["slowest"][0]["max_duration_s"] == pytest.approx(1100)
    failing = {r["repository"]: r for r in body["failing"]}
    assert failing["acme/legacy"]["failures"] == 2
    assert failing["acme/legacy"]["last_error"].startswith("HTTP 451")
    assert failing["acme/monolith"]["failures"] == 1
    assert body["failing"][0]["repository"] == "acme/legacy"


def test_progress_of_a_running_sync(auth_client: Any, run_tables: psycopg.Connection) -> None:
    now = datetime.now(UTC)
    done = tuple(Repo(f"acme/done-{i}", duration_s=2) for i in range(6))
    running = (Repo("acme/big", state="running"), Repo("acme/bigger", state="running"))
    run = SeedRun("full", "manual__live", "running", 60, timedelta(0), (*done, *running), total=20)
    write_run(run_tables, run, now=now + timedelta(seconds=0), finished=False)
    # acme/big is synced by a shard of many repositories, acme/bigger by a task of its own.
    run_tables.execute("UPDATE sync_repository_runs SET shard = 'shard 2/40: 250 repositories' "
                       "WHERE repository = 'acme/big'")  # fmt: skip
    run_tables.execute("UPDATE sync_repository_runs SET shard = repository WHERE repository = 'acme/bigger'")
    run_tables.commit()

    body = auth_client.get("/github-sync/api/progress").json()
    assert len(body["runs"]) == 1
    live = body["runs"][0]
    assert live["run_id"] == "manual__live" and live["state"] == "running"
    assert (live["total"], live["done"], live["running"]) == (20, 6, 2)
    assert live["percent"] == 30.0
    assert sorted(live["current_repositories"]) == ["acme/big", "acme/bigger"]
    assert live["current_shards"] == [{"shard": "shard 2/40: 250 repositories", "repository": "acme/big"}]
    assert live["elapsed_s"] == pytest.approx(60, abs=5)
    # 6 done in ~60 s -> 6/min; 14 remaining -> ~140 s.
    assert live["rate_per_min"] == pytest.approx(6, rel=0.1)
    assert live["eta_s"] == pytest.approx(140, rel=0.1)


def test_database_unavailable_is_a_503(auth_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from github_sync.orchestration.plugin import GitHubSyncPlugin

    app = GitHubSyncPlugin.fastapi_apps[0]["app"].app
    monkeypatch.setattr(app.state.database, "_dsn", "postgresql://postgres@127.0.0.1:1/none")
    monkeypatch.setattr(app.state.database, "_resolved_at", float("inf"))
    response = auth_client.get("/github-sync/api/stats")
    assert response.status_code == 503


def test_the_openapi_document_names_a_response_schema_for_every_route(auth_client: Any) -> None:
    from github_sync.orchestration.plugin import GitHubSyncPlugin

    document = auth_client.get("/github-sync/openapi.json").json()
    schemas = document["components"]["schemas"]

    def resolved(schema: dict[str, Any]) -> dict[str, Any]:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        assert name in schemas, schema
        return schemas[name]

    app = GitHubSyncPlugin.fastapi_apps[0]["app"].app
    routes = {route.path_format for route in app.routes if getattr(route, "include_in_schema", False)}
    assert set(document["paths"]) == routes and "/api/stats" in routes and "/stream" in routes
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation["responses"]["200"]["content"]
            if path == "/stream":
                item = content["text/event-stream"]["itemSchema"]
                assert set(item["properties"]["event"]["enum"]) == {
                    "sync:start", "sync:progress", "sync:complete", "sync:error"
                }  # fmt: skip
                snapshot = resolved(item["properties"]["data"]["contentSchema"])
                assert {"run_id", "done", "total", "percent", "grid_path"} <= set(snapshot["properties"])
            else:
                body = resolved(content["application/json"]["schema"])
                assert body["type"] == "object" and body["properties"], f"{method} {path}"
                assert resolved(operation["responses"]["503"]["content"]["application/json"]["schema"])
    assert "404" in document["paths"]["/api/runs/{dag_id}/{run_id}"]["get"]["responses"]


def test_responses_match_their_documented_schema(auth_client: Any, seeded: Seeded) -> None:
    # Every key a body carries is a documented property of its schema, nested ones too.
    document = auth_client.get("/github-sync/openapi.json").json()
    schemas = document["components"]["schemas"]

    def check(value: Any, schema: dict[str, Any], where: str) -> None:
        if "$ref" in schema:
            schema = schemas[schema["$ref"].removeprefix("#/components/schemas/")]
        if "anyOf" in schema:
            options = [s for s in schema["anyOf"] if s.get("type") != "null"]
            if value is None:
                return
            schema = options[0]
        if isinstance(value, dict) and "properties" in schema:
            assert set(value) == set(schema["properties"]), where
            for key, item in value.items():
                check(item, schema["properties"][key], f"{where}.{key}")
        elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
            for key, item in value.items():
                check(item, schema["additionalProperties"], f"{where}.{key}")
        elif isinstance(value, list) and "items" in schema:
            for index, item in enumerate(value):
                check(item, schema["items"], f"{where}[{index}]")

    run = seeded.runs[2]
    for path in ("/api/stats", "/api/history", f"/api/runs/{run.dag_id}/{run.run_id}", "/api/rate-limit",
                 "/api/repositories", "/api/progress", "/api/owners"):  # fmt: skip
        template = "/api/runs/{dag_id}/{run_id}" if path.startswith("/api/runs/") else path
        schema = document["paths"][template]["get"]["responses"]["200"]["content"]["application/json"][
            "schema"
        ]
        check(auth_client.get(f"/github-sync{path}").json(), schema, path)
