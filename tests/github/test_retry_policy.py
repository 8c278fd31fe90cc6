"""Pure tests of the retry policy: which errors are retried, the backoff, the tenacity loop (no server)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from github_sync.github.errors import GitHubClientError, GitHubServerError, RateLimitExhausted
from github_sync.github.retry import RETRYABLE_STATUSES, RetryPolicy, is_retryable


def _always_502() -> None:
    raise GitHubServerError(method="GET", path="/x", status=502, retryable=True)


def _backoffs(policy: RetryPolicy) -> list[float]:
    slept: list[float] = []
    with pytest.raises(GitHubServerError):
        policy.call(_always_502, sleep=slept.append)
    return slept


def test_backoff_is_exponential_capped_with_jitter() -> None:
    policy = RetryPolicy(
        max_attempts=7, backoff_initial_s=1, backoff_max_s=8, backoff_jitter_s=0.5, rng=random.Random(1)
    )
    waits = _backoffs(policy)
    assert len(waits) == 6
    for n, wait in enumerate(waits, start=1):
        base = min(2 ** (n - 1), 8)
        assert base <= wait <= base + 0.5
    # The jitter is added after the cap, so waits at the cap still spread out.
    assert all(wait > 8 for wait in waits[3:])


def test_backoff_jitter_comes_from_the_policys_rng() -> None:
    def policy(seed: int) -> RetryPolicy:
        return RetryPolicy(max_attempts=4, backoff_initial_s=1, backoff_jitter_s=1, rng=random.Random(seed))

    assert _backoffs(policy(3)) == _backoffs(policy(3)) != _backoffs(policy(4))


def test_call_retries_retryable_errors_then_reraises_typed() -> None:
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_jitter_s=0)
    calls = 0

    def always_502() -> None:
        nonlocal calls
        calls += 1
        _always_502()

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


def test_only_errors_marked_retryable_are_retried() -> None:
    refusal = RateLimitExhausted("core", datetime(2026, 11, 1, tzinfo=UTC))
    assert not is_retryable(refusal) and not is_retryable(ValueError("x"))
    refusal.retryable = True
    assert is_retryable(refusal)


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
    # A rate-limit refusal says 0: the rate limiter holds the next attempt, not the loop.
    for retry_after in (0.25, 0.0):
        slept.clear()
        assert policy.call(_fails_once_waiting(retry_after), sleep=slept.append) == "ok"
        assert slept == [retry_after]


def _fails_once_waiting(retry_after: float) -> Callable[[], str]:
    error = GitHubServerError(method="GET", path="/x", status=503, retryable=True)
    error.retry_after = retry_after
    failures = iter([error])

    def once() -> str:
        for failure in failures:
            raise failure
        return "ok"

    return once
