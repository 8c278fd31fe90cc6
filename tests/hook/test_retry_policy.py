"""Pure tests of response classification, waits and the tenacity loop (no server)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from github_sync.github.errors import GitHubClientError, GitHubServerError
from github_sync.github.retry import (
    RETRYABLE_STATUSES,
    SECONDARY_MIN_WAIT_S,
    Outcome,
    RetryPolicy,
    classify,
    is_secondary_limit,
    retry_after_seconds,
)

SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


@pytest.mark.parametrize(
    ("status", "headers", "body", "outcome"),
    [
        (200, {}, [], Outcome.OK),
        (304, {}, None, Outcome.NOT_MODIFIED),
        (403, {"x-ratelimit-remaining": "0"}, {"message": "API rate limit exceeded"}, Outcome.PRIMARY_LIMIT),
        (429, {"X-RateLimit-Remaining": "0"}, None, Outcome.PRIMARY_LIMIT),
        (403, {"x-ratelimit-remaining": "4000", "retry-after": "30"}, None, Outcome.SECONDARY_LIMIT),
        (403, {"x-ratelimit-remaining": "4000"}, {"message": SECONDARY_MESSAGE}, Outcome.SECONDARY_LIMIT),
        (429, {"x-ratelimit-remaining": "4000"}, None, Outcome.SECONDARY_LIMIT),
        (
            403,
            {"x-ratelimit-remaining": "4000"},
            {"message": "Resource not accessible"},
            Outcome.CLIENT_ERROR,
        ),
        (404, {}, {"message": "Not Found"}, Outcome.CLIENT_ERROR),
        (502, {}, "<html>", Outcome.SERVER_ERROR),
    ],
)
def test_classify(status: int, headers: dict, body: object, outcome: Outcome) -> None:
    assert classify(status, headers, body) is outcome


def test_documented_secondary_limit_error_body(github_samples: Path) -> None:
    # The documented 403 body is a basic-error; with GitHub's secondary wording it is secondary.
    errors = json.loads((github_samples / "openapi" / "_components_responses_errors.json").read_text())
    assert "forbidden" in errors["components/responses (subset)"]
    assert is_secondary_limit(403, {}, {"message": SECONDARY_MESSAGE, "documentation_url": "https://docs"})
    assert not is_secondary_limit(403, {}, {"message": "Must have admin rights to Repository."})


@pytest.mark.parametrize(("value", "seconds"), [("30", 30.0), (" 0 ", 0.0), ("-5", 0.0), ("soon", None)])
def test_retry_after(value: str, seconds: float | None) -> None:
    assert retry_after_seconds({"Retry-After": value}) == seconds
    assert retry_after_seconds({}) is None


def test_backoff_is_exponential_capped_with_jitter() -> None:
    policy = RetryPolicy(backoff_initial_s=1, backoff_max_s=8, backoff_jitter_s=0.5, rng=random.Random(1))
    waits = [policy.backoff(n) for n in range(1, 7)]
    for n, wait in enumerate(waits, start=1):
        base = min(2 ** (n - 1), 8)
        assert base <= wait <= base + 0.5


def test_secondary_wait_honours_retry_after_else_min_then_exponential() -> None:
    policy = RetryPolicy(rng=random.Random(2))
    assert policy.secondary_wait(1, 7.0) == 7.0
    first, second, third = (policy.secondary_wait(n, None) for n in (1, 2, 3))
    assert SECONDARY_MIN_WAIT_S <= first <= SECONDARY_MIN_WAIT_S * 1.1
    assert 2 * SECONDARY_MIN_WAIT_S <= second <= 2 * SECONDARY_MIN_WAIT_S * 1.1
    assert 4 * SECONDARY_MIN_WAIT_S <= third


def test_call_retries_retryable_errors_then_reraises_typed() -> None:
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_jitter_s=0)
    calls = 0

    def always_502() -> None:
        nonlocal calls
        calls += 1
        raise GitHubServerError(method="GET", path="/x", status=502, retryable=True)

    with pytest.raises(GitHubServerError) as info:
        policy.call(always_502, sleep=slept.append)
    assert calls == 3 and slept == [0.01, 0.02]
    assert info.value.status == 502
    assert 502 in RETRYABLE_STATUSES


def test_call_does_not_retry_client_errors() -> None:
    calls = 0

    def not_found() -> None:
        nonlocal calls
        calls += 1
        raise GitHubClientError(method="GET", path="/x", status=404)

    with pytest.raises(GitHubClientError):
        RetryPolicy().call(not_found, sleep=lambda s: None)
    assert calls == 1


def test_call_uses_the_errors_retry_after() -> None:
    slept: list[float] = []
    attempts = iter([True, False])

    def flaky() -> str:
        if next(attempts):
            raise GitHubServerError(method="GET", path="/x", status=503, retryable=True)
        return "ok"

    policy = RetryPolicy(backoff_initial_s=5, backoff_jitter_s=0)
    assert policy.call(flaky, sleep=slept.append) == "ok"
    assert slept == [5]
    error = GitHubServerError(method="GET", path="/x", status=503, retryable=True)
    error.retry_after = 0.25
    seq = iter([error])

    def once() -> str:
        for e in seq:
            raise e
        return "ok"

    slept.clear()
    assert policy.call(once, sleep=slept.append) == "ok"
    assert slept == [0.25]
