"""The shard plan: bounded mapped tasks, one per repository while few, balanced by estimated requests."""

from __future__ import annotations

import pytest

from github_sync.sync.shards import (
    MAX_REPOSITORIES_PER_SHARD,
    SHARDS_PER_POOL_SLOT,
    Shard,
    plan_shards,
    shard_count,
)
from github_sync.sync.targets import RepositoryTarget


def targets(n: int, weight: int = 4) -> list[RepositoryTarget]:
    return [RepositoryTarget(f"acme/r{i:05d}", project_id=i + 1, estimated_requests=weight) for i in range(n)]


@pytest.mark.parametrize(
    ("repositories", "pool_slots", "max_tasks", "expected"),
    [
        (0, 8, 1024, 0),
        (1, 8, 1024, 1),  # github_repo_sync, one changed repository: a task of its own
        (32, 8, 1024, 32),  # up to SHARDS_PER_POOL_SLOT per slot: still one per repository
        (180, 8, 1024, 8 * SHARDS_PER_POOL_SLOT),
        (10_000, 8, 1024, 10_000 // MAX_REPOSITORIES_PER_SHARD),
        (100_000, 8, 1024, 400),
        (1_000_000, 8, 1024, 1024),  # never more than Airflow maps
        (30, 2, 4, 4),
    ],
)
def test_shard_count(repositories: int, pool_slots: int, max_tasks: int, expected: int) -> None:
    assert shard_count(repositories, pool_slots=pool_slots, max_tasks=max_tasks) == expected


def test_bounds_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        shard_count(5, pool_slots=0, max_tasks=10)


def test_few_targets_keep_one_task_each_named_after_the_repository_in_order() -> None:
    plan = plan_shards(targets(3), pool_slots=8, max_tasks=1024)
    assert [(s.label, [t.full_name for t in s.repositories]) for s in plan] == [
        ("acme/r00000", ["acme/r00000"]),
        ("acme/r00001", ["acme/r00001"]),
        ("acme/r00002", ["acme/r00002"]),
    ]


def test_every_repository_lands_in_exactly_one_shard_and_the_shards_are_balanced() -> None:
    repos = targets(10_000)
    plan = plan_shards(repos, pool_slots=8, max_tasks=1024)
    assert len(plan) == 40
    names = [t.full_name for s in plan for t in s.repositories]
    assert sorted(names) == sorted(t.full_name for t in repos)
    sizes = {len(s.repositories) for s in plan}
    assert sizes == {250}
    assert plan[0].label == "shard 1/40: 250 repositories"


def test_a_heavy_repository_gets_a_light_shard_of_its_own() -> None:
    repos = [*targets(99), RepositoryTarget("acme/monorepo", project_id=1000, estimated_requests=400)]
    plan = plan_shards(repos, pool_slots=1, max_tasks=4)
    loads = sorted(sum(t.estimated_requests for t in s.repositories) for s in plan)
    heavy = next(s for s in plan if any(t.full_name == "acme/monorepo" for t in s.repositories))
    assert [t.full_name for t in heavy.repositories] == ["acme/monorepo"]
    assert loads[-1] == 400 and loads[0] >= 4 * 33  # the other 99 spread over three shards


def test_the_plan_does_not_depend_on_the_listing_order() -> None:
    repos = targets(500)
    assert plan_shards(repos, pool_slots=2, max_tasks=16) == plan_shards(
        repos[::-1], pool_slots=2, max_tasks=16
    )


def test_a_shard_survives_xcom_and_a_bad_one_is_refused_with_what_is_missing() -> None:
    shard = plan_shards(targets(100), pool_slots=1, max_tasks=2)[0]
    assert Shard.from_mapping(shard.to_mapping()) == shard
    with pytest.raises(ValueError, match="need label and repositories"):
        Shard.from_mapping({"repositories": []})
    with pytest.raises(ValueError, match="holds no repository"):
        Shard.from_mapping({"label": "x", "repositories": []})
