"""What a repository sync is given: which repository (:class:`RepositoryTarget`) and how (:class:`SyncOptions`).

Owns the shape of the mapped task's input (it travels through XCom as a small mapping) and the
run-level options, with the default commit window. Discovery and change detection produce
targets, :func:`github_sync.sync.repository.sync_repository` consumes them. It must not do any
work itself (no I/O).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from github_sync.transform.labels import LabelRules

__all__ = ["DEFAULT_COMMITS_SINCE_DAYS", "RepositoryTarget", "SyncOptions"]

# Days of commit history a sync keeps unless a run says otherwise.
DEFAULT_COMMITS_SINCE_DAYS = 90


@dataclass(frozen=True)
class RepositoryTarget:
    """The repository a task syncs: the mapped task's (small) input."""

    full_name: str
    project_id: int
    default_branch: str | None = None
    # Read the whole issue listing even in an incremental run (reconciliation found ids
    # that differ from what is stored: deletions or transfers the cursor cannot see).
    reconcile: bool = False
    # What discovery expects its sync to cost (it balances shards); 0 when unknown.
    estimated_requests: int = 0

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> RepositoryTarget:
        try:
            return cls(
                full_name=str(value["full_name"]),
                project_id=int(value["project_id"]),
                default_branch=value.get("default_branch"),
                reconcile=bool(value.get("reconcile", False)),
                estimated_requests=int(value.get("estimated_requests") or 0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a repository target (need full_name and project_id): {value!r}") from exc

    def to_mapping(self) -> dict[str, Any]:
        return {
            "full_name": self.full_name,
            "project_id": self.project_id,
            "default_branch": self.default_branch,
            "reconcile": self.reconcile,
            "estimated_requests": self.estimated_requests,
        }


@dataclass(frozen=True)
class SyncOptions:
    """How a repository is synced.

    Attributes:
        as_of: the DAG run's time; every derived field (ages, health, metrics date) uses it.
        commits_since: start of the commit window kept in ``commits``.
        rules: label rules (validated before the run writes anything).
        incremental: read only what changed since the stored cursors.
    """

    as_of: datetime
    commits_since: datetime
    rules: LabelRules
    incremental: bool = False
