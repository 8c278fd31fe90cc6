"""Listing an owner's repositories: projects recorded, vanished ones tombstoned, bad allow-lists refused."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from github_sim import Simulator
from github_sync.sync.discovery import DiscoveryError, discover_repositories
from tests.sync.conftest import make_hook

pytestmark = pytest.mark.simulator(repos=8, seed=4)


def test_projects_follow_renames_deletions_and_archiving(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    hook = make_hook(sim, pg_database)
    first = discover_repositories(hook, pg_conn, owner="acme", as_of=datetime.now(UTC))
    assert first.owner_type == "Organization"
    assert first.listed == len(sim.state.repos())
    live = sorted((r for r in sim.state.repos() if not r.archived), key=lambda r: r.name)
    renamed, deleted, archived = live[0], live[1], live[2]
    sim.state.rename_repository(renamed.name, "brand-new-name")
    sim.state.delete_repository(deleted.name)
    sim.state.archive_repository(archived.name)

    second = discover_repositories(hook, pg_conn, owner="acme", as_of=datetime.now(UTC))

    assert second.removed == (f"acme/{deleted.name}",)
    rows = dict(
        pg_conn.execute("SELECT github_id, (full_name, status, removed_reason) FROM projects").fetchall()
    )
    assert rows[renamed.id] == ("acme/brand-new-name", "active", None)
    assert rows[deleted.id][2] == "no longer listed for acme"  # kept, marked
    assert rows[archived.id][1] == "shipped"
    # Archived repositories are synced by default (read once, then answered by 304s); a run may opt out.
    assert f"acme/{archived.name}" in {t.full_name for t in second.targets}
    opted_out = discover_repositories(
        hook, pg_conn, owner="acme", include_archived=False, as_of=datetime.now(UTC)
    )
    assert f"acme/{archived.name}" not in {t.full_name for t in opted_out.targets}


def test_an_unknown_repository_in_the_allow_list_is_refused_before_anything_is_written(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str
) -> None:
    with pytest.raises(DiscoveryError, match="another owner"):
        discover_repositories(make_hook(sim, pg_database), pg_conn, owner="acme", allow=["other/anything"],
                              as_of=datetime.now(UTC))  # fmt: skip
    with pytest.raises(DiscoveryError, match="no-such-repo"):
        discover_repositories(make_hook(sim, pg_database), pg_conn, owner="acme", allow=["no-such-repo"],
                              as_of=datetime.now(UTC))  # fmt: skip
    assert pg_conn.execute("SELECT count(*) FROM projects").fetchone() == (0,)


def test_the_budget_estimate_says_when_the_run_will_finish(
    sim: Simulator, pg_conn: psycopg.Connection, pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    hook = make_hook(sim, pg_database)
    # Just above the hook's reserve (10% of 5,000): the listing works, the run would not fit.
    sim.set_rate_limit_remaining("ghp_sync_tests_token_0123456789", 510)
    discovery = discover_repositories(hook, pg_conn, owner="acme", as_of=datetime.now(UTC))
    assert not discovery.estimate.fits
    assert discovery.estimate.usable is not None and discovery.estimate.usable < discovery.estimate.requests
    assert "runs out mid-run" in discovery.estimate.describe()
    assert discovery.estimate.reset_at is not None
