"""Who may read the status app, over real HTTP against Airflow's api-server app and PostgreSQL.

The app's auth manager is the test double of :mod:`tests.status.dag_scoped_auth_manager`
(SimpleAuthManager cannot deny a DAG): ``outsider`` may read no sync DAG, ``full-sync-only``
only ``github_full_sync``, a plain viewer every DAG. Every route of the app's route table is
checked for each of them (a new route without an example URL fails
:func:`test_every_route_of_the_app_is_checked`), and without any login.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.status.conftest import user_token
from tests.status.dag_scoped_auth_manager import FULL_SYNC_ONLY, OUTSIDER
from tests.status.seed import Seeded

HTTP_TIMEOUT_S = 30.0
FULL_RUN = "__full_run__"
# One request per route of the status app, keyed by the route's path; FULL_RUN stands for
# a seeded run of github_full_sync.
EXAMPLE_URLS = {
    "/": "/github-sync/",
    "/openapi.json": "/github-sync/openapi.json",
    "/static/{path:path}": "/github-sync/static/dashboard.js",
    "/api/stats": "/github-sync/api/stats",
    "/api/history": "/github-sync/api/history",
    "/api/runs/{dag_id}/{run_id:path}": FULL_RUN,
    "/api/rate-limit": "/github-sync/api/rate-limit",
    "/api/repositories": "/github-sync/api/repositories",
    "/api/progress": "/github-sync/api/progress",
    "/api/owners": "/github-sync/api/owners",
    "/stream": "/github-sync/stream",
}
ROUTES = tuple(EXAMPLE_URLS)


@pytest.fixture
def http(served_app: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served_app, timeout=HTTP_TIMEOUT_S) as client:
        yield client


def _url(route: str, seeded: Seeded) -> str:
    example = EXAMPLE_URLS[route]
    return _url_of_mode(seeded, "full") if example == FULL_RUN else example


def _status(http: httpx.Client, url: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # Streamed, so the event stream's status is read without waiting for its (endless) body.
    with http.stream("GET", url, headers=headers) as response:
        return response.status_code


def test_every_route_of_the_app_is_checked(airflow_app: Any) -> None:
    from github_sync.orchestration.plugin import GitHubSyncPlugin

    app = GitHubSyncPlugin.fastapi_apps[0]["app"].app
    assert {route.path for route in app.routes} == set(EXAMPLE_URLS)


@pytest.mark.parametrize("route", ROUTES)
def test_without_login_every_route_is_refused(http: httpx.Client, seeded: Seeded, route: str) -> None:
    assert _status(http, _url(route, seeded), token=None) == 401


@pytest.mark.parametrize("route", ROUTES)
def test_a_user_who_may_read_the_sync_dags_reads_every_route(
    http: httpx.Client, seeded: Seeded, route: str
) -> None:
    assert _status(http, _url(route, seeded), user_token("viewer", "VIEWER")) == 200


@pytest.mark.parametrize("route", ROUTES)
def test_a_user_who_may_not_read_the_sync_dags_is_refused_every_route(
    http: httpx.Client, seeded: Seeded, route: str
) -> None:
    assert _status(http, _url(route, seeded), user_token(OUTSIDER, "ADMIN")) == 403


@pytest.mark.parametrize("route", [r for r in ROUTES if EXAMPLE_URLS[r] != FULL_RUN])
def test_a_user_of_one_sync_dag_is_refused_the_routes_mixing_all_of_them(
    http: httpx.Client, seeded: Seeded, route: str
) -> None:
    assert _status(http, _url(route, seeded), user_token(FULL_SYNC_ONLY, "VIEWER")) == 403


def test_a_user_of_one_sync_dag_reads_its_runs_and_no_other(http: httpx.Client, seeded: Seeded) -> None:
    token = user_token(FULL_SYNC_ONLY, "VIEWER")
    full = http.get(
        _url("/api/runs/{dag_id}/{run_id:path}", seeded), headers={"Authorization": f"Bearer {token}"}
    )
    assert full.status_code == 200 and full.json()["dag_id"] == "github_full_sync"
    incremental_url = _url_of_mode(seeded, "incremental")
    refused = http.get(incremental_url, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403
    assert "github_incremental_sync" not in refused.text and "repositor" not in refused.text


def test_a_dag_that_is_not_a_sync_dag_is_not_found_whoever_asks(http: httpx.Client, seeded: Seeded) -> None:
    for token in (user_token("viewer", "VIEWER"), user_token(OUTSIDER, "ADMIN")):
        response = http.get("/github-sync/api/runs/other_dag/x", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 404
        assert "not a github-sync DAG: 'other_dag'" in response.json()["detail"]


def test_the_schema_is_served_to_an_allowed_user_with_its_server(http: httpx.Client) -> None:
    response = http.get(
        "/github-sync/openapi.json", headers={"Authorization": f"Bearer {user_token('viewer', 'VIEWER')}"}
    )
    assert response.status_code == 200
    document = response.json()
    assert document["servers"][0]["url"] == "/github-sync"
    assert "/api/history" in document["paths"] and "/openapi.json" not in document["paths"]


def _url_of_mode(seeded: Seeded, mode: str) -> str:
    run = next(r for r in seeded.runs if r.mode == mode)
    return f"/github-sync/api/runs/{run.dag_id}/{run.run_id}"


def test_a_refused_browser_is_told_so_not_sent_to_login(http: httpx.Client) -> None:
    # Logged in already: the login page would send the browser straight back (a loop).
    http.cookies.set("_token", user_token(OUTSIDER, "ADMIN"))
    page = http.get("/github-sync/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 403
    assert "read access to the runs of the github-sync DAGs" in page.json()["detail"]
