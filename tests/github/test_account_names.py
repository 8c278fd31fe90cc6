"""GitHub login and repository-name rules, the same at every boundary and in both regex engines.

The Params carry the patterns (Airflow checks them with Python's ``re.search`` through
jsonschema, the trigger form with ECMAScript), the tasks and the CLI call the Python checks.
A trailing newline, ``..``, a hyphen at either end of a login, too long or too many values
are refused by each of them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from github_sync.config import ENV_DATABASE_URL, ENV_GITHUB_OWNER, ConfigError, Settings
from github_sync.devtools.cli import main as cli_main
from github_sync.github.listings import ISSUES_LISTING, REPOSITORY_RESOURCE, TREE_RESOURCE
from github_sync.github.owners import (
    ALLOW_LIST_ENTRY_PATTERN,
    MAX_ALLOW_LIST,
    MAX_ALLOW_LIST_ENTRY_LENGTH,
    OWNER_PATTERN,
    REPOSITORY_PATTERN,
    OwnerError,
    check_allow_list,
    check_login,
    check_repository,
    is_github_login,
    resolve_owners,
)
from github_sync.orchestration.params import repository_params, sync_params

GOOD_LOGINS = ["a", "acme", "Acme-Corp", "a-b-c", "0x1", "a" * 39, "a-" * 19 + "a"]
BAD_LOGINS = [
    "acme\n",
    "",
    "-acme",
    "acme-",
    "a--b",
    "a_b",
    "a.b",
    "a" * 40,
    "a-" * 20 + "a",
    "ac me",
    "acme/x",
]
GOOD_REPOSITORIES = ["acme/api", "acme/.github", "acme/a.b_c-d", "acme/...", "a-b/" + "r" * 100]
BAD_REPOSITORIES = [
    "acme/..",
    "acme/.",
    "acme/",
    "acme/api\n",
    "acme/a/b",
    "acme/a b",
    "acme-/api",
    "acme/" + "r" * 101,
    "/api",
    "acme",
]


def _refused_by_param(param: Any, value: object) -> bool:
    from airflow.sdk.exceptions import ParamValidationError

    try:
        param.resolve(value)
    except ParamValidationError:
        return True
    return False


@pytest.mark.parametrize("login", GOOD_LOGINS)
def test_githubs_logins_are_accepted_everywhere(login: str) -> None:
    params = sync_params()
    assert is_github_login(login)
    assert not _refused_by_param(params["owner"], login)
    assert not _refused_by_param(params["owners"], [login])


@pytest.mark.parametrize("login", BAD_LOGINS)
def test_malformed_logins_are_refused_by_the_params_and_the_task(login: str) -> None:
    params = sync_params()
    assert _refused_by_param(params["owner"], login)
    assert _refused_by_param(params["owners"], [login])
    with pytest.raises(OwnerError, match=r"Param 'owner' must be a GitHub user"):
        resolve_owners(login or " ", None) if login else check_login(login, source="Param 'owner'")
    with pytest.raises(OwnerError, match=r"Param 'owners'\[1\] must be a GitHub user"):
        resolve_owners(None, ["acme", login])


def test_a_trailing_newline_never_reaches_an_owner_from_the_environment_or_the_cli(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GITHUB_OWNER is a comma-separated list whose parts are trimmed (an env file's or a
    # secret's trailing newline is whitespace, not part of a login): "acme\n" is "acme".
    assert Settings.from_env({ENV_GITHUB_OWNER: "acme\n"}).github_owners == ("acme",)
    # A newline inside a part is no login, and refused with the variable's name.
    with pytest.raises(ConfigError, match=rf"{ENV_GITHUB_OWNER}\[0\] must be a GitHub user"):
        Settings.from_env({ENV_GITHUB_OWNER: "ac\nme"})
    # The CLI takes --owner as given: the newline is refused, before anything connects.
    monkeypatch.setenv(ENV_DATABASE_URL, "postgresql://postgres@127.0.0.1:5432/unused")
    with pytest.raises(SystemExit) as exited:
        cli_main(["sync", "--owner", "acme\n"])
    assert "--owner must be a GitHub user or organisation login" in str(exited.value.code)


@pytest.mark.parametrize("repository", GOOD_REPOSITORIES)
def test_githubs_repository_names_are_accepted(repository: str) -> None:
    assert not _refused_by_param(repository_params()["repository"], repository)
    assert check_repository(repository, source="Param 'repository'") == tuple(repository.split("/"))


@pytest.mark.parametrize("repository", BAD_REPOSITORIES)
def test_malformed_repositories_are_refused_by_the_param_and_the_task(repository: str) -> None:
    assert _refused_by_param(repository_params()["repository"], repository)
    with pytest.raises(OwnerError, match="Param 'repository' must be 'owner/name'"):
        check_repository(repository, source="Param 'repository'")


@pytest.mark.parametrize(
    ("repos", "message"),
    [
        (["api", "acme/.."], r"Param 'repos'\[1\] must be a repository name"),
        (["api\n"], r"Param 'repos'\[0\] must be a repository name"),
        (
            ["api", "r" * (MAX_ALLOW_LIST_ENTRY_LENGTH + 1)],
            rf"Param 'repos'\[1\] .* at most {MAX_ALLOW_LIST_ENTRY_LENGTH}",
        ),
        (
            [f"r{i}" for i in range(MAX_ALLOW_LIST + 1)],
            rf"Param 'repos' lists {MAX_ALLOW_LIST + 1} .* at most {MAX_ALLOW_LIST}",
        ),
        (["api", 7], r"Param 'repos'\[1\] must be a repository name"),
        ("api", r"Param 'repos' must be a list"),
    ],
)
def test_the_allow_list_is_bounded_and_says_which_entry_is_wrong(repos: object, message: str) -> None:
    assert _refused_by_param(sync_params()["repos"], repos)
    with pytest.raises(OwnerError, match=message):
        check_allow_list(repos, source="Param 'repos'")


def test_the_longest_allowed_allow_list_passes() -> None:
    repos = [f"acme/{'r' * 95}{i:05d}" for i in range(MAX_ALLOW_LIST)]
    assert not _refused_by_param(sync_params()["repos"], repos)
    assert check_allow_list(repos, source="Param 'repos'") == repos
    assert check_allow_list(None, source="Param 'repos'") == []


def test_paths_are_built_from_percent_encoded_segments() -> None:
    assert REPOSITORY_RESOURCE.path_for("acme/api") == "/repos/acme/api"
    # Names from GitHub's own data are valid, but nothing may change the path whatever it is.
    for climbing in ("acme/..", "acme/.", "../api", "acme/"):
        with pytest.raises(ValueError, match="is not a path segment"):
            REPOSITORY_RESOURCE.path_for(climbing)
    assert ISSUES_LISTING.path_for("acme/a?b#c") == "/repos/acme/a%3Fb%23c/issues"
    assert (
        TREE_RESOURCE.path_for("acme/api", branch="feature/50%#1")
        == "/repos/acme/api/git/trees/feature/50%25%231"
    )


# One probe per pattern: the ECMAScript engine must agree with Python on every value.
_ECMASCRIPT_PROBE = """
const [patterns, values] = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = patterns.map(p => values.map(v => [new RegExp(p).test(v), new RegExp(p, "u").test(v)]));
process.stdout.write(JSON.stringify(out));
"""


def test_the_patterns_mean_the_same_in_ecmascript_as_in_python() -> None:
    import re

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the ECMAScript reading of the patterns cannot be checked here")
    patterns = [OWNER_PATTERN, REPOSITORY_PATTERN, ALLOW_LIST_ENTRY_PATTERN]
    values = GOOD_LOGINS + BAD_LOGINS + GOOD_REPOSITORIES + BAD_REPOSITORIES
    answer = subprocess.run(
        [node, "-e", _ECMASCRIPT_PROBE],
        input=json.dumps([patterns, values]),
        capture_output=True,
        text=True,
        check=True,
    )
    for pattern, results in zip(patterns, json.loads(answer.stdout), strict=True):
        for value, (plain, unicode) in zip(values, results, strict=True):
            # Python's re.search is what jsonschema (Airflow's Param validation) uses.
            python = re.search(pattern, value) is not None
            assert plain == unicode == python, (pattern, value, plain, unicode, python)
