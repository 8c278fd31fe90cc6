"""Token hygiene, wire headers, Airflow connections and thread safety of the hook."""

from __future__ import annotations

import json
import logging
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from github_sync import GitHubHook, __version__
from github_sync.github.errors import GitHubClientError, GitHubError
from github_sync.github.hook import DEFAULT_MAX_IN_FLIGHT
from github_sync.github.http_cache import InMemoryHttpCache
from github_sync.github.retry import RetryPolicy
from github_sync.github.session import ApiAuth, ApiSession

from .conftest import FAST_RETRY

SECRET = "ghp_S3CRETtok3nNEVERlogME0123456789abcd"


def test_token_never_in_logs_exceptions_or_repr(sim: Any, make_hook: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)  # root, urllib3, requests, github_sync
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    texts: list[str] = []
    hook = make_hook(token=SECRET, http_cache=InMemoryHttpCache(), max_wait_s=30)
    texts.append(repr(hook))
    hook.get("/repos/acme/portal")
    hook.get("/repos/acme/portal")  # conditional 304
    sim.faults.fail_paths = {r"^/repos/acme/portal$": 502}
    sim.faults.secondary_retry_after = 600
    triggers = [
        lambda: hook.get("/repos/acme/does-not-exist"),
        lambda: hook.get("/repos/acme/portal"),
        lambda: hook.get("/orgs/acme/nope"),
    ]
    for trigger in triggers:
        with pytest.raises(GitHubError) as info:
            trigger()
        texts += [str(info.value), repr(info.value), repr(pickle.loads(pickle.dumps(info.value)))]
    sim.faults.fail_paths = {}
    sim.faults.secondary_limit_burst = 1
    with pytest.raises(GitHubError) as secondary:
        hook.get("/repos/acme/catalog")
        hook.get("/repos/acme/catalog")
    texts.append(str(secondary.value))
    sim.faults.secondary_limit_burst = None
    sim.set_rate_limit_remaining(SECRET, 0)
    with pytest.raises(GitHubError) as exhausted:
        hook.get("/repos/acme/cli-operator")
    texts.append(str(exhausted.value))
    refused = make_hook(
        token=SECRET, base_url="http://127.0.0.1:9", retry_policy=RetryPolicy(max_attempts=2, **FAST_RETRY)
    )
    with pytest.raises(GitHubError) as transport:
        refused.get("/repos/acme/portal")
    texts += [str(transport.value), repr(transport.value.__cause__)]
    texts.append(repr(refused.get_conn().auth))
    ok, message = make_hook(
        token=SECRET + "x", base_url="http://127.0.0.1:9", retry_policy=RetryPolicy(max_attempts=1)
    ).test_connection()
    assert not ok
    texts.append(message)
    texts.append(json.dumps(hook.stats.as_dict()))
    assert "Authorization" not in caplog.text and "Bearer" not in caplog.text
    assert caplog.records, "nothing was logged: the test proves nothing"
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    for text in [caplog.text, *texts]:
        assert SECRET not in text


def test_wire_headers_and_conditional_request() -> None:
    # The simulator does not echo request headers, so a tiny stub records what went on the wire.
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.end_headers()
                return
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = GitHubHook(
            base_url=f"http://127.0.0.1:{server.server_port}/",
            token="tok-123",
            http_cache=InMemoryHttpCache(),
        )
        first = hook.get("/user")
        second = hook.get("user")
        hook.close()
    finally:
        server.shutdown()
        server.server_close()
    assert first.json == second.json == {"ok": True}
    assert (first.not_modified, second.not_modified, second.from_cache) == (False, True, True)
    headers = {k.lower(): v for k, v in seen[0].items()}
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"] == f"github-sync/{__version__}"
    assert headers["authorization"] == "Bearer tok-123"
    assert {k.lower(): v for k, v in seen[1].items()}["if-none-match"] == '"v1"'


