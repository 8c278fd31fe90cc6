"""github-sync: keep a PostgreSQL copy of a GitHub organisation fresh with Apache Airflow 3.

The package's version and its public names. The names are imported lazily so that light
entry points (the simulator, the relay, ``python -c "import github_sync"``) do not pay for
importing Airflow; this module must not import any subpackage eagerly.

Layers, each importing only those after it: ``orchestration`` (Airflow) -> ``sync`` /
``webhooks`` -> ``github`` / ``transform`` / ``store`` -> ``config``. ``status`` is the
plugin's dashboard, ``devtools`` the command-line tools.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "GitHubHook": "github_sync.github.hook",
    "RateLimit": "github_sync.github.ratelimit",
    "normalize_repository": "github_sync.transform.normalizer",
    "normalize_issue": "github_sync.transform.normalizer",
    "normalize_pull_request": "github_sync.transform.normalizer",
    "normalize_commit": "github_sync.transform.normalizer",
    "priority_score": "github_sync.transform.scoring",
    "priority_base": "github_sync.transform.scoring",
    "health_score": "github_sync.transform.scoring",
    "project_metrics": "github_sync.transform.metrics",
    "apply_migrations": "github_sync.store.migrations",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'github_sync' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)
