"""End to end: a real local Airflow, headless Chromium, the dashboard from the navigation.

The test logs in through Airflow's login page, opens "GitHub Sync" from the navigation,
checks the numbers against the database, triggers github_full_sync through the REST API
against a slow simulator and watches the live progress bar move, saving screenshots
under ``test-artifacts/``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from github_sim import Simulator, SimulatorConfig
from github_sync.devtools.local_airflow import LocalAirflow, start_local_airflow
from tests.conftest import PG_SERVER_DSN, REPO_ROOT
from tests.dags.conftest import TEST_TOKEN
from tests.polling import wait_until
from tests.status.seed import seed_history, seed_owners

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 1500}
# Slow enough that the run spans many stream polls, fast enough for the time budget.
SIM_REPOS = 24
SIM_LATENCY_MS = 120
POOL_SLOTS = 3
UI_TIMEOUT_MS = 60_000
RUN_TIMEOUT_S = 150
HISTORY_PAGE = 15  # rows per page of the dashboard's history table
PROGRESS_SAMPLE_S = 0.5  # how often the test reads the live progress bar


@pytest.fixture
def metadata_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for Airflow's metadata."""
    name = f"airflow_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_SERVER_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    host = PG_SERVER_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    try:
        yield f"postgresql+psycopg2://postgres@{host}/{name}"
    finally:
        with psycopg.connect(PG_SERVER_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def slow_simulator() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(owner="acme", repos=SIM_REPOS, seed=5, latency_ms=SIM_LATENCY_MS)) as sim:
        yield sim


@pytest.fixture
def seeded_target(pg_conn: psycopg.Connection) -> psycopg.Connection:
    """The target database with the run history (acme, and octo's runs), written before Airflow starts any task."""
    seed_history(pg_conn)
    seed_owners(pg_conn)
    return pg_conn


@pytest.fixture
def local_airflow(
    tmp_path: Path, metadata_url: str, slow_simulator: Simulator, pg_database: str, seeded_target: Any
) -> Iterator[LocalAirflow]:
    """Airflow's four components on the metadata DB, wired to the simulator and the test DB."""
    dsn = psycopg.conninfo.conninfo_to_dict(pg_database)
    extra_env = {
        "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps(
            {"conn_type": "github", "host": slow_simulator.url, "password": TEST_TOKEN}
        ),
        "AIRFLOW_CONN_GITHUB_SYNC_DB": json.dumps(
            {
                "conn_type": "postgres",
                "host": dsn.get("host", "127.0.0.1"),
                "port": int(dsn.get("port", 5432)),
                "login": dsn.get("user", "postgres"),
                "schema": dsn["dbname"],
            }
        ),
        # One api-server worker: quicker start, and the stream registry is in one process.
        "AIRFLOW__API__WORKERS": "1",
        # Unpaused at creation, the weekly DAG would start its latest scheduled run at once
        # and (max_active_runs=1) queue the run this test triggers behind it.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    }
    airflow = start_local_airflow(
        home=tmp_path / "airflow", metadata_url=metadata_url, extra_env=extra_env, pool_slots=POOL_SLOTS
    )
    started = list(airflow.processes.values())
    try:
        yield airflow
    finally:
        airflow.stop()
        assert all(process.poll() is not None for process in started), "an Airflow component survived stop()"


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def login(page: Any, airflow: LocalAirflow) -> None:
    page.goto(f"{airflow.api_url}/", wait_until="domcontentloaded")
    page.wait_for_url("**/auth/login**", timeout=UI_TIMEOUT_MS)
    page.locator("input[name='username']").fill("admin")
    page.locator("input[name='password']").fill(airflow.admin_password)
    page.locator("button[type='submit']").click()
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=UI_TIMEOUT_MS)


def database_numbers(database_url: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        runs, ok, records = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE metadata ->> 'state' = 'success'), "
            "sum(records_imported) FROM import_logs"
        ).fetchone()
    return {"runs": runs, "success_rate": f"{100 * ok / runs:.1f} %", "records": f"{records:,}"}