def test_bearer_only_for_the_api_origin() -> None:
    auth = ApiAuth("Bearer tok", ApiSession("https://api.github.com"))
    own = auth(requests.Request("GET", "https://api.github.com/user").prepare())
    other = auth(requests.Request("GET", "https://evil.example.com/user").prepare())
    assert own.headers["Authorization"] == "Bearer tok"
    assert "Authorization" not in other.headers
    assert "tok" not in repr(auth)


def test_connection_from_airflow_env(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "github", "password": SECRET, "host": sim.url}
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", json.dumps(conn))
    hook = GitHubHook()
    assert "base_url=None" in repr(hook)  # nothing read before the first use
    ok, message = hook.test_connection()
    assert ok, message
    assert sim.url in message and "5000" in message and SECRET not in message
    assert hook.base_url == sim.url and SECRET not in repr(hook)
    assert hook.get("/repos/acme/portal").json["full_name"] == "acme/portal"
    assert sim.rate_limit_remaining(SECRET) < 5000  # the connection's token was used
    hook.close()


def test_connection_defaults_and_bad_token(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GH_PLAIN", json.dumps({"conn_type": "github", "password": "abcdef"}))
    assert GitHubHook("gh_plain").base_url == "https://api.github.com"
    monkeypatch.setenv(
        "AIRFLOW_CONN_GH_GHE",
        json.dumps({"conn_type": "github", "password": "x1", "host": "ghe.example.com/api/v3/"}),
    )
    assert GitHubHook("gh_ghe").base_url == "https://ghe.example.com/api/v3"
    monkeypatch.setenv("AIRFLOW_CONN_GH_NOTOKEN", json.dumps({"conn_type": "github", "host": sim.url}))
    ok, message = GitHubHook("gh_notoken").test_connection()
    assert not ok and "no GitHub credential" in message
    assert GitHubHook.conn_type == "github" and GitHubHook.conn_name_attr == "github_conn_id"
    assert GitHubHook.default_conn_name == "github_default" and GitHubHook.hook_name == "GitHub (github-sync)"


def test_bad_credentials_fail_fast(token: str) -> None:
    from github_sim import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(repos=2, seed=3, tokens=["good-token"])) as strict:
        hook = GitHubHook(base_url=strict.url, token="bad-token")
        ok, message = hook.test_connection()
        assert not ok and "401" in message and "Bad credentials" in message
        with pytest.raises(GitHubClientError) as info:
            hook.get("/user")
        # test_connection probes each credential on a hook of its own: only the GET counts here.
        assert info.value.status == 401 and hook.stats.requests_sent == 1
        hook.close()


def test_threads_share_one_hook_within_max_in_flight(sim: Any, make_hook: Any) -> None:
    from github_sim import Simulator, SimulatorConfig

    assert DEFAULT_MAX_IN_FLIGHT == 8
    with Simulator(SimulatorConfig(repos=4, seed=4, latency_ms=40)) as slow:
        hook = make_hook(base_url=slow.url, clock=slow.clock.now, max_in_flight=3)
        names = [r.name for r in slow.state.repos()]
        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(
                pool.map(lambda i: hook.get(f"/repos/acme/{names[i % len(names)]}").status, range(36))
            )
        assert results == [200] * 36
        assert slow.stats()["peak_concurrency"] <= 3
        assert hook.stats.requests_sent == slow.stats()["requests_total"] == 36
        assert hook.stats.budget_spent == 36


def test_reserve_holds_under_concurrency_and_logs_once(
    sim: Any, make_hook: Any, token: str, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="github_sync")
    hook = make_hook(max_wait_s=10)
    hook.get("/repos/acme/portal")
    sim.set_rate_limit_remaining(token, 520)
    outcomes: list[str] = []

    def one(_: int) -> None:
        try:
            hook.get("/repos/acme/portal")
            outcomes.append("ok")
        except GitHubError as exc:
            outcomes.append(type(exc).__name__)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(40)))
    assert outcomes.count("ok") == 20
    assert outcomes.count("RateLimitExhausted") == 20
    assert sim.rate_limit_remaining(token) == 500
    assert caplog.text.count("rate limit at its reserve") == 1
