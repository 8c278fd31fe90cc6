"""Pure tests of how the request path reads an answer: outcome, error message, unavailable repositories."""

from __future__ import annotations

import pytest

from github_sync.github.transport import (
    ERROR_BODY_SNIPPET,
    Outcome,
    classify,
    error_message,
    repository_unavailable,
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


def test_error_message_is_githubs_message_or_the_start_of_the_body() -> None:
    assert error_message({"message": "Not Found", "documentation_url": "https://docs"}) == "Not Found"
    assert error_message("<html>" + "x" * 1000) == ("<html>" + "x" * 1000)[:ERROR_BODY_SNIPPET]
    assert error_message(None) == ""


@pytest.mark.parametrize(
    ("path", "status", "expected"),
    [
        ("/repos/acme/api", 404, ("acme/api", "gone")),
        ("/repos/acme/api/issues", 404, ("acme/api", "gone")),
        ("/repos/acme/api/commits", 409, ("acme/api", "empty")),
        ("/repos/acme/api", 451, ("acme/api", "blocked")),
        # A 404 about one object under the repository, or an optional sub-resource, is not "gone".
        ("/repos/acme/api/commits/abc", 404, None),
        ("/repos/acme/api/readme", 404, None),
        ("/orgs/acme", 404, None),
        ("/repos/acme/api", 403, None),
    ],
)
def test_repository_unavailable(path: str, status: int, expected: tuple[str, str] | None) -> None:
    assert repository_unavailable(path, status) == expected
