"""Turn GitHub's JSON (REST responses and webhook payloads) into rows for the dashboard's tables.

Every function is pure: no I/O, no clock (the run's "as of" time is a parameter). Each returns a
plain dict whose keys are exactly column names of the schema (``migrations/0001_initial.sql`` and
the columns later migrations add); the loader adds ``project_id`` and the database fills ``id``
and ``synced_at``.

Text that goes to PostgreSQL is cleaned: NUL characters are removed (PostgreSQL's ``text`` rejects
them, and GitHub accepts them in bodies) and lone UTF-16 surrogates (possible through JSON
``\\ud800`` escapes, not encodable as UTF-8) become U+FFFD.

This module owns the mapping from GitHub's objects to row dicts and how rows are keyed; it must
not read the database or the clock, or decide scores and severities itself (those are
:mod:`github_sync.transform.scoring` and :mod:`github_sync.transform.labels`). It is one piece
(over 300 lines) because every object kind shares the same helpers and conventions (required
fields, logins, labels, text cleaning), and both sources of an object (REST and webhooks) must
keep giving the same row, which is easiest to check side by side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from github_sync.transform.labels import LabelRules
from github_sync.transform.scoring import priority_base, priority_score, sla_hours
from github_sync.transform.timestamps import parse_github_timestamp

__all__ = [
    "BUG_NUMBER_PREFIX",
    "MalformedPayloadError",
    "NotAnIssueError",
    "clean_text",
    "is_pull_request",
    "listing_keys",
    "normalize_commit",
    "normalize_issue",
    "normalize_pull_request",
    "normalize_repository",
]

#: ``bugs.bug_number`` is ``"GH-<issue number>"``.
BUG_NUMBER_PREFIX = "GH-"

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class MalformedPayloadError(ValueError):
    """A GitHub object lacks a field the row cannot do without (id, number, timestamps...)."""


class NotAnIssueError(ValueError):
    """``normalize_issue`` was given a pull request (an issues-listing item with ``pull_request``)."""


def clean_text(value: str | None) -> str | None:
    """Return ``value`` storable in a PostgreSQL ``text`` column (``None`` stays ``None``).

    Args:
        value: Text from GitHub.

    Returns:
        The text without NUL characters and with lone surrogates replaced by U+FFFD.
    """
    if value is None:
        return None
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)


def is_pull_request(item: Mapping[str, Any]) -> bool:
    """Tell whether an issues-listing item is a pull request (GitHub lists PRs as issues too).

    Args:
        item: An item of ``GET /repos/{owner}/{repo}/issues`` or an issue webhook's ``issue``.

    Returns:
        True when the item carries a ``pull_request`` object.
    """
    return item.get("pull_request") is not None


def listing_keys(items: Iterable[Mapping[str, Any]]) -> tuple[frozenset[int], frozenset[int]]:
    """``(issue ids, PR numbers)`` of issues-listing items: the keys of their ``bugs`` and ``pull_requests`` rows.

    Args:
        items: Items of ``GET /repos/{owner}/{repo}/issues``.
    """
    ids: set[int] = set()
    numbers: set[int] = set()
    for item in items:
        if is_pull_request(item):
            numbers.add(int(item["number"]))
        else:
            ids.add(int(item["id"]))
    return frozenset(ids), frozenset(numbers)


def _require(obj: Mapping[str, Any], key: str, kind: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise MalformedPayloadError(f"{kind} has no {key!r}: {_describe(obj)}")
    return value


def _describe(obj: Mapping[str, Any]) -> str:
    # Enough to find the object in a log without dumping a 20 kB payload.
    parts = [f"{k}={obj[k]!r}" for k in ("id", "number", "sha", "full_name", "html_url") if k in obj]
    return ", ".join(parts) or f"keys {sorted(obj)[:10]}"


def _required_time(obj: Mapping[str, Any], key: str, kind: str) -> datetime:
    value = parse_github_timestamp(_require(obj, key, kind))
    assert value is not None  # _require rejected None
    return value


def _login(user: object) -> str | None:
    # user/author objects are null for deleted accounts and for commits whose e-mail matches no
    # GitHub account.
    if isinstance(user, Mapping):
        login = user.get("login")
        return clean_text(login) if isinstance(login, str) else None
    return None


def _label_names(obj: Mapping[str, Any]) -> list[str]:
    # Responses carry label objects; some producers (and the create-issue API) use bare strings.
    names: list[str] = []
    for label in obj.get("labels") or ():
        name = label.get("name") if isinstance(label, Mapping) else label
        if isinstance(name, str):
            names.append(clean_text(name) or "")
    return names


def _assignee_logins(obj: Mapping[str, Any]) -> list[str]:
    logins: list[str] = []
    for user in obj.get("assignees") or ():
        login = _login(user)
        if login is not None and login not in logins:
            logins.append(login)
    # Old payloads have only the singular ``assignee``.
    single = _login(obj.get("assignee"))
    if single is not None and single not in logins:
        logins.append(single)
    return logins


def _body(obj: Mapping[str, Any]) -> str:
    return clean_text(obj.get("body")) or ""


def normalize_repository(repo: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ``projects`` row of a repository.

    Accepts the items of ``GET /orgs/{org}/repos`` and ``GET /users/{user}/repos``, the object of
    ``GET /repos/{owner}/{repo}``, and a webhook's ``repository`` (whose ``created_at`` and
    ``pushed_at`` are epoch seconds in push events).

    Args:
        repo: The repository object.

    Returns:
        Keys: github_id, owner, name, full_name, description, github_url, language, tags, stars,
        forks, open_issues, default_branch, is_fork, last_commit, status, created_at, updated_at.
        ``status`` is ``'shipped'`` for an archived repository, else ``'active'``; ``last_commit``
        is ``pushed_at`` (the last push to any branch, the only "last activity" the listing has).

    Raises:
        MalformedPayloadError: Without id, owner login, name, full_name or html_url.
    """
    kind = "repository"
    owner = _login(repo.get("owner"))
    if owner is None:
        raise MalformedPayloadError(f"repository has no owner login: {_describe(repo)}")
    return {
        "github_id": int(_require(repo, "id", kind)),
        "owner": owner,
        "name": clean_text(_require(repo, "name", kind)),
        "full_name": clean_text(_require(repo, "full_name", kind)),
        "description": clean_text(repo.get("description")),
        "github_url": _require(repo, "html_url", kind),
        "language": repo.get("language"),
        "tags": [clean_text(t) for t in repo.get("topics") or () if isinstance(t, str)],
        "stars": int(repo.get("stargazers_count") or 0),
        "forks": int(repo.get("forks_count") or 0),
        "open_issues": int(repo.get("open_issues_count") or 0),
        "default_branch": repo.get("default_branch"),
        "is_fork": bool(repo.get("fork", False)),
        "last_commit": parse_github_timestamp(repo.get("pushed_at")),
        "status": "shipped" if repo.get("archived") else "active",
        "created_at": parse_github_timestamp(repo.get("created_at")),
        "updated_at": parse_github_timestamp(repo.get("updated_at")),
    }


