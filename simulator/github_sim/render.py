"""Turn data-set records into the JSON bodies GitHub's REST API documents.

Owns the shape of every schema the simulator serves (``simple-user``, ``minimal-repository``,
``issue``, ``pull-request-simple``, ``commit``, ``git-tree``...) and the caches of rendered
bodies. It must not decide what is listed or who may see it (the API does), and a rendered
dict is shared between responses, so nothing may mutate one after it is returned.

One piece (>300 lines) because the schemas nest (a pull request embeds its repository, every
record embeds users) and share the base URLs and caches: one renderer keeps every link of every
body pointing at the same server.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from github_sim.records import Commit, Issue, Label, Repo, TreeEntry, User

RENDER_CACHE_MAX = 50_000


def iso(dt: datetime | None) -> str | None:
    """Format a datetime the way GitHub does (``2011-01-26T19:01:12Z``)."""
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, ident: int | str) -> str:
    """Return a GitHub-looking global node id."""
    return base64.b64encode(f"0{len(kind)}:{kind}{ident}".encode()).decode()


class Renderer:
    """Renders records with the simulator's own base URL in every API link."""

    def __init__(self, api: str, html: str, owner: User) -> None:
        """Create a renderer.

        Args:
            api: API base URL (``http://127.0.0.1:PORT``).
            html: web base URL for ``html_url`` fields.
            owner: the account owning every repository.
        """
        self.html = html.rstrip("/")
        self.owner = owner
        # Rendered dicts are shared between responses (never mutated after rendering); repository
        # and issue entries are keyed by the repository's version, which every mutation bumps.
        self._users: dict[int, dict[str, Any]] = {}
        self._repos: dict[tuple[int, int, bool], dict[str, Any]] = {}
        self._issues: dict[tuple[int, int, int], dict[str, Any]] = {}
        self.api = api

    @property
    def api(self) -> str:
        """API base URL of every link."""
        return self._api

    @api.setter
    def api(self, value: str) -> None:
        self._api = value.rstrip("/")
        self._users.clear()
        self._repos.clear()
        self._issues.clear()

    def _bounded(self, cache: dict[Any, Any]) -> None:
        # Old versions are never asked for again; drop everything rather than track recency.
        if len(cache) > RENDER_CACHE_MAX:
            cache.clear()

    # -- accounts -------------------------------------------------------------------------------
    def simple_user(self, u: User | None) -> dict[str, Any] | None:
        """Render the ``simple-user`` schema."""
        if u is None:
            return None
        cached = self._users.get(u.id)
        if cached is not None:
            return cached
        base = f"{self.api}/users/{u.login}"
        self._users[u.id] = out = {
            "login": u.login,
            "id": u.id,
            "node_id": node_id("User" if u.type != "Organization" else "Organization", u.id),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{u.id}?v=4",
            "gravatar_id": "",
            "url": base,
            "html_url": f"{self.html}/{u.login}",
            "followers_url": f"{base}/followers",
            "following_url": f"{base}/following{{/other_user}}",
            "gists_url": f"{base}/gists{{/gist_id}}",
            "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{base}/subscriptions",
            "organizations_url": f"{base}/orgs",
            "repos_url": f"{base}/repos",
            "events_url": f"{base}/events{{/privacy}}",
            "received_events_url": f"{base}/received_events",
            "type": u.type,
            "user_view_type": "public",
            "site_admin": u.site_admin,
        }
        return out

    def public_user(self, u: User, public_repos: int) -> dict[str, Any]:
        """Render the ``public-user`` schema (``GET /users/{username}``)."""
        out = dict(self.simple_user(u) or {})
        out.update(
            {
                "name": u.name,
                "company": None,
                "blog": "",
                "location": None,
                "email": u.email,
                "hireable": None,
                "bio": None,
                "twitter_username": None,
                "public_repos": public_repos,
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "created_at": iso(u.created_at),
                "updated_at": iso(u.created_at),
            }
        )
        return out

    def organization(self, org: User, public_repos: int, private_repos: int) -> dict[str, Any]:
        """Render the ``organization-full`` schema (``GET /orgs/{org}``)."""
        base = f"{self.api}/orgs/{org.login}"
        return {
            "login": org.login,
            "id": org.id,
            "node_id": node_id("Organization", org.id),
            "url": base,
            "repos_url": f"{base}/repos",
            "events_url": f"{base}/events",
            "hooks_url": f"{base}/hooks",
            "issues_url": f"{base}/issues",
            "members_url": f"{base}/members{{/member}}",
            "public_members_url": f"{base}/public_members{{/member}}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{org.id}?v=4",
            "description": f"{org.name} engineering",
            "name": org.name,
            "blog": f"https://{org.login}.example.com",
            "twitter_username": None,
            "is_verified": False,
            "has_organization_projects": True,
            "has_repository_projects": True,
            "public_repos": public_repos,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "html_url": f"{self.html}/{org.login}",
            "type": "Organization",
            "total_private_repos": private_repos,
            "owned_private_repos": private_repos,
            "created_at": iso(org.created_at),
            "updated_at": iso(org.created_at),
            "archived_at": None,
        }

    # -- repositories ----------------------------------------------------------------------------
    def _repo_urls(self, r: Repo) -> dict[str, Any]:
        full = f"{self.owner.login}/{r.name}"
        b = f"{self.api}/repos/{full}"
        return {
            "id": r.id,
            "node_id": node_id("Repository", r.id),
            "name": r.name,
            "full_name": full,
            "private": r.private,
            "owner": self.simple_user(self.owner),
            "html_url": f"{self.html}/{full}",
            "description": r.description,
            "fork": r.fork,
            "url": b,
            "forks_url": f"{b}/forks",
            "keys_url": f"{b}/keys{{/key_id}}",
            "collaborators_url": f"{b}/collaborators{{/collaborator}}",
            "teams_url": f"{b}/teams",
            "hooks_url": f"{b}/hooks",
            "issue_events_url": f"{b}/issues/events{{/number}}",
            "events_url": f"{b}/events",
            "assignees_url": f"{b}/assignees{{/user}}",
            "branches_url": f"{b}/branches{{/branch}}",
            "tags_url": f"{b}/tags",
            "blobs_url": f"{b}/git/blobs{{/sha}}",
            "git_tags_url": f"{b}/git/tags{{/sha}}",
            "git_refs_url": f"{b}/git/refs{{/sha}}",
            "trees_url": f"{b}/git/trees{{/sha}}",
            "statuses_url": f"{b}/statuses/{{sha}}",
            "languages_url": f"{b}/languages",
            "stargazers_url": f"{b}/stargazers",
            "contributors_url": f"{b}/contributors",
            "subscribers_url": f"{b}/subscribers",
            "subscription_url": f"{b}/subscription",
            "commits_url": f"{b}/commits{{/sha}}",
            "git_commits_url": f"{b}/git/commits{{/sha}}",
            "comments_url": f"{b}/comments{{/number}}",
            "issue_comment_url": f"{b}/issues/comments{{/number}}",
            "contents_url": f"{b}/contents/{{+path}}",
            "compare_url": f"{b}/compare/{{base}}...{{head}}",
            "merges_url": f"{b}/merges",
            "archive_url": f"{b}/{{archive_format}}{{/ref}}",
            "downloads_url": f"{b}/downloads",
            "issues_url": f"{b}/issues{{/number}}",
            "pulls_url": f"{b}/pulls{{/number}}",
            "milestones_url": f"{b}/milestones{{/number}}",
            "notifications_url": f"{b}/notifications{{?since,all,participating}}",
            "labels_url": f"{b}/labels{{/name}}",
            "releases_url": f"{b}/releases{{/id}}",
            "deployments_url": f"{b}/deployments",
        }

    def _license(self, r: Repo) -> dict[str, Any] | None:
        if r.license is None:
            return None
        key, name, spdx = r.license
        return {
            "key": key,
            "name": name,
            "spdx_id": spdx,
            "url": f"{self.api}/licenses/{key}",
            "node_id": node_id("License", key),
        }

    def repository(self, r: Repo, full: bool = False) -> dict[str, Any]:
        """Render ``minimal-repository`` as listed, or ``full-repository`` when ``full``."""
        key = (r.id, r.version, full)
        cached = self._repos.get(key)
        if cached is None:
            self._bounded(self._repos)
            cached = self._repos[key] = self._repository(r, full)
        return cached

    def _repository(self, r: Repo, full: bool) -> dict[str, Any]:
        full_name = f"{self.owner.login}/{r.name}"
        out = self._repo_urls(r)
        out.update(
            {
                "git_url": f"git://github.com/{full_name}.git",
                "ssh_url": f"git@github.com:{full_name}.git",
                "clone_url": f"{self.html}/{full_name}.git",
                "svn_url": f"{self.html}/{full_name}",
                "mirror_url": None,
                "homepage": r.homepage,
                "language": r.language,
                "forks_count": r.forks_count,
                "stargazers_count": r.stargazers,
                "watchers_count": r.watchers,
                "size": r.size_kb,
                "default_branch": r.default_branch,
                "open_issues_count": r.open_issues_count,
                "is_template": r.is_template,
                "topics": list(r.topics),
                "has_issues": r.has_issues,
                "has_projects": r.has_projects,
                "has_wiki": r.has_wiki,
                "has_pages": False,
                "has_downloads": True,
                "has_discussions": False,
                "archived": r.archived,
                "disabled": False,
                "visibility": "private" if r.private else "public",
                "pushed_at": iso(r.pushed_at),
                "created_at": iso(r.created_at),
                "updated_at": iso(r.updated_at),
                "permissions": {
                    "admin": False,
                    "maintain": False,
                    "push": True,
                    "triage": True,
                    "pull": True,
                },
                "license": self._license(r),
                "allow_forking": True,
                "web_commit_signoff_required": False,
                "forks": r.forks_count,
                "open_issues": r.open_issues_count,
                "watchers": r.watchers,
            }
        )
        if full:
            out.update(
                {
                    "network_count": r.forks_count,
                    "subscribers_count": r.watchers,
                    "allow_rebase_merge": True,
                    "allow_squash_merge": True,
                    "allow_merge_commit": True,
                    "allow_auto_merge": False,
                    "delete_branch_on_merge": False,
                    "temp_clone_token": "",
                }
            )
            if self.owner.type == "Organization":
                out["organization"] = self.simple_user(self.owner)
        return out

    # -- issues and pull requests ----------------------------------------------------------------
    def label(self, r: Repo, label: Label) -> dict[str, Any]:
        """Render the ``label`` schema."""
        return {
            "id": label.id,
            "node_id": node_id("Label", label.id),
            "url": f"{self.api}/repos/{self.owner.login}/{r.name}/labels/{label.name.replace(' ', '%20')}",
            "name": label.name,
            "color": label.color,
            "default": label.default,
            "description": label.description,
        }

    def issue(self, r: Repo, i: Issue) -> dict[str, Any]:
        """Render the ``issue`` schema (a PR gets the ``pull_request`` key, as on GitHub)."""
        key = (r.id, r.version, i.number)
        cached = self._issues.get(key)
        if cached is None:
            self._bounded(self._issues)
            cached = self._issues[key] = self._issue(r, i)
        return cached

    def _issue(self, r: Repo, i: Issue) -> dict[str, Any]:
        full = f"{self.owner.login}/{r.name}"
        b = f"{self.api}/repos/{full}"
        assignees = [self.simple_user(a) for a in i.assignees]
        out: dict[str, Any] = {
            "url": f"{b}/issues/{i.number}",
            "repository_url": b,
            "labels_url": f"{b}/issues/{i.number}/labels{{/name}}",
            "comments_url": f"{b}/issues/{i.number}/comments",
            "events_url": f"{b}/issues/{i.number}/events",
            "html_url": f"{self.html}/{full}/{'pull' if i.is_pr else 'issues'}/{i.number}",
            "id": i.id,
            "node_id": node_id("Issue", i.id),
            "number": i.number,
            "title": i.title,
            "user": self.simple_user(i.user),
            "labels": [self.label(r, lab) for lab in i.labels],
            "state": i.state,
            "locked": i.locked,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": None,
            "comments": i.comments,
            "created_at": iso(i.created_at),
            "updated_at": iso(i.updated_at),
            "closed_at": iso(i.closed_at),
            "author_association": i.author_association,
            "active_lock_reason": None,
            "body": i.body,
            "closed_by": None,
            "timeline_url": f"{b}/issues/{i.number}/timeline",
            "performed_via_github_app": None,
            "state_reason": i.state_reason,
        }
        if i.is_pr:
            out["draft"] = i.draft
            out["pull_request"] = {
                "url": f"{b}/pulls/{i.number}",
                "html_url": f"{self.html}/{full}/pull/{i.number}",
                "diff_url": f"{self.html}/{full}/pull/{i.number}.diff",
                "patch_url": f"{self.html}/{full}/pull/{i.number}.patch",
                "merged_at": iso(i.merged_at),
            }
        return out

    def pull_request(self, r: Repo, i: Issue) -> dict[str, Any]:
        """Render the ``pull-request-simple`` schema of ``GET /repos/{o}/{r}/pulls``."""
        full = f"{self.owner.login}/{r.name}"
        b = f"{self.api}/repos/{full}"
        assignees = [self.simple_user(a) for a in i.assignees]
        repo_json = self.repository(r)
        head_sha = i.head_sha
        base_sha = r.commits[0].sha if r.commits else head_sha

        def link(href: str) -> dict[str, str]:
            return {"href": href}

        return {
            "url": f"{b}/pulls/{i.number}",
            "id": i.pr_id,
            "node_id": node_id("PullRequest", i.pr_id),
            "html_url": f"{self.html}/{full}/pull/{i.number}",
            "diff_url": f"{self.html}/{full}/pull/{i.number}.diff",
            "patch_url": f"{self.html}/{full}/pull/{i.number}.patch",
            "issue_url": f"{b}/issues/{i.number}",
            "commits_url": f"{b}/pulls/{i.number}/commits",
            "review_comments_url": f"{b}/pulls/{i.number}/comments",
            "review_comment_url": f"{b}/pulls/comments{{/number}}",
            "comments_url": f"{b}/issues/{i.number}/comments",
            "statuses_url": f"{b}/statuses/{head_sha}",
            "number": i.number,
            "state": i.state,
            "locked": i.locked,
            "title": i.title,
            "user": self.simple_user(i.user),
            "body": i.body,
            "labels": [self.label(r, lab) for lab in i.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": iso(i.created_at),
            "updated_at": iso(i.updated_at),
            "closed_at": iso(i.closed_at),
            "merged_at": iso(i.merged_at),
            "merge_commit_sha": i.merge_commit_sha,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "requested_reviewers": [],
            "requested_teams": [],
            "head": {
                "label": f"{self.owner.login}:{i.head_ref}",
                "ref": i.head_ref,
                "sha": head_sha,
                "user": self.simple_user(self.owner),
                "repo": repo_json,
            },
            "base": {
                "label": f"{self.owner.login}:{i.base_ref}",
                "ref": i.base_ref,
                "sha": base_sha,
                "user": self.simple_user(self.owner),
                "repo": repo_json,
            },
            "_links": {
                "self": link(f"{b}/pulls/{i.number}"),
                "html": link(f"{self.html}/{full}/pull/{i.number}"),
                "issue": link(f"{b}/issues/{i.number}"),
                "comments": link(f"{b}/issues/{i.number}/comments"),
                "review_comments": link(f"{b}/pulls/{i.number}/comments"),
                "review_comment": link(f"{b}/pulls/comments{{/number}}"),
                "commits": link(f"{b}/pulls/{i.number}/commits"),
                "statuses": link(f"{b}/statuses/{head_sha}"),
            },
            "author_association": i.author_association,
            "auto_merge": None,
            "draft": i.draft,
        }

    # -- git -------------------------------------------------------------------------------------
    def commit(self, r: Repo, c: Commit) -> dict[str, Any]:
        """Render the ``commit`` schema of ``GET /repos/{o}/{r}/commits``."""
        full = f"{self.owner.login}/{r.name}"
        b = f"{self.api}/repos/{full}"
        git_user = {"name": c.author_name, "email": c.author_email, "date": iso(c.date)}
        user = self.simple_user(c.author)
        return {
            "sha": c.sha,
            "node_id": node_id("Commit", c.sha),
            "commit": {
                "author": git_user,
                "committer": dict(git_user),
                "message": c.message,
                "tree": {"sha": c.tree_sha, "url": f"{b}/git/trees/{c.tree_sha}"},
                "url": f"{b}/git/commits/{c.sha}",
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "url": f"{b}/commits/{c.sha}",
            "html_url": f"{self.html}/{full}/commit/{c.sha}",
            "comments_url": f"{b}/commits/{c.sha}/comments",
            "author": user,
            "committer": user,
            "parents": (
                [
                    {
                        "sha": c.parent,
                        "url": f"{b}/commits/{c.parent}",
                        "html_url": f"{self.html}/{full}/commit/{c.parent}",
                    }
                ]
                if c.parent
                else []
            ),
        }

    def contributor(self, user: User, contributions: int) -> dict[str, Any]:
        """Render the ``contributor`` schema of a GitHub account."""
        out = dict(self.simple_user(user) or {})
        out["contributions"] = contributions
        return out

    @staticmethod
    def anonymous_contributor(name: str, email: str, contributions: int) -> dict[str, Any]:
        """Render a contributor whose e-mail belongs to no account (``anon=1``)."""
        return {"email": email, "name": name, "type": "Anonymous", "contributions": contributions}

    def tree(self, r: Repo, sha: str, entries: list[TreeEntry]) -> dict[str, Any]:
        """Render the ``git-tree`` schema."""
        b = f"{self.api}/repos/{self.owner.login}/{r.name}"
        items = []
        for e in entries:
            item: dict[str, Any] = {"path": e.path, "mode": e.mode, "type": e.type, "sha": e.sha}
            if e.type == "blob":
                item["size"] = e.size
                item["url"] = f"{b}/git/blobs/{e.sha}"
            else:
                item["url"] = f"{b}/git/trees/{e.sha}"
            items.append(item)
        return {"sha": sha, "url": f"{b}/git/trees/{sha}", "tree": items, "truncated": False}
