"""Group a run's repositories into shards: a bounded number of mapped tasks, balanced by cost.

Airflow refuses a mapped list longer than ``[core] max_map_length`` (1,024) and spends about
0.3 s of scheduling per mapped task, so 10,000 repositories cannot be 10,000 tasks. A run
with few targets keeps one task per repository (named after it in the UI, as a run of a few
changed repositories or ``github_repo_sync`` should be); a larger one is split into
``SHARDS_PER_POOL_SLOT`` shards per slot of the GitHub pool (so a slow shard does not hold
the run's tail alone), more when a shard would exceed ``MAX_REPOSITORIES_PER_SHARD``, and
never more than Airflow maps. Repositories are dealt largest-first to the lightest shard by
their estimated requests (longest-processing-time first), so shards finish close together.

This module owns only the plan (pure: targets in, shards out). A shard's task syncs its
repositories with bounded concurrency, one transaction each
(:class:`github_sync.orchestration.operators.SyncRepositoryOperator`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from github_sync.sync.targets import RepositoryTarget

__all__ = [
    "MAX_REPOSITORIES_PER_SHARD",
    "SHARDS_PER_POOL_SLOT",
    "Shard",
    "plan_shards",
    "shard_count",
]

# Shards per GitHub pool slot: enough that the slots stay busy while the last shards finish.
SHARDS_PER_POOL_SLOT = 4
# A shard holds at most this many repositories (more shards are planned instead), so that a
# retry or a deferral of one shard redoes little and the UI's per-task view stays readable.
MAX_REPOSITORIES_PER_SHARD = 250


@dataclass(frozen=True)
class Shard:
    """The repositories one mapped task syncs, and its name in the UI.

    Attributes:
        label: the repository's ``owner/name`` for a one-repository shard, else
            ``shard i/n: k repositories``.
        repositories: the targets, heaviest first.
    """

    label: str
    repositories: tuple[RepositoryTarget, ...]

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> Shard:
        """Read the mapped task's input (raises ``ValueError`` naming what is missing)."""
        try:
            label = str(value["label"])
            repositories = tuple(RepositoryTarget.from_mapping(item) for item in value["repositories"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a shard (need label and repositories): {value!r}") from exc
        if not repositories:
            raise ValueError(f"shard {label!r} holds no repository")
        return cls(label=label, repositories=repositories)

    def to_mapping(self) -> dict[str, Any]:
        """The mapped task's input: small, JSON-able (it travels through XCom)."""
        return {"label": self.label, "repositories": [target.to_mapping() for target in self.repositories]}


def shard_count(repositories: int, *, pool_slots: int, max_tasks: int) -> int:
    """How many mapped tasks a run of ``repositories`` gets (one per repository while few).

    Args:
        repositories: the run's targets.
        pool_slots: slots of the GitHub pool (tasks that run at once).
        max_tasks: Airflow's ``[core] max_map_length``.

    Raises:
        ValueError: a bound is below 1.
    """
    if pool_slots < 1 or max_tasks < 1:
        raise ValueError(f"pool_slots and max_tasks must be at least 1, got {pool_slots} and {max_tasks}")
    if repositories <= 0:
        return 0
    wanted = max(pool_slots * SHARDS_PER_POOL_SLOT, math.ceil(repositories / MAX_REPOSITORIES_PER_SHARD))
    return min(repositories, wanted, max_tasks)


def plan_shards(targets: Sequence[RepositoryTarget], *, pool_slots: int, max_tasks: int) -> list[Shard]:
    """Split ``targets`` into :func:`shard_count` shards of about equal estimated requests.

    One-repository shards keep the repositories' order; larger ones are listed in the order
    they were filled. The result is deterministic for the same targets.
    """
    count = shard_count(len(targets), pool_slots=pool_slots, max_tasks=max_tasks)
    if count == len(targets):
        return [Shard(label=target.full_name, repositories=(target,)) for target in targets]
    # Heaviest first, ties by name so that the plan does not depend on the listing's order.
    ordered = sorted(targets, key=lambda target: (-target.estimated_requests, target.full_name))
    loads: list[tuple[int, int]] = [(0, index) for index in range(count)]
    members: list[list[RepositoryTarget]] = [[] for _ in range(count)]
    for target in ordered:
        load, index = heapq.heappop(loads)
        members[index].append(target)
        heapq.heappush(loads, (load + max(1, target.estimated_requests), index))
    return [
        Shard(
            # A shard of one is named after its repository, as a task of its own would be.
            label=group[0].full_name
            if len(group) == 1
            else f"shard {index + 1}/{count}: {len(group)} repositories",
            repositories=tuple(group),
        )
        for index, group in enumerate(members)
    ]
