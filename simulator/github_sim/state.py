"""The mutable simulated organisation: lookups for the API and mutations for tests.

Owns the records after generation, the one lock that guards them, GitHub's side effects of each
mutation (``updated_at``/``pushed_at`` stamped from the simulator clock, so bodies and therefore
ETags change; the repository's render caches invalidated; webhook payloads emitted and recorded
in the Events API feed of :mod:`github_sim.events`) and the public back door for tests that edit
records in place (:meth:`SimState.editing_repository`, :meth:`SimState.touch_repository`). It
must not speak HTTP or render responses itself (the renderer does, the API routes do).

One piece (>300 lines) because every mutation does all of those steps under one lock: split
over modules, a mutation could change a record without invalidating its cached body or emitting
its webhook, and the simulator would then disagree with itself.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import random
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from github_sim.clock import SimClock
from github_sim.dataset import (
    issue_id,
    make_tree,
    next_label_id,
    pull_request_id,
    repository_id,
    sha1_hex,
)
from github_sim.events import EventFeed
from github_sim.records import Commit, DataSet, Issue, Label, Repo, User
from github_sim.render import Renderer, iso
from github_sim.vocabulary import LABELS

log = logging.getLogger(__name__)

DEFAULT_LABEL_COLOR = "ededed"

Listener = Callable[[str, dict[str, Any]], None]


class NotFoundError(LookupError):
    """A mutation named a repository or issue that does not exist."""


class SimState:
    """Thread-safe store of the data set plus GitHub-like mutations."""

    def __init__(self, data: DataSet, clock: SimClock, renderer: Renderer, seed: int) -> None:
        """Wrap a generated data set.

        Args:
            data: the generated organisation.
            clock: simulator clock stamped on every mutation.
            renderer: renders the payloads that mutations return and emit.
            seed: data-set seed (for trees of repositories that get their first push).
        """
        self.lock = threading.RLock()
        self.data = data
        self.clock = clock
        self.renderer = renderer
        self._seed = seed
        self._by_name: dict[str, Repo] = {r.name.lower(): r for r in data.repos}
        self._by_id: dict[int, Repo] = {r.id: r for r in data.repos}
        self._renamed: dict[str, int] = {}  # old lower-case name -> repository id
        # What GET of a vanished issue number answers (410 deleted, 301 transferred):
        # https://docs.github.com/en/rest/issues/issues#get-an-issue. Only the numbers are kept,
        # per repository id: deleted numbers, and transferred number -> (target repository id, number).
        self._deleted_issues: dict[int, set[int]] = {}
        self._transferred_issues: dict[int, dict[int, tuple[int, int]]] = {}
        self._users: dict[str, User] = {u.login.lower(): u for u in [*data.users, data.bot]}
        self.listeners: list[Listener] = []
        # Bumped with every repository's version and when repositories come or go: listings
        # across repositories cache their order per state version.
        self.version = 0
        self.events = EventFeed()
        self.events.seed_pushes(data.repos, data.users[0])

    # -- lookups used by the HTTP layer ----------------------------------------------------------
    @property
    def owner(self) -> User:
        """The account owning every repository."""
        return self.data.owner

    def repos(self) -> list[Repo]:
        """Every repository that has not been deleted."""
        return [r for r in self.data.repos if not r.deleted]

    def repo(self, name: str) -> Repo | None:
        """Return the live repository called ``name`` (case-insensitive)."""
        return self._by_name.get(name.lower())

    def repo_by_id(self, repo_id: int) -> Repo | None:
        """Return the live repository with ``repo_id``."""
        r = self._by_id.get(repo_id)
        return None if r is None or r.deleted else r

    def renamed_to(self, old_name: str) -> Repo | None:
        """Return the live repository formerly called ``old_name``, if any."""
        repo_id = self._renamed.get(old_name.lower())
        return None if repo_id is None else self.repo_by_id(repo_id)

    def issue_deleted(self, repo: Repo, number: int) -> bool:
        """True when issue ``number`` of ``repo`` was deleted (GET answers 410 Gone)."""
        return number in self._deleted_issues.get(repo.id, ())

    def issue_transferred_to(self, repo: Repo, number: int) -> tuple[Repo, int] | None:
        """(live target repository, new number) of issue ``number`` transferred out of ``repo``."""
        target = self._transferred_issues.get(repo.id, {}).get(number)
        if target is None:
            return None
        dst = self.repo_by_id(target[0])
        return None if dst is None else (dst, target[1])

    def user(self, login: str) -> User | None:
        """Return the account called ``login`` (the owner included)."""
        if login.lower() == self.owner.login.lower():
            return self.owner
        return self._users.get(login.lower())

    def user_for_token(self, token: str) -> User:
        """Return the account a token belongs to (stable for a token)."""
        users = self.data.users
        return users[int(sha1_hex("token", token)[:8], 16) % len(users)]

    # -- direct edits (tests) --------------------------------------------------------------------
    @contextlib.contextmanager
    def editing_repository(self, repo: str) -> Iterator[Repo]:
        """Hold the lock while the caller edits the records of repository ``repo`` in place.

        For states no mutation produces (a pull request merged without a new ``updated_at``,
        commits dated before the last sync): the caller changes the yielded :class:`Repo` (or its
        issues and commits) directly; on leaving, the repository is touched
        (:meth:`touch_repository`) so the API serves the edited records. Timestamps are left as
        the caller set them and no webhook or event is emitted: GitHub would not announce such a
        change either.
        """
        with self.lock:
            r = self._need_repo(repo)
            try:
                yield r
            finally:
                self._touch(r)

    def touch_repository(self, repo: str) -> None:
        """Make the API serve the current records of repository ``repo`` after they were edited in place.

        Rendered bodies are cached per repository version; every mutation bumps it, an in-place
        edit does not. Not offered over ``/_sim/state/``: a caller in another process cannot edit
        records in place, so there is nothing for it to touch.
        """
        with self.lock:
            self._touch(self._need_repo(repo))

    # -- helpers ---------------------------------------------------------------------------------
    def _need_repo(self, name: str) -> Repo:
        r = self.repo(name)
        if r is None:
            raise NotFoundError(f"repository {name!r} not found")
        return r

    def _need_issue(self, repo: Repo, number: int) -> Issue:
        issue = repo.issues.get(int(number))
        if issue is None:
            raise NotFoundError(f"issue #{number} not found in {repo.name}")
        return issue

    def _now(self) -> datetime:
        return self.clock.now().replace(microsecond=0)

    def _touch(self, repo: Repo) -> None:
        # The render caches are keyed by the version: a new version is a cache miss.
        repo.version += 1
        self.version += 1

    def _labels(self, repo: Repo, names: list[str]) -> list[Label]:
        # GitHub creates a missing label when it is applied to an issue.
        out: list[Label] = []
        known = {name: (color, desc) for name, color, desc, _ in LABELS}
        for name in names:
            label = repo.labels.get(name)
            if label is None:
                color, desc = known.get(name, (DEFAULT_LABEL_COLOR, ""))
                label = Label(next_label_id(repo), name, color, desc, False)
                repo.labels[name] = label
            if label not in out:
                out.append(label)
        return out

    def _assignees(self, logins: list[str]) -> list[User]:
        return [u for u in (self._users.get(login.lower()) for login in logins) if u is not None]

    def _emit(self, event: str, payload: dict[str, Any], repo: Repo | None, actor: User) -> None:
        # Caller holds the lock; listeners must not block (the webhook emitter queues).
        self.events.record_webhook(event, payload, repo, actor, self._now())
        for listener in list(self.listeners):
            try:
                listener(event, payload)
            except Exception:  # a broken listener must not break the mutation
                log.exception("state listener failed for %s", event)

    def _repo_payload(self, repo: Repo) -> dict[str, Any]:
        return copy.deepcopy(self.renderer.repository(repo))  # callers may mutate; the render cache is shared

    def _base_payload(self, repo: Repo, actor: User) -> dict[str, Any]:
        out: dict[str, Any] = {
            "repository": self._repo_payload(repo),
            "sender": self.renderer.simple_user(actor),
        }
        if self.owner.type == "Organization":
            out["organization"] = self.renderer.simple_user(self.owner)
        return out

    def _issue_event(self, action: str, repo: Repo, issue: Issue, actor: User, **extra: Any) -> None:
        if issue.is_pr:
            payload = {
                "action": action,
                "number": issue.number,
                "pull_request": self._pr_webhook(repo, issue),
            }
            payload.update(extra)
            payload.update(self._base_payload(repo, actor))
            self._emit("pull_request", payload, repo, actor)
        else:
            payload = {"action": action, "issue": self.renderer.issue(repo, issue)}
            payload.update(extra)
            payload.update(self._base_payload(repo, actor))
            self._emit("issues", payload, repo, actor)

    def _pr_webhook(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        pr = self.renderer.pull_request(repo, issue)
        pr.update(
            {
                "merged": issue.merged_at is not None,
                "commits": 1,
                "additions": 10,
                "deletions": 2,
                "changed_files": 1,
            }
        )
        return pr

    # -- issue mutations -------------------------------------------------------------------------
    def create_issue(
        self,
        repo: str,
        title: str,
        body: str | None = None,
        labels: list[str] | None = None,
        assignees: list[str] | None = None,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Open a new issue and return its API representation."""
        with self.lock:
            r = self._need_repo(repo)
            issue = self._open(r, title, body, user, labels, assignees=self._assignees(assignees or []))
            return copy.deepcopy(
                self.renderer.issue(r, issue)
            )  # callers may mutate; the render cache is shared

    def _open(
        self, r: Repo, title: str, body: str | None, user: str | None, labels: list[str] | None, **fields: Any
    ) -> Issue:
        """Create the next-numbered issue or PR (``fields``) in ``r``, as GitHub numbers both."""
        now = self._now()
        number = r.next_number
        r.next_number += 1
        author = (self.user(user) if user else None) or self.data.users[0]
        extra = {key: value(number, now) if callable(value) else value for key, value in fields.items()}
        issue = Issue(
            id=issue_id(r, number),
            number=number,
            title=title,
            body=body,
            user=author,
            state="open",
            created_at=now,
            updated_at=now,
            labels=self._labels(r, labels or []),
            **extra,
        )
        r.issues[number] = issue
        self._touch(r)
        self._issue_event("opened", r, issue, author)
        return issue

    def edit_issue(self, repo: str, number: int, **fields: Any) -> dict[str, Any]:
        """Change ``title``, ``body``, ``state``, ``state_reason``, ``labels`` or ``assignees``."""
        with self.lock:
            r = self._need_repo(repo)
            issue = self._need_issue(r, number)
            now = self._now()
            changes: dict[str, Any] = {}
            for key, value in fields.items():
                if key in ("title", "body"):
                    changes[key] = {"from": getattr(issue, key)}
                    setattr(issue, key, value)
                elif key == "labels":
                    issue.labels = self._labels(r, list(value))
                elif key == "assignees":
                    issue.assignees = self._assignees(list(value))
                elif key == "state":
                    self._set_state(issue, value, fields.get("state_reason"), now)
                elif key == "state_reason":
                    continue
                else:
                    raise ValueError(f"cannot edit issue field {key!r}")
            issue.updated_at = now
            self._touch(r)
            self._issue_event("edited", r, issue, issue.user, changes=changes)
            return copy.deepcopy(
                self.renderer.issue(r, issue)
            )  # callers may mutate; the render cache is shared

    @staticmethod
    def _set_state(issue: Issue, state: str, reason: str | None, now: datetime) -> None:
        if state == "closed" and issue.state != "closed":
            issue.state, issue.closed_at = "closed", now
            issue.state_reason = None if issue.is_pr else (reason or "completed")
        elif state == "open" and issue.state != "open":
            issue.state, issue.closed_at = "open", None
            issue.state_reason = None if issue.is_pr else "reopened"

    def close_issue(self, repo: str, number: int) -> dict[str, Any]:
        """Close an issue (or a PR without merging it)."""
        return self._change_state(repo, number, "closed", "closed")

    def reopen_issue(self, repo: str, number: int) -> dict[str, Any]:
        """Reopen a closed issue or unmerged PR."""
        return self._change_state(repo, number, "open", "reopened")

    def _change_state(self, repo: str, number: int, state: str, action: str) -> dict[str, Any]:
        with self.lock:
            r = self._need_repo(repo)
            issue = self._need_issue(r, number)
            if issue.merged_at is not None:
                raise ValueError("a merged pull request cannot change state")
            now = self._now()
            self._set_state(issue, state, None, now)
            issue.updated_at = now
            self._touch(r)
            self._issue_event(action, r, issue, issue.user)
            return copy.deepcopy(
                self.renderer.issue(r, issue)
            )  # callers may mutate; the render cache is shared

    def label_issue(self, repo: str, number: int, labels: list[str]) -> dict[str, Any]:
        """Add labels to an issue (creating missing labels, as GitHub does)."""
        with self.lock:
            r = self._need_repo(repo)
            issue = self._need_issue(r, number)
            added = [lab for lab in self._labels(r, list(labels)) if lab not in issue.labels]
            issue.labels = issue.labels + added
            issue.updated_at = self._now()
            self._touch(r)
            for lab in added:
                self._issue_event("labeled", r, issue, issue.user, label=self.renderer.label(r, lab))
            return copy.deepcopy(
                self.renderer.issue(r, issue)
            )  # callers may mutate; the render cache is shared

    def delete_issue(self, repo: str, number: int) -> None:
        """Delete an issue; it disappears from every listing and its number answers 410 Gone."""
        with self.lock:
            r = self._need_repo(repo)
            issue = self._need_issue(r, number)
            payload = self.renderer.issue(r, issue)
            del r.issues[issue.number]
            # GET of the number answers 410 Gone from now on:
            # https://docs.github.com/en/rest/issues/issues#get-an-issue
            self._deleted_issues.setdefault(r.id, set()).add(issue.number)
            self._touch(r)
            body = {"action": "deleted", "issue": payload, **self._base_payload(r, issue.user)}
            self._emit("issues", body, r, issue.user)

    def transfer_issue(self, repo: str, number: int, to_repo: str) -> dict[str, Any]:
        """Move an issue to another repository (new number there, same id); the old number answers 301."""
        with self.lock:
            src, dst = self._need_repo(repo), self._need_repo(to_repo)
            issue = self._need_issue(src, number)
            if issue.is_pr:
                raise ValueError("pull requests cannot be transferred")
            # The `issues` "transferred" webhook carries the issue as it was and the new one under
            # `changes.new_issue` / `changes.new_repository`:
            # https://docs.github.com/en/webhooks/webhook-events-and-payloads?actionType=transferred#issues
            old_issue = copy.deepcopy(self.renderer.issue(src, issue))
            del src.issues[issue.number]
            old_number = issue.number
            issue.number = dst.next_number
            dst.next_number += 1
            # GET of the old number answers 301 to the new one from now on:
            # https://docs.github.com/en/rest/issues/issues#get-an-issue
            self._transferred_issues.setdefault(src.id, {})[old_number] = (dst.id, issue.number)
            issue.labels = self._labels(dst, [lab.name for lab in issue.labels])
            issue.updated_at = self._now()
            dst.issues[issue.number] = issue
            self._touch(src)
            self._touch(dst)
            new_issue = copy.deepcopy(
                self.renderer.issue(dst, issue)
            )  # callers may mutate; the cache is shared
            payload = {
                "action": "transferred",
                "issue": old_issue,
                "changes": {"new_issue": copy.deepcopy(new_issue), "new_repository": self._repo_payload(dst)},
                **self._base_payload(src, issue.user),
            }
            self._emit("issues", payload, src, issue.user)
            return new_issue

    # -- pull requests and pushes ----------------------------------------------------------------
    def open_pull_request(
        self,
        repo: str,
        title: str,
        body: str | None = None,
        head: str | None = None,
        base: str | None = None,
        draft: bool = False,
        user: str | None = None,
        labels: list[str] | None = None,
    ) -> dict[str, Any]:
        """Open a pull request; returns its ``pull-request-simple`` representation."""
        with self.lock:
            r = self._need_repo(repo)
            issue = self._open(
                r,
                title,
                body,
                user,
                labels,
                is_pr=True,
                pr_id=lambda number, _now: pull_request_id(r, number),
                draft=draft,
                head_ref=lambda number, _now: head or f"feature/{number}",
                head_sha=lambda number, now: sha1_hex("head", r.id, number, now.isoformat()),
                base_ref=base or r.default_branch,
            )
            return copy.deepcopy(
                self.renderer.pull_request(r, issue)
            )  # callers may mutate; the render cache is shared

    def merge_pull_request(self, repo: str, number: int) -> dict[str, Any]:
        """Merge an open pull request: closes it and pushes a merge commit to the default branch."""
        with self.lock:
            r = self._need_repo(repo)
            issue = self._need_issue(r, number)
            if not issue.is_pr or issue.state != "open":
                raise ValueError(f"#{number} is not an open pull request")
            self._push(r, 1, f"Merge pull request #{number} from {issue.head_ref}", issue.user)
            now = self._now()
            issue.state, issue.closed_at, issue.merged_at, issue.draft = "closed", now, now, False
            issue.merge_commit_sha = r.commits[0].sha
            issue.updated_at = now
            self._touch(r)
            self._issue_event("closed", r, issue, issue.user)
            return copy.deepcopy(
                self.renderer.pull_request(r, issue)
            )  # callers may mutate; the render cache is shared

    def push_commits(
        self, repo: str, n: int = 1, message: str = "Update", author: str | None = None
    ) -> list[str]:
        """Push ``n`` commits to the default branch; returns their SHAs, newest first."""
        with self.lock:
            r = self._need_repo(repo)
            user = (self.user(author) if author else None) or self.data.users[0]
            return self._push(r, n, message, user)

    def _push(self, r: Repo, n: int, message: str, user: User) -> list[str]:
        now = self._now()
        before = r.commits[0].sha if r.commits else "0" * 40
        new: list[Commit] = []
        parent = r.commits[0].sha if r.commits else None
        for k in range(n):
            sha = sha1_hex("push", r.id, len(r.commits) + k, now.isoformat())
            email = user.email or f"{user.id}+{user.login}@users.noreply.github.com"
            c = Commit(
                sha,
                message if n == 1 else f"{message} ({k + 1}/{n})",
                user,
                user.name or user.login,
                email,
                now,
                parent,
                sha1_hex("root-tree", r.id, sha),
            )
            new.append(c)
            parent = sha
        r.commits[:0] = reversed(new)
        head = r.commits[0].sha
        if r.tree:
            for e in r.tree:
                e.sha = sha1_hex(e.type, r.id, head, e.path)
        else:
            r.tree = make_tree(random.Random(f"tree:{self._seed}:{r.index}"), r.id, r.language, head)
            r.size_kb = max(r.size_kb, 1)
        r.pushed_at = r.updated_at = now
        self._touch(r)
        ref = f"refs/heads/{r.default_branch}"
        commits = [
            {
                "id": c.sha,
                "tree_id": c.tree_sha,
                "distinct": True,
                "message": c.message,
                "timestamp": iso(c.date),
                "url": f"{self.renderer.html}/{self.owner.login}/{r.name}/commit/{c.sha}",
                "author": {"name": c.author_name, "email": c.author_email, "username": user.login},
                "committer": {"name": c.author_name, "email": c.author_email, "username": user.login},
                "added": [],
                "removed": [],
                "modified": ["README.md"],
            }
            for c in reversed(new)
        ]
        payload = {
            "ref": ref,
            "before": before,
            "after": head,
            "created": before == "0" * 40,
            "deleted": False,
            "forced": False,
            "base_ref": None,
            "compare": f"{self.renderer.html}/{self.owner.login}/{r.name}/compare/"
            f"{before[:12]}...{head[:12]}",
            "commits": commits,
            "head_commit": commits[-1] if commits else None,
            "pusher": {"name": user.login, "email": user.email},
            **self._base_payload(r, user),
        }
        self._emit("push", payload, r, user)
        return [c.sha for c in reversed(new)]

    # -- repository mutations --------------------------------------------------------------------
    def rename_repository(self, repo: str, new_name: str) -> dict[str, Any]:
        """Rename a repository; the old name answers 301 to the new location afterwards."""
        with self.lock:
            r = self._need_repo(repo)
            if self.repo(new_name) is not None and self.repo(new_name) is not r:
                raise ValueError(f"repository {new_name!r} already exists")
            old = r.name
            del self._by_name[old.lower()]
            r.name = new_name
            self._by_name[new_name.lower()] = r
            self._renamed[old.lower()] = r.id
            self._renamed.pop(new_name.lower(), None)
            r.updated_at = self._now()
            self._touch(r)
            actor = self.data.users[0]
            payload = {
                "action": "renamed",
                "changes": {"repository": {"name": {"from": old}}},
                **self._base_payload(r, actor),
            }
            self._emit("repository", payload, r, actor)
            return copy.deepcopy(
                self.renderer.repository(r, full=True)
            )  # callers may mutate; the render cache is shared

    def archive_repository(self, repo: str) -> dict[str, Any]:
        """Archive a repository (read-only, still listed)."""
        with self.lock:
            r = self._need_repo(repo)
            r.archived = True
            r.updated_at = self._now()
            self._touch(r)
            actor = self.data.users[0]
            self._emit("repository", {"action": "archived", **self._base_payload(r, actor)}, r, actor)
            return copy.deepcopy(
                self.renderer.repository(r, full=True)
            )  # callers may mutate; the render cache is shared

    def delete_repository(self, repo: str) -> None:
        """Delete a repository; every URL under it answers 404 afterwards."""
        with self.lock:
            r = self._need_repo(repo)
            actor = self.data.users[0]
            payload = {"action": "deleted", **self._base_payload(r, actor)}
            r.deleted = True
            del self._by_name[r.name.lower()]
            self._renamed = {k: v for k, v in self._renamed.items() if v != r.id}
            self._deleted_issues.pop(r.id, None)  # every URL under it is 404 now
            self._transferred_issues.pop(r.id, None)
            self._touch(r)
            self._emit("repository", payload, r, actor)

    def create_repository(
        self,
        name: str,
        description: str | None = None,
        private: bool = False,
        language: str | None = None,
        auto_init: bool = False,
        topics: list[str] | None = None,
    ) -> dict[str, Any]:
        """Create a repository (empty unless ``auto_init``) and return its full representation."""
        with self.lock:
            if self.repo(name) is not None:
                raise ValueError(f"repository {name!r} already exists")
            now = self._now()
            index = len(self.data.repos)
            r = Repo(
                index=index,
                id=repository_id(index),
                name=name,
                description=description,
                private=private,
                fork=False,
                archived=False,
                language=language,
                languages={language: 1000} if language else {},
                topics=sorted(topics or []),
                created_at=now,
                updated_at=now,
                pushed_at=now,
                license=None,
                homepage=None,
                stargazers=0,
                forks_count=0,
                watchers=0,
                size_kb=0,
            )
            for lname, color, desc, default in LABELS:
                if default:
                    self._labels(r, [lname])
                    r.labels[lname] = Label(r.labels[lname].id, lname, color, desc, True)
            self.data.repos.append(r)
            self.version += 1  # a new repository: listings across repositories change
            self._by_name[name.lower()] = r
            self._by_id[r.id] = r
            self._renamed.pop(name.lower(), None)
            actor = self.data.users[0]
            self._emit("repository", {"action": "created", **self._base_payload(r, actor)}, r, actor)
            if auto_init:
                self._push(r, 1, "Initial commit", actor)
            return copy.deepcopy(
                self.renderer.repository(r, full=True)
            )  # callers may mutate; the render cache is shared


# Names the HTTP control API may call as POST /_sim/state/{name}.
MUTATIONS = (
    "create_issue",
    "edit_issue",
    "close_issue",
    "reopen_issue",
    "label_issue",
    "delete_issue",
    "transfer_issue",
    "open_pull_request",
    "merge_pull_request",
    "push_commits",
    "rename_repository",
    "archive_repository",
    "delete_repository",
    "create_repository",
)
