"""The package's layering, checked from the source: who may import whom.

Dependencies point one way: DAG files -> orchestration -> sync / webhooks -> github /
transform / store -> config. The status plugin reads the store; the simulator shares
nothing with the product. A violation names the module and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "plugins" / "github_sync"
SIMULATOR = ROOT / "simulator" / "github_sim"

# subpackage -> the github_sync subpackages it must never import
FORBIDDEN: dict[str, set[str]] = {
    "config": {"github", "transform", "store", "sync", "webhooks", "orchestration", "status", "devtools"},
    "transform": {"github", "store", "sync", "webhooks", "orchestration", "status", "devtools"},
    "github": {"transform", "store", "sync", "webhooks", "orchestration", "status", "devtools"},
    "store": {"sync", "webhooks", "orchestration", "status", "devtools"},
    "sync": {"webhooks", "orchestration", "status", "devtools"},
    "webhooks": {"orchestration", "status", "devtools"},
    "status": {"sync", "webhooks", "orchestration", "devtools"},
    "orchestration": {"devtools"},
}
# The one exception: config.py validates GITHUB_OWNER with GitHub's login rule, which lives in
# github/owners.py (standard library only) so that there is one rule.
ALLOWED: dict[str, set[str]] = {"config": {"github.owners"}}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from github_sync.store import loader` imports github_sync.store.loader
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def subpackage_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py") if len(relative.parts) > 1 else relative.stem


def package_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(path: Path) -> None:
    forbidden = FORBIDDEN.get(subpackage_of(path), set())
    wrong = sorted(
        name
        for name in imported_modules(path)
        if name.startswith("github_sync.")
        and name.split(".")[1] in forbidden
        and ".".join(name.split(".")[1:3]) not in ALLOWED.get(subpackage_of(path), set())
    )
    assert wrong == [], f"{path.relative_to(ROOT)} imports a higher layer: {wrong}"


@pytest.mark.parametrize("path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_product_does_not_import_the_simulator(path: Path) -> None:
    assert not any(name.split(".")[0] == "github_sim" for name in imported_modules(path)), path


@pytest.mark.parametrize("path", sorted(SIMULATOR.rglob("*.py")), ids=lambda p: p.name)
def test_the_simulator_does_not_import_the_product(path: Path) -> None:
    # The simulator follows GitHub's documentation; sharing code with the product would let
    # one mistake hide in both.
    assert not any(name.split(".")[0] == "github_sync" for name in imported_modules(path)), path


@pytest.mark.parametrize("path", sorted((ROOT / "dags").glob("*.py")), ids=lambda p: p.name)
def test_dag_files_import_only_the_integration_package(path: Path) -> None:
    ours = {name for name in imported_modules(path) if name.split(".")[0] == "github_sync"}
    wrong = sorted(name for name in ours if not name.startswith("github_sync.orchestration"))
    assert wrong == [], f"{path.name} imports {wrong}"


def test_the_plugins_folder_holds_only_the_product() -> None:
    assert sorted(p.name for p in (ROOT / "plugins").iterdir() if not p.name.startswith(".")) == [
        "github_sync",
        "github_sync_plugin.py",
    ]
    assert not list((ROOT / "plugins").rglob("github_sim"))


@pytest.mark.parametrize(
    "path",
    [*package_modules(), *sorted(SIMULATOR.rglob("*.py"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_module_says_what_it_owns(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring, f"{path.relative_to(ROOT)} has no opening docstring"
