"""The Events API feed: what ``GET /orgs/{org}/events`` and ``GET /repos/{owner}/{repo}/events`` list.

Owns the recorded events (newest last), their ids and how a mutation's webhook becomes an
Events API entry (``issues`` -> ``IssuesEvent``...). It must not render JSON or decide who
may see an event (the API does), and it is guarded by the state's lock, not one of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from github_sim.records import Repo, User

# GitHub keeps the last 300 public events per feed (documented on the events API).
MAX_EVENTS = 300
# Kept beyond one feed's 300: a repository's feed is a subset of the organisation's.
KEPT_EVENTS = MAX_EVENTS * 4
FIRST_EVENT_ID = 40_000_000_000
# The webhook events that also appear in the Events API, under their Events API type.
EVENT_TYPES = {"issues": "IssuesEvent", "pull_request": "PullRequestEvent", "push": "PushEvent"}
NO_COMMIT = "0" * 40


@dataclass(frozen=True, slots=True)
class Event:
    """One Events API entry."""

    id: int
    repo_id: int
    type: str
    actor: User
    payload: dict[str, Any]
    created_at: datetime


class EventFeed:
    """The events of the organisation, oldest first."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._last_id = FIRST_EVENT_ID

    def __len__(self) -> int:
        return len(self._events)

    def newest_first(self) -> Iterator[Event]:
        """Every kept event, newest first."""
        return reversed(self._events)

    def record_webhook(
        self, event: str, payload: dict[str, Any], repo: Repo | None, actor: User, when: datetime
    ) -> None:
        """Add the Events API entry of a mutation's webhook (``event``, ``payload``), if it has one."""
        type_name = EVENT_TYPES.get(event)
        if type_name is None or repo is None:
            return
        if event == "push":
            body: dict[str, Any] = {
                "repository_id": repo.id,
                "push_id": self._last_id,
                "ref": payload["ref"],
                "head": payload["after"],
                "before": payload["before"],
            }
        elif event == "issues":
            body = {"action": payload["action"], "issue": payload["issue"]}
        else:
            body = {
                "action": payload["action"],
                "number": payload["number"],
                "pull_request": payload["pull_request"],
            }
        self._add(type_name, body, repo, actor, when)

    def seed_pushes(self, repos: Iterable[Repo], fallback_actor: User) -> None:
        """One push event per repository's latest push, oldest first, so the feeds are not empty."""
        pushes = sorted((r for r in repos if r.commits), key=lambda r: r.pushed_at)
        for r in pushes[-MAX_EVENTS:]:
            head = r.commits[0]
            body = {
                "repository_id": r.id,
                "push_id": self._last_id,
                "ref": f"refs/heads/{r.default_branch}",
                "head": head.sha,
                "before": head.parent or NO_COMMIT,
            }
            self._add("PushEvent", body, r, head.author or fallback_actor, head.date)

    def _add(self, type_name: str, payload: dict[str, Any], repo: Repo, actor: User, when: datetime) -> None:
        self._last_id += 1
        self._events.append(Event(self._last_id, repo.id, type_name, actor, payload, when))
        if len(self._events) > KEPT_EVENTS:
            del self._events[: len(self._events) - KEPT_EVENTS]
