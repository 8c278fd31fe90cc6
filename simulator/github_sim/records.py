"""The simulated GitHub's records: accounts, repositories, issues and pull requests, commits, trees.

Plain mutable dataclasses shared by the generator (:mod:`github_sim.dataset`), the mutations
(:mod:`github_sim.state`), the JSON rendering (:mod:`github_sim.render`) and the routes
(:mod:`github_sim.api`). They hold data only: no rendering, no locking, no generation here
(the state's lock guards them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class User:
    """A GitHub account (user, bot or organisation)."""

    login: str
    id: int
    type: str = "User"
    name: str | None = None
    email: str | None = None
    created_at: datetime | None = None
    site_admin: bool = False


@dataclass(slots=True)
class Label:
    """A repository label."""

    id: int
    name: str
    color: str
    description: str
    default: bool


@dataclass(slots=True)
class Issue:
    """An issue or a pull request (GitHub stores PRs as issues too)."""

    id: int
    number: int
    title: str
    body: str | None
    user: User
    state: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    state_reason: str | None = None
    labels: list[Label] = field(default_factory=list)
    assignees: list[User] = field(default_factory=list)
    comments: int = 0
    locked: bool = False
    author_association: str = "MEMBER"
    is_pr: bool = False
    pr_id: int = 0
    draft: bool = False
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    head_ref: str = ""
    head_sha: str = ""
    base_ref: str = "main"


@dataclass(slots=True)
class Commit:
    """A commit on the default branch."""

    sha: str
    message: str
    author: User | None  # None: the e-mail is not linked to any GitHub account
    author_name: str
    author_email: str
    date: datetime
    parent: str | None
    tree_sha: str


@dataclass(slots=True)
class TreeEntry:
    """One entry of the default branch's tree."""

    path: str
    type: str  # "blob" or "tree"
    sha: str
    size: int | None
    mode: str


@dataclass(slots=True)
class Repo:
    """A repository and everything listed under it."""

    index: int
    id: int
    name: str
    description: str | None
    private: bool
    fork: bool
    archived: bool
    language: str | None
    languages: dict[str, int]
    topics: list[str]
    created_at: datetime
    updated_at: datetime
    pushed_at: datetime
    license: tuple[str, str, str] | None
    homepage: str | None
    stargazers: int
    forks_count: int
    watchers: int
    size_kb: int
    default_branch: str = "main"
    has_issues: bool = True
    has_wiki: bool = True
    has_projects: bool = True
    is_template: bool = False
    deleted: bool = False
    labels: dict[str, Label] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)  # by number, ascending
    commits: list[Commit] = field(default_factory=list)  # newest first
    tree: list[TreeEntry] = field(default_factory=list)
    next_number: int = 1
    next_label_id: int = 0
    version: int = 0  # bumped by every mutation; keys the listing caches

    @property
    def open_issues_count(self) -> int:
        """Open issues plus open pull requests, as GitHub counts them."""
        return sum(1 for i in self.issues.values() if i.state == "open")


@dataclass
class DataSet:
    """The whole simulated organisation."""

    owner: User
    users: list[User]
    bot: User
    repos: list[Repo]