def normalize_issue(
    issue: Mapping[str, Any], *, as_of: datetime, rules: LabelRules | None = None
) -> dict[str, Any]:
    """Return the ``bugs`` row of an issue (REST issues listing item or an issue webhook's ``issue``).

    Both sources carry the same representation, so they give the same row.

    * ``severity``: from the labels through ``rules`` (the most severe label wins); when no
      label names a severity, the rules' ``default_severity``, ``'medium'`` in the shipped rules
      (an unlabelled issue is neither ignored nor escalated).
    * ``status``: ``'closed'`` when GitHub's state is closed; else ``'in_progress'`` when someone
      is assigned or a label says in progress/WIP; else ``'pending'``.
    * ``resolved_at``: ``closed_at`` while the issue is closed, else None. A reopened issue keeps
      its old ``closed_at`` in some payloads (see the ``issues/reopened`` sample); it is not
      resolved.
    * ``priority_score``: see :func:`github_sync.transform.scoring.priority_score`; a closed issue stops
      ageing at ``resolved_at``.
    * ``priority_base``: the score without its age part and before clamping
      (:func:`github_sync.transform.scoring.priority_base`), kept so that the age of open issues can be
      re-scored in SQL (``github_sync.store.loader.rescore_open_bugs``) without reading them again.

    Args:
        issue: The issue object.
        as_of: The run's time (aware), for the age part of the priority.
        rules: Label rules; the shipped defaults when None.

    Returns:
        Keys: github_id, number, bug_number, title, description, severity, status, sla_hours,
        priority_score, priority_base, is_blocker, labels, assignees, author, github_url,
        created_at, updated_at, resolved_at.

    Raises:
        NotAnIssueError: The object is a pull request; use :func:`normalize_pull_request`.
        MalformedPayloadError: Without id, number, created_at or updated_at.
    """
    if is_pull_request(issue):
        raise NotAnIssueError(
            f"issue #{issue.get('number')} is a pull request (it has 'pull_request'); "
            "use normalize_pull_request for it"
        )
    rules = rules or LabelRules.default()
    kind = "issue"
    number = int(_require(issue, "number", kind))
    labels = _label_names(issue)
    assignees = _assignee_logins(issue)
    closed = issue.get("state") == "closed"
    created_at = _required_time(issue, "created_at", kind)
    resolved_at = parse_github_timestamp(issue.get("closed_at")) if closed else None
    severity = rules.severity_for(labels)
    is_blocker = rules.is_blocker(labels)
    if closed:
        status = "closed"
    elif assignees or rules.is_in_progress(labels):
        status = "in_progress"
    else:
        status = "pending"
    return {
        "github_id": int(_require(issue, "id", kind)),
        "number": number,
        "bug_number": f"{BUG_NUMBER_PREFIX}{number}",
        "title": clean_text(issue.get("title")) or "",
        "description": _body(issue),
        "severity": severity,
        "status": status,
        "sla_hours": sla_hours(severity),
        "priority_score": priority_score(
            severity=severity,
            is_blocker=is_blocker,
            labels=labels,
            created_at=created_at,
            as_of=as_of,
            closed_at=resolved_at,
            rules=rules,
        ),
        "priority_base": priority_base(severity=severity, is_blocker=is_blocker, labels=labels, rules=rules),
        "is_blocker": is_blocker,
        "labels": labels,
        "assignees": assignees,
        "author": _login(issue.get("user")),
        "github_url": issue.get("html_url"),
        "created_at": created_at,
        "updated_at": _required_time(issue, "updated_at", kind),
        "resolved_at": resolved_at,
    }


