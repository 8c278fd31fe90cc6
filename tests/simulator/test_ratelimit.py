"""Primary and secondary rate limits over real HTTP."""

from __future__ import annotations

import threading
import time

import requests

from github_sim import Simulator
from tests.simulator.conftest import OWNER, TOKEN, auth, small_config

RATE_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
)


def test_headers_on_every_response(sim: Simulator, http: requests.Session) -> None:
    for path in (f"/orgs/{OWNER}", f"/repos/{OWNER}/nope", "/rate_limit", "/nowhere"):
        resp = http.get(sim.url + path)
        for header in RATE_HEADERS:
            assert header in resp.headers, (path, header)
        assert resp.headers["x-ratelimit-resource"] == "core"


def test_budget_decreases_per_request_not_per_304(sim: Simulator, http: requests.Session) -> None:
    url = f"{sim.url}/orgs/{OWNER}/repos"
    first = http.get(url)
    remaining = int(first.headers["x-ratelimit-remaining"])
    assert remaining == 4999 and first.headers["x-ratelimit-used"] == "1"
    second = http.get(url + "?page=1&per_page=2")
    assert int(second.headers["x-ratelimit-remaining"]) == remaining - 1
    etag = first.headers["ETag"]
    for _ in range(3):
        cached = http.get(url, headers={"If-None-Match": etag})
        assert cached.status_code == 304 and cached.content == b""
        assert int(cached.headers["x-ratelimit-remaining"]) == remaining - 1
    assert sim.rate_limit_remaining(TOKEN) == remaining - 1
    stats = sim.stats()
    assert stats["not_modified"] == 3 and stats["budget_spent"] == 2 and stats["requests_total"] == 5


def test_rate_limit_endpoint_does_not_spend(sim: Simulator, http: requests.Session) -> None:
    http.get(f"{sim.url}/orgs/{OWNER}")
    for _ in range(3):
        body = http.get(f"{sim.url}/rate_limit").json()
    assert body["resources"]["core"]["remaining"] == 4999 and body["rate"]["used"] == 1
    assert sim.rate_limit_remaining(TOKEN) == 4999


def test_exhaustion_is_403_with_remaining_0_and_future_reset(sim: Simulator, http: requests.Session) -> None:
    sim.set_rate_limit_remaining(TOKEN, 1)
    ok = http.get(f"{sim.url}/orgs/{OWNER}")
    assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining"] == "0"
    resp = http.get(f"{sim.url}/orgs/{OWNER}")
    assert resp.status_code == 403
    assert resp.headers["x-ratelimit-remaining"] == "0"
    assert int(resp.headers["x-ratelimit-reset"]) > time.time()
    body = resp.json()
    assert body["message"].startswith("API rate limit exceeded for") and "documentation_url" in body
    # Another token still has its own budget.
    assert http.get(f"{sim.url}/orgs/{OWNER}", headers=auth("other")).status_code == 200


def test_window_resets_with_the_clock(sim: Simulator, http: requests.Session) -> None:
    sim.set_rate_limit_remaining(TOKEN, 0)
    assert http.get(f"{sim.url}/orgs/{OWNER}").status_code == 403
    sim.clock.advance(3601)
    resp = http.get(f"{sim.url}/orgs/{OWNER}")
    assert resp.status_code == 200 and resp.headers["x-ratelimit-remaining"] == "4999"
    assert int(resp.headers["x-ratelimit-reset"]) >= int(sim.clock.timestamp()) + 3599


def test_exhaustion_429_variant(sim: Simulator, http: requests.Session) -> None:
    sim.faults.status_429_for_primary = True
    sim.set_rate_limit_remaining(TOKEN, 0)
    resp = http.get(f"{sim.url}/orgs/{OWNER}")
    assert resp.status_code == 429 and resp.headers["x-ratelimit-remaining"] == "0"


def test_unauthenticated_gets_60(sim: Simulator) -> None:
    resp = requests.get(f"{sim.url}/orgs/{OWNER}", timeout=10)
    assert resp.headers["x-ratelimit-limit"] == "60" and resp.headers["x-ratelimit-remaining"] == "59"
    sim.set_rate_limit_remaining(None, 0)
    resp = requests.get(f"{sim.url}/orgs/{OWNER}", timeout=10)
    assert resp.status_code == 403 and "127.0.0.1" in resp.json()["message"]


def test_bad_token_is_401() -> None:
    with Simulator(small_config(tokens=["good"])) as sim:
        bad = requests.get(f"{sim.url}/orgs/{OWNER}", headers=auth("bad"), timeout=10)
        assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
        good = requests.get(f"{sim.url}/orgs/{OWNER}", headers={"Authorization": "token good"}, timeout=10)
        assert good.status_code == 200


def _parallel(url: str, n: int) -> list[requests.Response]:
    results: list[requests.Response] = []
    lock = threading.Lock()

    def one() -> None:
        resp = requests.get(url, headers=auth(), timeout=10)
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_secondary_limit_on_concurrency_sends_retry_after(sim: Simulator) -> None:
    sim.faults.secondary_limit_concurrency = 2
    sim.faults.slow_ms = 300  # hold requests open so they overlap
    results = _parallel(f"{sim.url}/orgs/{OWNER}", 8)
    limited = [r for r in results if r.status_code == 403]
    assert limited and any(r.status_code == 200 for r in results)
    for r in limited:
        assert r.headers["retry-after"] == "60"
        assert r.json()["message"].startswith("You have exceeded a secondary rate limit")
    assert sim.stats()["peak_concurrency"] >= 3


def test_secondary_limit_without_retry_after(sim: Simulator, http: requests.Session) -> None:
    sim.faults.secondary_limit_burst = 3
    sim.faults.secondary_retry_after = None
    sim.faults.secondary_status = 429
    statuses = [http.get(f"{sim.url}/orgs/{OWNER}").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    last = http.get(f"{sim.url}/orgs/{OWNER}")
    assert "retry-after" not in last.headers
    sim.clock.advance(61)  # the burst window is one minute of simulated time
    assert http.get(f"{sim.url}/orgs/{OWNER}").status_code == 200
