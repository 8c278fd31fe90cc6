"""Pure tests of the cache encoding, the in-memory store and the exceptions (no server)."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from github_sync.github.errors import (
    GitHubClientError,
    GitHubServerError,
    RateLimitExhausted,
    RepositoryUnavailable,
    SecondaryRateLimitExceeded,
)
from github_sync.github.http_cache import (
    CachedResponse,
    InMemoryHttpCache,
    decode_body,
    encode_body,
    token_hash,
)


def test_token_hash_is_sha256_hex_and_not_the_token() -> None:
    digest = token_hash("ghp_secret")
    assert len(digest) == 64 and "ghp_secret" not in digest
    assert digest == token_hash("ghp_secret") != token_hash("other")


def test_body_roundtrip_gzip() -> None:
    body = [{"id": i, "title": "é" * 10} for i in range(50)]
    data = encode_body(body)
    assert data[:2] == b"\x1f\x8b"  # gzip magic
    assert decode_body(memoryview(data)) == body


def test_in_memory_cache() -> None:
    cache = InMemoryHttpCache()
    entry = CachedResponse(etag='W/"1"', last_modified=None, link=None, body={"a": 1})
    cache.put("h", "https://x/1", entry)
    assert cache.get("h", "https://x/1") == entry
    assert cache.get("other", "https://x/1") is None
    cache.delete("h", "https://x/1")
    assert len(cache) == 0


def test_exceptions_carry_fields_and_pickle() -> None:
    reset = datetime(2026, 11, 1, 13, 0, 1, tzinfo=UTC)
    errors = [
        RateLimitExhausted("core", reset, path="/repos/a/b"),
        SecondaryRateLimitExceeded("core", reset),
        GitHubClientError(method="GET", path="/x", status=422, message="Validation Failed"),
        GitHubServerError(method="GET", path="/x", status=503),
        RepositoryUnavailable("acme/api", "empty", path="/repos/acme/api/commits", status=409),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert copy.__dict__ == error.__dict__
    assert errors[0].reset_at == reset and errors[0].resource == "core"
    assert isinstance(errors[1], RateLimitExhausted)
    assert "acme/api" in str(errors[4]) and errors[4].reason == "empty"
    assert isinstance(errors[4], GitHubClientError) and errors[4].status == 409