def _mapping(value: object) -> Mapping[str, Any]:
    # Optional nested objects (a PR's base/head, an issue's pull_request) may be absent or null.
    return value if isinstance(value, Mapping) else {}


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def normalize_pull_request(pr: Mapping[str, Any], *, as_of: datetime) -> dict[str, Any]:
    """Return the ``pull_requests`` row of a pull request.

    Accepts a ``GET /repos/{o}/{r}/pulls`` item, a pull_request webhook's ``pull_request``, and an
    issues-listing item that has a ``pull_request`` key (the sync reads PRs from the issues
    listing to save a request per repository). The issues listing lacks base/head refs and line
    counts, so those are None for it.

    Identity: a PR is identified by (repository, ``number``), and the row has no ``github_id``
    (the ``pull_requests`` table has none; its key is ``(project_id, number)``). On GitHub the
    *issue* id of a PR (issues listing, issue webhooks) differs from its *pull request* id (pulls
    endpoint, pull_request webhooks), and the two come from different id sequences, so no GitHub
    id is common to every source while the number is.

    ``state`` is ``'merged'`` when ``merged_at`` is set (top level, or inside ``pull_request`` in
    the issues listing) or ``merged`` is true, else GitHub's ``'open'``/``'closed'``.

    Args:
        pr: The pull request object.
        as_of: The run's time. No column depends on it today; it is accepted so that every
            normalizer of the run has the same calling convention.

    Returns:
        Keys: number, title, description, state, draft, author, labels, base_ref, head_ref,
        additions, deletions, changed_files, github_url, created_at, updated_at, closed_at,
        merged_at.

    Raises:
        MalformedPayloadError: Without number, created_at or updated_at.
    """
    del as_of  # see Args
    kind = "pull request"
    nested = _mapping(pr.get("pull_request"))
    merged_at = parse_github_timestamp(pr.get("merged_at") or nested.get("merged_at"))
    if merged_at is not None or pr.get("merged") is True:
        state = "merged"
    else:
        state = "closed" if pr.get("state") == "closed" else "open"
    base = _mapping(pr.get("base"))
    head = _mapping(pr.get("head"))
    return {
        "number": int(_require(pr, "number", kind)),
        "title": clean_text(pr.get("title")) or "",
        "description": _body(pr),
        "state": state,
        "draft": bool(pr.get("draft") or False),
        "author": _login(pr.get("user")),
        "labels": _label_names(pr),
        "base_ref": base.get("ref"),
        "head_ref": head.get("ref"),
        "additions": _int_or_none(pr.get("additions")),
        "deletions": _int_or_none(pr.get("deletions")),
        "changed_files": _int_or_none(pr.get("changed_files")),
        "github_url": pr.get("html_url"),
        "created_at": _required_time(pr, "created_at", kind),
        "updated_at": _required_time(pr, "updated_at", kind),
        "closed_at": parse_github_timestamp(pr.get("closed_at")),
        "merged_at": merged_at,
    }


