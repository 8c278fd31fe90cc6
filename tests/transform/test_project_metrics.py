"""project_metrics: tech stack, CI and test detection, and the lines-of-code estimate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from github_sync.transform.metrics import (
    BYTES_PER_LINE,
    estimate_lines_of_code,
    has_ci,
    has_tests,
    project_metrics,
    tech_stack,
)

AS_OF = datetime(2024, 6, 30, tzinfo=UTC)


def tree(*paths: str | tuple[str, int], truncated: bool = False) -> dict:
    """A git tree response; a path ending in / is a folder, a (path, size) tuple a sized blob."""
    entries = []
    for item in paths:
        path, size = item if isinstance(item, tuple) else (item, 100)
        if path.endswith("/"):
            entries.append({"path": path.rstrip("/"), "type": "tree", "mode": "040000", "sha": "0" * 40})
        else:
            entries.append({"path": path, "type": "blob", "mode": "100644", "size": size, "sha": "0" * 40})
    return {"sha": "f" * 40, "tree": entries, "truncated": truncated}


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["package.json"], ["Node.js"]),
        (["pyproject.toml"], ["Python"]),
        (["requirements.txt"], ["Python"]),
        (["setup.py"], ["Python"]),
        (["go.mod"], ["Go"]),
        (["Cargo.toml"], ["Rust"]),
        (["pom.xml"], ["Java"]),
        (["build.gradle"], ["Java"]),
        (["Gemfile"], ["Ruby"]),
        (["Dockerfile"], ["Docker"]),
        (["deploy/Dockerfile.prod"], ["Docker"]),
        (["composer.json"], ["PHP"]),
        (["src/App/App.csproj"], [".NET"]),
        (["infra/main.tf"], ["Terraform"]),
        (["web/package.json", "api/go.mod", "Dockerfile", "README.md"], ["Docker", "Go", "Node.js"]),
        (["node_modules/left-pad/package.json", "vendor/x/go.mod"], []),  # vendored manifests do not count
        (["README.md", "docs/package.json.md"], []),
        (["package.json", "other/package.json"], ["Node.js"]),  # unique
    ],
)
def test_tech_stack_from_manifests(paths: list[str], expected: list[str]) -> None:
    assert tech_stack(tree(*paths), None) == expected


def test_tech_stack_merges_languages_and_aliases() -> None:
    stack = tech_stack(
        tree("package.json", "Dockerfile"), {"TypeScript": 5000, "Dockerfile": 90, "Shell": 10}
    )
    assert stack == ["Docker", "Node.js", "Shell", "TypeScript"]
    assert tech_stack(None, None, "Go") == ["Go"]
    assert tech_stack(None, None) == []


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ([".github/workflows/ci.yml"], True),
        ([".github/workflows/release.yaml"], True),
        ([".github/workflows/README.md"], False),
        ([".github/workflows/sub/ci.yml"], False),  # GitHub ignores subfolders of workflows/
        ([".github/dependabot.yml"], False),
        ([".gitlab-ci.yml"], True),
        ([".circleci/config.yml"], True),
        ([".circleci/"], True),
        (["Jenkinsfile"], True),
        ([".travis.yml"], True),
        (["azure-pipelines.yml"], True),
        (["docs/Jenkinsfile"], False),  # CI services read their file at the root
        (["src/main.py"], False),
    ],
)
def test_has_ci(paths: list[str], expected: bool) -> None:
    assert has_ci(tree(*paths)) is expected


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["tests/test_app.py"], True),
        (["tests/"], True),
        (["test/helper.js"], True),
        (["src/components/__tests__/Button.tsx"], True),
        (["spec/models/user_spec.rb"], True),
        (["pkg/app/app_test.go"], True),
        (["src/test_utils.py"], True),
        (["src/app.spec.ts"], True),
        (["src/app.test.js"], True),
        (["src/main/java/FooTest.java"], True),
        (["node_modules/lodash/test/index.js"], False),  # vendored tests are someone else's
        (["src/contest.py", "src/latest.go"], False),
        (["README.md", "src/app.py"], False),
    ],
)
def test_has_tests(paths: list[str], expected: bool) -> None:
    assert has_tests(tree(*paths)) is expected


def test_no_tree_means_no_ci_no_tests() -> None:
    assert has_ci(None) is False and has_tests(None) is False


def test_lines_of_code_from_source_blobs_only() -> None:
    t = tree(
        ("src/app.py", 3500),
        ("src/lib.ts", 7000),
        ("README.md", 99_999),  # docs
        ("data/big.json", 10**7),  # data
        ("package-lock.json", 10**6),  # lock file
        ("static/app.min.js", 10**6),  # minified
        ("node_modules/react/index.js", 10**6),  # vendored
        ("dist/bundle.js", 10**6),  # build output
        ("api/service_pb2.py", 10**6),  # generated
        ("src/"),
    )
    assert estimate_lines_of_code(t, None) == (3500 + 7000) // BYTES_PER_LINE == 300


def test_lines_of_code_sources() -> None:
    languages = {"Python": 35_000, "C": 70_000}
    complete = tree(("a.py", 350))
    truncated = tree(("a.py", 350), truncated=True)
    assert estimate_lines_of_code(complete, languages) == 10  # a complete tree wins
    assert estimate_lines_of_code(truncated, languages) == 3000  # truncated: languages cover everything
    assert estimate_lines_of_code(truncated, None) == 10  # truncated, nothing better: a lower bound
    assert estimate_lines_of_code(None, languages) == 3000
    assert estimate_lines_of_code(None, None) == 0


@pytest.mark.parametrize(
    "repo",
    [
        {"github_id": 1, "last_commit": AS_OF - timedelta(days=2), "stars": 500, "language": "Python"},
        {"last_commit": AS_OF - timedelta(days=2), "stars": 500},  # a row read back, without ids
        {"id": 1, "pushed_at": "2024-06-28T00:00:00Z", "stargazers_count": 500, "language": "Python"},
    ],
    ids=["projects-row", "db-row", "github-repo"],
)
def test_project_metrics_row(repo: dict) -> None:
    row = project_metrics(
        repo_row_or_repo=repo,
        tree=tree(
            ("pyproject.toml", 500), ("src/app.py", 7000), "tests/test_app.py", ".github/workflows/ci.yml"
        ),
        languages=None,
        commits_count=42,
        contributors=3,
        open_issues=7,
        as_of=AS_OF,
    )
    assert row == {
        "commits_count": 42,
        "contributors": 3,
        "lines_of_code": round((7000 + 100) / 35),
        "tech_stack": ["Python"],
        # 50 + recent commit 20 + stars 10 + CI 10 + tests 10 (7 open issues, 3 contributors: nothing)
        "health_score": 100,
        "open_issues": 7,
        "has_ci": True,
        "has_tests": True,
    }
