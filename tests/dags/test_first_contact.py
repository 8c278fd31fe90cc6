"""First contact: user accounts, several owners, Assets, retention and priorities through dag.test()."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from github_sim import Simulator, SimulatorConfig
from github_sync.orchestration.assets import ASSETS_BY_MODE
from github_sync.sync.discovery import VISIBILITY_ALL, VISIBILITY_PUBLIC
from github_sync.transform.scoring import priority_score
from tests.dags.conftest import connect_airflow_to


def run_metadata(conn: psycopg.Connection, run_id: str) -> dict[str, Any]:
    return conn.execute(
        "SELECT metadata FROM import_logs WHERE metadata->>'run_id' = %s", (run_id,)
    ).fetchone()[0]


def asset_events(run: Any) -> dict[str, dict[str, Any]]:
    """The asset events a dag.test() run emitted, by asset name (read from Airflow's metadata DB)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetEvent.source_dag_id == run.dag_id, AssetEvent.source_run_id == run.run_id)
            .all()
        )
    return {name: dict(extra) for name, extra in rows}


@pytest.fixture
def user_sim() -> Iterator[Simulator]:
    # A user account with half of its repositories private; every token is the user's own.
    with Simulator(
        SimulatorConfig(owner="octo", owner_type="User", repos=10, private_repos=5, seed=7)
    ) as sim:
        yield sim


def test_a_user_account_synced_with_its_own_token_lands_with_its_private_repositories(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, user_sim: Simulator, pg_conn: psycopg.Connection,
    pg_database: str,
) -> None:  # fmt: skip
    connect_airflow_to(monkeypatch, user_sim, pg_database)
    run = dagbag.get_dag("github_full_sync").test(run_conf={"owners": ["octo"]})

    assert run.state == "success"
    private = {f"octo/{r.name}" for r in user_sim.state.repos() if r.private}
    assert len(private) == 5
    synced = {name for (name,) in pg_conn.execute("SELECT full_name FROM projects WHERE owner = 'octo'")}
    assert synced == {f"octo/{r.name}" for r in user_sim.state.repos()}
    bugs = pg_conn.execute(
        "SELECT count(*) FROM bugs b JOIN projects p ON p.id = b.project_id WHERE p.full_name = ANY(%s)",
        (sorted(private),),
    ).fetchone()[0]
    assert bugs == sum(
        1 for r in user_sim.state.repos() if r.private for i in r.issues.values() if not i.is_pr
    )
    metadata = run_metadata(pg_conn, run.run_id)
    assert metadata["owners"] == ["octo"]
    assert metadata["owner_listings"]["octo"] == {"type": "User", "visibility": VISIBILITY_ALL, "listed": 10}