def normalize_commit(commit: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ``commits`` row of a commit.

    Accepts a ``GET /repos/{o}/{r}/commits`` item (``sha``, ``commit{author,committer,message}``,
    ``author`` = the GitHub account or null, ``html_url``) and a push webhook commit (``id``,
    ``message``, ``timestamp``, ``author{name, username}``, ``url``).

    ``committed_at`` is the committer date (when the commit landed on the branch, which is what
    activity charts want), falling back to the author date. Author e-mails are deliberately not
    kept.

    Args:
        commit: The commit object.

    Returns:
        Keys: sha, author_login, author_name, message, committed_at, github_url.

    Raises:
        MalformedPayloadError: Without a sha or any date.
    """
    if "commit" not in commit and "id" in commit:
        return _normalize_push_commit(commit)
    kind = "commit"
    git: Mapping[str, Any] = commit.get("commit") or {}
    git_author: Mapping[str, Any] = git.get("author") or {}
    git_committer: Mapping[str, Any] = git.get("committer") or {}
    committed_at = parse_github_timestamp(git_committer.get("date") or git_author.get("date"))
    if committed_at is None:
        raise MalformedPayloadError(f"commit has no committer or author date: {_describe(commit)}")
    return {
        "sha": _require(commit, "sha", kind),
        "author_login": _login(commit.get("author")),
        "author_name": clean_text(git_author.get("name")),
        "message": clean_text(git.get("message")) or "",
        "committed_at": committed_at,
        "github_url": commit.get("html_url"),
    }


def _normalize_push_commit(commit: Mapping[str, Any]) -> dict[str, Any]:
    author: Mapping[str, Any] = commit.get("author") or {}
    username = author.get("username")
    return {
        "sha": _require(commit, "id", "push commit"),
        "author_login": clean_text(username) if isinstance(username, str) else None,
        "author_name": clean_text(author.get("name")),
        "message": clean_text(commit.get("message")) or "",
        "committed_at": _required_time(commit, "timestamp", "push commit"),
        "github_url": commit.get("url"),
    }
