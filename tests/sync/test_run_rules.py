"""The rules a run is judged by: owners, the failure verdict, and which errors retrying cannot fix."""

from __future__ import annotations

import pytest

from github_sync.github.errors import (
    GitHubClientError,
    GitHubServerError,
    GitHubTransportError,
    RepositoryUnavailable,
)
from github_sync.github.owners import OwnerError, check_repository, parse_owner_list, resolve_owners
from github_sync.orchestration.run_guard import explain_permanent
from github_sync.store.run_records import RunSummary, failure_verdict
from github_sync.sync.discovery import DiscoveryError, allow_lists_by_owner


def summary(*, succeeded: int = 0, failed: int = 0, skipped: int = 0) -> RunSummary:
    return RunSummary(
        total=succeeded + failed + skipped, succeeded=succeeded, failed=failed, skipped=skipped,
        records_imported=0, records_failed=0, requests=0, budget_spent=0, not_modified=0, retries=0,
        rate_limit_remaining=None, failures=tuple((f"acme/r{i}", "boom") for i in range(failed)), skips=(),
    )  # fmt: skip


DONE = {"stages": {"targets": {"state": "done"}}}


@pytest.mark.parametrize(
    ("details", "outcome", "expected", "tolerance", "fails"),
    [
        (DONE, summary(succeeded=3), 3, 0, False),
        (DONE, summary(), 0, 0, False),  # nothing changed: an empty incremental run is a success
        (DONE, summary(succeeded=2, failed=1), 3, 0, True),
        (DONE, summary(succeeded=2, failed=1), 3, 1, False),  # within the tolerance
        (DONE, summary(failed=3), 3, 10, True),  # nothing synced: fails whatever the tolerance
        (DONE, summary(skipped=2), 2, 0, False),  # empty repositories are skipped on purpose
        (DONE, summary(succeeded=2), 3, 5, True),  # one repository never ran
        ({"stages": {"targets": {"state": "failed", "error": "x"}}}, summary(), 0, 99, True),
        ({}, summary(), 0, 99, True),  # the listing left no record at all
    ],
)
def test_the_failure_rule(
    details: dict, outcome: RunSummary, expected: int, tolerance: int, fails: bool
) -> None:
    verdict = failure_verdict(
        details, outcome, expected=expected, tolerance=tolerance, targets_stage="targets"
    )
    assert bool(verdict.problems) is fails


def test_causes_no_other_record_explains_are_kept_for_import_logs() -> None:
    verdict = failure_verdict(DONE, summary(succeeded=2), expected=3, tolerance=5, targets_stage="targets")
    assert verdict.unexplained == ("1 of 3 repositories never ran",)
    verdict = failure_verdict({}, summary(), expected=0, tolerance=0, targets_stage="targets")
    assert "targets left no record" in verdict.unexplained[0]


@pytest.mark.parametrize(
    ("error", "fragment"),
    [
        (GitHubClientError(method="GET", path="/users/acme", status=401, message="Bad credentials"), "valid token"),
        (GitHubClientError(method="GET", path="/users/ghost", status=404, message="Not Found"),
         "no user or organisation 'ghost'"),
        (GitHubClientError(method="GET", path="/orgs/acme/repos", status=403, message="Forbidden"), "check what connection"),
        (RepositoryUnavailable("acme/x", "gone", path="/repos/acme/x"), "check the repository's name"),
        (OwnerError("Param 'owner' must be ..."), "Param 'owner'"),
        (DiscoveryError("Param 'repos' names ..."), "Param 'repos'"),
    ],
)  # fmt: skip
def test_errors_retrying_cannot_fix_say_what_to_fix(error: Exception, fragment: str) -> None:
    assert fragment in (explain_permanent(error) or "")


@pytest.mark.parametrize(
    "error",
    [
        GitHubServerError(method="GET", path="/orgs/acme/repos", status=502),
        GitHubTransportError(method="GET", path="/users/acme", cause="ConnectionError"),
        TimeoutError("slow"),
    ],
)
def test_transient_errors_keep_their_retries(error: Exception) -> None:
    assert explain_permanent(error) is None


def test_owners_from_params_and_environment() -> None:
    assert resolve_owners("octo", ["acme"]) == ["octo"]  # the shorthand wins
    assert resolve_owners(None, ["acme", "Octo", "ACME"]) == ["acme", "Octo"]  # case-insensitive duplicates
    assert resolve_owners("", "acme, octo") == ["acme", "octo"]
    assert parse_owner_list(" acme ,, octo ", source="GITHUB_OWNER") == ["acme", "octo"]
    with pytest.raises(OwnerError, match="no owner to sync"):
        resolve_owners(None, [])
    with pytest.raises(OwnerError, match=r"Param 'owners'\[1\]"):
        resolve_owners(None, ["acme", "bad login"])
    with pytest.raises(OwnerError, match="Param 'owner'"):
        resolve_owners("acme\n", None)  # `$` would let the newline through; fullmatch does not


@pytest.mark.parametrize("bad", ["acme/..", "acme/.", "acme", "/x", "a b/c", "acme/x/y", "acme/x\n"])
def test_repository_names_that_would_change_the_api_path_are_refused(bad: str) -> None:
    with pytest.raises(OwnerError):
        check_repository(bad, source="Param 'repository'")


def test_the_allow_list_is_split_between_owners() -> None:
    assert allow_lists_by_owner(["a", "acme/b"], ["acme"]) == {"acme": ["a", "acme/b"]}
    assert allow_lists_by_owner(["acme/a", "Octo/b"], ["acme", "octo"]) == {
        "acme": ["acme/a"],
        "octo": ["Octo/b"],
    }
    assert allow_lists_by_owner(None, ["acme", "octo"]) == {"acme": [], "octo": []}
    with pytest.raises(DiscoveryError, match="ambiguous"):
        allow_lists_by_owner(["a"], ["acme", "octo"])
    with pytest.raises(DiscoveryError, match="another owner"):
        allow_lists_by_owner(["other/a"], ["acme"])