def test_another_users_account_is_synced_public_only_and_the_run_says_so(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    config = SimulatorConfig(owner="octo", owner_type="User", repos=10, private_repos=5, seed=7,
                             owner_tokens=["octo-own-token"])  # fmt: skip
    with Simulator(config) as sim:
        connect_airflow_to(monkeypatch, sim, pg_database)  # with a token of somebody else
        run = dagbag.get_dag("github_full_sync").test(run_conf={"owner": "octo"})
        public = {f"octo/{r.name}" for r in sim.state.repos() if not r.private}

    assert run.state == "success"
    assert {name for (name,) in pg_conn.execute("SELECT full_name FROM projects")} == public
    metadata = run_metadata(pg_conn, run.run_id)
    assert metadata["owner_listings"]["octo"]["visibility"] == VISIBILITY_PUBLIC


def test_several_owners_in_one_run_keep_their_owner_and_the_allow_list_is_split_between_them(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    with Simulator(SimulatorConfig(owner="acme", repos=6, seed=5, big_repos=0)) as sim:
        connect_airflow_to(monkeypatch, sim, pg_database)
        user = sim.state.data.users[
            0
        ].login  # a user of the organisation's data set: no repositories of its own
        dag = dagbag.get_dag("github_full_sync")
        run = dag.test(run_conf={"owners": ["acme", user]})
        names = sorted(r.name for r in sim.state.repos())

        assert run.state == "success"
        metadata = run_metadata(pg_conn, run.run_id)
        assert metadata["owners"] == ["acme", user]
        assert metadata["owner_listings"]["acme"]["listed"] == 6
        assert metadata["owner_listings"][user] == {
            "type": "User",
            "visibility": VISIBILITY_PUBLIC,
            "listed": 0,
        }
        assert pg_conn.execute("SELECT DISTINCT owner FROM projects").fetchall() == [("acme",)]

        # An allow-list that names no repository of one of the owners is refused: syncing all of that
        # owner is not what a user who wrote an allow-list meant.
        run = dag.test(run_conf={"owners": ["acme", user], "repos": [f"acme/{names[0]}"]})
        assert run.state == "failed"
        assert any(f"names no repository of ['{user}']" in e for e in pg_conn.execute(
            "SELECT errors FROM import_logs WHERE metadata->>'run_id' = %s", (run.run_id,)).fetchone()[0])  # fmt: skip


def test_a_successful_run_emits_its_assets_with_the_summary_and_a_failed_one_none(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    with Simulator(SimulatorConfig(owner="acme", repos=4, seed=5, big_repos=0)) as sim:
        connect_airflow_to(monkeypatch, sim, pg_database)
        repository = f"acme/{sorted(r.name for r in sim.state.repos() if r.commits)[0]}"
        dag = dagbag.get_dag("github_repo_sync")
        run = dag.test(run_conf={"repository": repository})
        dag.task_dict["resolve_repository"].retry_delay = timedelta(0)
        missing = dag.test(run_conf={"repository": "acme/no-such-repository"})

    assert run.state == "success"
    events = asset_events(run)
    assert set(events) == {asset.name for asset in ASSETS_BY_MODE["repository"]}
    extra = events["github_sync.bugs"]
    assert extra["run_id"] == run.run_id and extra["mode"] == "repository"
    assert extra["succeeded"] == 1 and extra["failed"] == 0
    assert (
        extra["records_imported"]
        == pg_conn.execute(
            "SELECT records_imported FROM import_logs WHERE metadata->>'run_id' = %s", (run.run_id,)
        ).fetchone()[0]
    )

    assert missing.state == "failed"
    assert asset_events(missing) == {}


def test_the_weekly_full_sync_prunes_old_cached_responses_and_delivered_webhooks(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    old, recent = datetime.now(UTC) - timedelta(days=45), datetime.now(UTC) - timedelta(days=2)
    pg_conn.execute(
        "INSERT INTO github_http_cache (token_hash, url, body, stored_at) VALUES "
        "('t', 'https://api.example/old', '\\x00', %s), ('t', 'https://api.example/recent', '\\x00', %s)",
        (old, recent),
    )
    pg_conn.execute(
        "INSERT INTO webhook_deliveries (delivery_id, event, payload, status, received_at) VALUES "
        "('old-done', 'ping', '{}', 'processed', %(old)s), ('old-failed', 'ping', '{}', 'failed', %(old)s), "
        "('recent-done', 'ping', '{}', 'processed', %(recent)s)",
        {"old": old, "recent": recent},
    )
    pg_conn.commit()
    with Simulator(SimulatorConfig(owner="acme", repos=3, seed=5, big_repos=0)) as sim:
        connect_airflow_to(monkeypatch, sim, pg_database)
        run = dagbag.get_dag("github_full_sync").test(run_conf={"owner": "acme"})
        assert run.state == "success"
        incremental = dagbag.get_dag("github_incremental_sync").test(run_conf={"owner": "acme"})
        assert incremental.state == "success"

    urls = {url for (url,) in pg_conn.execute("SELECT url FROM github_http_cache WHERE token_hash = 't'")}
    assert urls == {"https://api.example/recent"}
    deliveries = {d for (d,) in pg_conn.execute("SELECT delivery_id FROM webhook_deliveries")}
    assert deliveries == {"old-failed", "recent-done"}  # a failed delivery is kept for a re-send
    assert run_metadata(pg_conn, run.run_id)["pruned"] == {"http_cache": 1, "webhook_deliveries": 1}
    assert "pruned" not in run_metadata(pg_conn, incremental.run_id)  # retention is the weekly run's job


def test_open_issues_age_in_every_run_without_a_request(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    with Simulator(SimulatorConfig(owner="acme", repos=4, seed=5, big_repos=0)) as sim:
        connect_airflow_to(monkeypatch, sim, pg_database)
        start = datetime.now(UTC)
        assert dagbag.get_dag("github_full_sync").test(run_conf={"owner": "acme"}).state == "success"
        later = start + timedelta(weeks=3)
        sim.reset_stats()
        run = dagbag.get_dag("github_incremental_sync").test(run_after=later, run_conf={"owner": "acme"})
        spent = sim.stats()["budget_spent"]
        issues = {i.id: i for r in sim.state.repos() for i in r.issues.values() if not i.is_pr}

    assert run.state == "success"
    # Nothing changed on GitHub: the re-scoring costs no request; the one spent is the
    # organisation's issue listing that tells so for all its repositories.
    assert spent == 1
    rows = pg_conn.execute(
        "SELECT github_id, severity, is_blocker, labels, priority_score FROM bugs WHERE status <> 'closed'"
    ).fetchall()
    assert rows
    moved = 0
    for github_id, severity, is_blocker, labels, score in rows:
        issue = issues[github_id]
        expected = priority_score(severity=severity, is_blocker=is_blocker, labels=labels,
                                  created_at=issue.created_at, as_of=run.run_after)  # fmt: skip
        assert score == expected, (github_id, score, expected)
        moved += expected != priority_score(severity=severity, is_blocker=is_blocker, labels=labels,
                                            created_at=issue.created_at, as_of=start)  # fmt: skip
    assert moved > 0  # three weeks later some scores had to move
    assert run_metadata(pg_conn, run.run_id)["bugs_rescored"] == moved