def test_dashboard_in_airflow(local_airflow: LocalAirflow, browser: Any, pg_database: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    expected = database_numbers(pg_database)
    local_airflow.wait_for_dags(["github_full_sync"])

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    login(page, local_airflow)

    # From the navigation, as a user would: the entry opens the plugin frame.
    page.get_by_role("link", name="GitHub Sync").first.click()
    page.wait_for_url("**/plugin/github-sync")
    frame = page.frame_locator("iframe").first
    frame.locator("body[data-loaded='true']").wait_for()
    assert frame.locator("#kpi-runs").inner_text() == str(expected["runs"])
    assert frame.locator("#kpi-success-rate").inner_text() == expected["success_rate"]
    assert frame.locator("#kpi-records").inner_text() == expected["records"]
    assert frame.locator("[data-mode='full'] [data-role='success-rate']").inner_text() == "66.7 %"
    assert frame.locator("#history tbody tr").count() == min(expected["runs"], HISTORY_PAGE)
    assert "acme/legacy" in frame.locator("#failing").inner_text()
    page.screenshot(path=str(ARTIFACTS / "dashboard-in-airflow.png"), full_page=True)

    # The dashboard page itself (outside the frame) for a full-height screenshot.
    dashboard = context.new_page()
    dashboard.set_default_timeout(UI_TIMEOUT_MS)
    dashboard.goto(f"{local_airflow.api_url}/github-sync/")
    dashboard.locator("body[data-loaded='true']").wait_for()
    dashboard.locator("#stream-status[data-state='live']").wait_for()

    run_id = local_airflow.trigger("github_full_sync", conf={"owner": "acme"})
    live = dashboard.locator(f".live-run[data-run-id='{run_id}']")
    live.wait_for(timeout=UI_TIMEOUT_MS)
    percents: list[float] = []
    screenshot_taken = False

    def live_run_finished() -> bool:
        """Sample the progress bar (and screenshot it mid-run); tell whether the run ended on the page."""
        nonlocal screenshot_taken
        if not live.count():
            return False
        percents.append(float(live.get_attribute("data-percent") or 0))
        if not screenshot_taken and 20 <= percents[-1] < 100:
            dashboard.screenshot(path=str(ARTIFACTS / "dashboard-live-progress.png"), full_page=True)
            screenshot_taken = True
        classes = live.get_attribute("class") or ""
        return "success" in classes or "failed" in classes

    wait_until(live_run_finished, timeout=RUN_TIMEOUT_S, interval=PROGRESS_SAMPLE_S,
               message=f"the live run {run_id} never finished on the page")  # fmt: skip
    assert local_airflow.wait_for_run("github_full_sync", run_id, timeout=60) == "success"
    distinct = sorted(set(percents))
    assert len(distinct) >= 3, f"the progress bar did not move: {percents}"
    assert percents == sorted(percents), f"progress went backwards: {percents}"
    assert percents[-1] == 100.0
    assert "success" in (live.get_attribute("class") or "")

    # Once logged (DAG callback), the run shows in the history with a link to the grid.
    row = dashboard.locator(f"#history tr[data-run-id='{run_id}']")
    row.wait_for(timeout=30_000)
    href = row.locator("a").get_attribute("href")
    assert href.startswith("/dags/github_full_sync/runs/")
    dashboard.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    check_owner_filter(dashboard, pg_database)
    context.close()


def check_owner_filter(dashboard: Any, database_url: str) -> None:
    """Selecting an owner re-queries the page for it, keeps it in the URL, and a reload keeps it."""
    with psycopg.connect(database_url) as conn:
        logged = [row[0] for row in conn.execute("SELECT metadata FROM import_logs").fetchall()]
    octo_runs = sum("octo" in {o.lower() for o in meta.get("owners") or []} for meta in logged)
    assert octo_runs == 3

    def assert_only_octo() -> None:
        dashboard.locator("body[data-loaded='true'][data-owner='octo']").wait_for()
        slowest = dashboard.locator("#slowest tbody tr td:first-child").all_inner_texts()
        assert slowest and all(name.startswith("octo/") for name in slowest), slowest
        failing = dashboard.locator("#failing tbody tr td:first-child").all_inner_texts()
        assert failing == ["octo/app-1"], failing
        assert dashboard.locator("#history tbody tr").count() == octo_runs
        owners = dashboard.locator("#history tbody tr td.owners").all_inner_texts()
        assert all("octo" in cell.lower() for cell in owners), owners

    assert "acme/" in dashboard.locator("#slowest").inner_text()  # all owners so far
    dashboard.locator("#owner").select_option("octo")
    assert_only_octo()
    assert "owner=octo" in dashboard.url
    dashboard.screenshot(path=str(ARTIFACTS / "dashboard-owner.png"), full_page=True)

    dashboard.reload()
    assert_only_octo()
    assert dashboard.locator("#owner").input_value() == "octo"
    dashboard.locator("#owner").select_option("")
    dashboard.locator("body[data-loaded='true'][data-owner='']").wait_for()
    assert "owner=" not in dashboard.url
    assert "acme/" in dashboard.locator("#slowest").inner_text()
