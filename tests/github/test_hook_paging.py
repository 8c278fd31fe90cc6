"""Pagination, first/last pages, ETags and redirects against the simulator over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from github_sync.github.errors import RepositoryMoved, RepositoryUnavailable
from github_sync.github.http_cache import InMemoryHttpCache, PostgresHttpCache
from github_sync.github.pagination import page_number, per_page_of, query_param

from .conftest import big_repo_name, repo_of


def _thousand_commits(sim: Any) -> list[str]:
    sim.state.create_repository("thousand")
    shas = sim.state.push_commits("thousand", 1000)
    assert shas == [c.sha for c in repo_of(sim, "thousand").commits]  # newest first, like the listing
    return shas


def test_1000_items_complete_in_order_with_10_requests(sim: Any, make_hook: Any) -> None:
    expected = _thousand_commits(sim)
    assert len(expected) == 1000
    hook = make_hook()
    sim.reset_stats()
    got = [c["sha"] for c in hook.paginate("/repos/acme/thousand/commits")]
    assert got == expected
    assert sim.stats()["requests_total"] == 10
    assert hook.stats.requests_sent == 10 and hook.stats.budget_spent == 10


def test_1000_issues_page_numbers(sim: Any, make_hook: Any) -> None:
    sim.state.create_repository("tracker")
    for n in range(1000):
        sim.state.create_issue("tracker", f"issue {n}")
    hook = make_hook()
    sim.reset_stats()
    numbers = [i["number"] for i in hook.paginate("/repos/acme/tracker/issues", {"state": "all"})]
    # GitHub's default order is newest first.
    assert numbers == list(range(1000, 0, -1))
    assert sim.stats()["requests_total"] == 10


def test_cursor_listing_follows_opaque_after_links(sim: Any, make_hook: Any) -> None:
    name = big_repo_name(sim)
    hook = make_hook()
    pages = list(hook.iter_pages(f"/repos/acme/{name}/issues", {"state": "all"}))
    items = [i for p in pages for i in p.items]
    assert len(items) == len(repo_of(sim, name).issues) > 1000
    assert len({i["id"] for i in items}) == len(items)
    assert len(pages) == -(-len(items) // 100)
    # Every later page came from GitHub's Link, with an after= cursor, never a page number we built.
    for page in pages[1:]:
        assert query_param(page.url, "after") and query_param(page.url, "page") is None


def test_per_page_is_capped_at_100(sim: Any, make_hook: Any) -> None:
    hook = make_hook()
    page = next(hook.iter_pages("/repos/acme/portal-server/commits", per_page=500))
    assert len(page.items) == 100 and query_param(page.url, "per_page") == "100"


def test_first_and_last_pages_give_the_size_of_a_listing(sim: Any, make_hook: Any) -> None:
    # What counting a listing (the sync's count_listing) relies on: on page-numbered listings
    # rel="last" numbers the last page, also when the first page is a 304 from the cache.
    _thousand_commits(sim)
    hook = make_hook(http_cache=InMemoryHttpCache())
    for path, params in (
        ("/repos/acme/thousand/commits", None),
        ("/repos/acme/portal-server/commits", None),
        ("/repos/acme/portal-server/contributors", {"anon": 1}),
    ):
        pages = list(hook.iter_pages(path, params))
        total = sum(len(page.items) for page in pages)
        if path.endswith("/commits"):
            assert total == len(repo_of(sim, path.split("/")[3]).commits), path
        first = next(hook.iter_pages(path, params))
        assert first.not_modified, path
        if len(pages) == 1:
            assert first.next_url is None and "last" not in first.links, path
            continue
        last_url = first.links["last"]
        assert page_number(last_url) == len(pages), path
        last_items = hook.get(last_url).items
        assert (page_number(last_url) - 1) * per_page_of(last_url) + len(last_items) == total, path


def test_one_item_and_empty_listings(sim: Any, make_hook: Any) -> None:
    hook = make_hook()
    sim.state.create_repository("single")
    sim.state.push_commits("single", 1)
    for path, params in (
        ("/repos/acme/single/commits", None),
        ("/repos/acme/single/contributors", {"anon": 1}),
    ):
        (page,) = hook.iter_pages(path, params)
        assert len(page.items) == 1 and page.next_url is None, path
    # Empty repository: commits answer 409, contributors 204 (no body, no items).
    with pytest.raises(RepositoryUnavailable) as empty:
        hook.get("/repos/acme/mobile/commits")
    assert empty.value.reason == "empty"
    (page,) = hook.iter_pages("/repos/acme/mobile/contributors", {"anon": 1})
    assert page.status == 204 and page.items == []


def test_etag_second_listing_costs_no_budget(sim: Any, make_hook: Any, token: str) -> None:
    hook = make_hook(http_cache=InMemoryHttpCache())
    path = f"/repos/acme/{big_repo_name(sim)}/issues"
    first = list(hook.iter_pages(path, {"state": "all"}))
    assert not any(p.not_modified for p in first)
    remaining = sim.rate_limit_remaining(token)
    spent = sim.stats()["budget_spent"]
    second = list(hook.iter_pages(path, {"state": "all"}))
    assert all(p.not_modified and p.from_cache for p in second)
    assert [i["id"] for p in second for i in p.items] == [i["id"] for p in first for i in p.items]
    assert sim.rate_limit_remaining(token) == remaining
    assert sim.stats()["budget_spent"] == spent
    assert sim.stats()["not_modified"] == len(first) == hook.stats.not_modified
    # A change shows up as a modified first page.
    sim.state.create_issue(big_repo_name(sim), "new one")
    third = list(hook.iter_pages(path, {"state": "all"}))
    assert not third[0].not_modified and third[0].items[0]["title"] == "new one"


def test_etag_store_in_postgres_survives_a_new_hook(
    sim: Any, make_hook: Any, token: str, pg_conn: Any, pg_database: str
) -> None:
    path = "/repos/acme/portal-server/commits"
    first_hook = make_hook(http_cache=PostgresHttpCache(pg_database))
    expected = [c["sha"] for c in first_hook.paginate(path)]
    first_hook.http_cache.close()
    stored = pg_conn.execute("SELECT count(*), min(length(token_hash)) FROM github_http_cache").fetchone()
    assert stored[0] == -(-len(expected) // 100) and stored[1] == 64
    leaked = pg_conn.execute(
        "SELECT count(*) FROM github_http_cache WHERE token_hash = %s OR url LIKE %s", (token, f"%{token}%")
    ).fetchone()
    assert leaked[0] == 0

    # A new hook with a connection factory (as inside Airflow) gets 304s for every page.
    import psycopg

    second_hook = make_hook(http_cache=PostgresHttpCache(lambda: psycopg.connect(pg_database)))
    remaining = sim.rate_limit_remaining(token)
    got = [c["sha"] for c in second_hook.paginate(path)]
    assert got == expected
    assert second_hook.stats.not_modified == second_hook.stats.requests_sent == stored[0]
    assert second_hook.stats.budget_spent == 0
    assert sim.rate_limit_remaining(token) == remaining
    second_hook.http_cache.close()


def test_postgres_cache_failure_is_a_miss(sim: Any, make_hook: Any, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Any:
        raise OSError("database down")

    hook = make_hook(http_cache=PostgresHttpCache(broken))
    assert hook.get("/repos/acme/portal").json["name"] == "portal"
    assert "HTTP cache unavailable" in caplog.text


def test_renamed_repository_is_surfaced(sim: Any, make_hook: Any, token: str) -> None:
    sim.state.rename_repository("portal", "portal-web")
    hook = make_hook()
    anonymous_before = sim.rate_limit_remaining(None)
    response = hook.get("/repos/acme/portal")
    assert response.status == 200 and response.json["full_name"] == "acme/portal-web"
    assert response.moved_to and "/repositories/" in response.moved_to
    assert response.moved_full_name == "acme/portal-web"
    # Same host: the redirected request stayed authenticated (no anonymous budget spent).
    assert sim.rate_limit_remaining(None) == anonymous_before
    with pytest.raises(RepositoryMoved) as info:
        hook.get("/repos/acme/portal", raise_on_move=True)
    assert info.value.new_full_name == "acme/portal-web"
    # Listings under the old name keep working through the redirect.
    assert len(list(hook.paginate("/repos/acme/portal/commits"))) == len(repo_of(sim, "portal-web").commits)


def test_unavailable_repositories(sim: Any, make_hook: Any) -> None:
    hook = make_hook()
    sim.state.delete_repository("catalog")
    with pytest.raises(RepositoryUnavailable) as gone:
        hook.get("/repos/acme/catalog")
    assert (gone.value.repo, gone.value.reason, gone.value.status) == ("acme/catalog", "gone", 404)
    with pytest.raises(RepositoryUnavailable) as gone_listing:
        list(hook.paginate("/repos/acme/catalog/issues"))
    assert gone_listing.value.reason == "gone"
    with pytest.raises(RepositoryUnavailable) as empty:
        hook.get("/repos/acme/mobile/commits")
    assert (empty.value.reason, empty.value.status) == ("empty", 409)
    sim.faults.fail_paths = {r"^/repos/acme/portal$": 451}
    with pytest.raises(RepositoryUnavailable) as blocked:
        hook.get("/repos/acme/portal")
    assert blocked.value.reason == "blocked"
