"""GitHub REST endpoints: routing and the bodies of every served operation.

Owns what each documented operation answers: which records it lists, its parameters and their
validation (422s as GitHub words them), its sorting and paging, 404/301/409 for missing, renamed
or empty repositories, 410/301 for deleted or transferred issues, and what a token may see. It
must not authenticate, rate-limit, inject faults or write headers (the HTTP layer in
:mod:`github_sim.server` does), nor change the state.

One piece (>300 lines) because the routing table and the handlers it names are read together:
each handler is one operation of GitHub's REST documentation, and they share the repository
resolution, visibility and paging rules that make them answer consistently.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from github_sim.access import AccessPolicy
from github_sim.config import AppConfig, SimulatorConfig
from github_sim.events import MAX_EVENTS
from github_sim.faults import FaultConfig
from github_sim.pagination import (
    MAX_ISSUE_PAGE,
    PaginationError,
    page_of,
    paginate,
    paginate_cursor,
    per_page_of,
)
from github_sim.records import Issue, Repo, User
from github_sim.render import iso
from github_sim.state import SimState

if TYPE_CHECKING:
    from github_sim.api_apps import AppsApi
    from github_sim.api_hooks import HookDeliveriesApi

DOCS = "https://docs.github.com/rest"
# The body and Location of a 301 (https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#follow-redirects).
REDIRECT_DOCS = "https://docs.github.com/v3/#http-redirects"
# GET /repos/{owner}/{repo}/issues/{issue_number} (https://docs.github.com/en/rest/issues/issues#get-an-issue).
GET_ISSUE_DOCS = "https://docs.github.com/rest/issues/issues#get-an-issue"
EMPTY_REPO_MESSAGE = "Git Repository is empty."
REPO_SORTS = ("created", "updated", "pushed", "full_name")
# Sort keys of the repository listings (the id breaks ties between equal times).
REPO_SORT_KEYS: dict[str, Callable[[Repo], Any]] = {
    "created": lambda r: (r.created_at, r.id),
    "updated": lambda r: (r.updated_at, r.id),
    "pushed": lambda r: (r.pushed_at, r.id),
    "full_name": lambda r: r.name.lower(),
}
# GET /user/repos parameters (https://docs.github.com/en/rest/repos/repos#list-repositories-for-the-authenticated-user).
USER_REPOS_DOCS = "https://docs.github.com/rest/repos/repos#list-repositories-for-the-authenticated-user"
AFFILIATIONS = ("owner", "collaborator", "organization_member")
VISIBILITIES = ("all", "public", "private")
# What each legacy `type` of GET /user/repos means as (visibility, affiliations).
USER_REPO_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "all": ("all", AFFILIATIONS),
    "owner": ("all", ("owner",)),
    "public": ("public", AFFILIATIONS),
    "private": ("private", AFFILIATIONS),
    "member": ("all", ("collaborator", "organization_member")),
}
INTEGRATION_FORBIDDEN = "Resource not accessible by integration"
# GET /orgs/{org}/issues (https://docs.github.com/en/rest/issues/issues#list-organization-issues-assigned-to-the-authenticated-user).
ORG_ISSUES_DOCS = (
    "https://docs.github.com/rest/issues/issues#list-organization-issues-assigned-to-the-authenticated-user"
)
ISSUE_FILTERS = ("assigned", "created", "mentioned", "subscribed", "repos", "all")
DIRECTIONS = ("asc", "desc")
PAGING_PARAMS = ("page", "per_page")
ORG_ISSUE_LISTINGS_KEPT = 64  # distinct (token, filters) listings cached between mutations
LARGE_PAGE_MESSAGE = (
    "Pagination with the page parameter is not supported for large datasets, "
    "please use cursor based pagination (after/before)"
)


@dataclass
class Request:
    """What a route handler needs to know about the request."""

    method: str
    path: str
    query: dict[str, str]
    params: list[tuple[str, str]]
    token: str | None
    user: User | None  # account of the token; None when unauthenticated
    app: AppConfig | None = None  # the App whose verified JWT authenticated the request
    body: bytes = b""


@dataclass
class Response:
    """A handler's answer before the HTTP layer adds rate-limit, ETag and paging headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    last_modified: datetime | None = None
    spend: bool = True


def error(status: int, message: str, doc: str = DOCS, **extra: Any) -> Response:
    """Return GitHub's error body (``message``, ``documentation_url``, ``status``)."""
    return Response(status, {"message": message, "documentation_url": doc, "status": str(status), **extra})


def not_found() -> Response:
    """GitHub's 404 body."""
    return error(404, "Not Found", "https://docs.github.com/rest")


def _redirect(location: str) -> Response:
    """GitHub's 301 to ``location``: the header plus the body naming it as ``url``.

    https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#follow-redirects
    """
    resp = error(301, "Moved Permanently", REDIRECT_DOCS, url=location)
    resp.headers["Location"] = location
    return resp


def _invalid(field_name: str, doc: str = DOCS, message: str | None = None) -> Response:
    """GitHub's 422 "Validation Failed" for an invalid parameter of a repository listing."""
    detail: dict[str, Any] = {"resource": "Repository", "field": field_name, "code": "invalid"}
    if message:
        detail["message"] = message
    return error(422, "Validation Failed", doc, errors=[detail])


def _invalid_issue(field_name: str, doc: str = DOCS) -> Response:
    """GitHub's 422 "Validation Failed" for an invalid parameter of an issue listing."""
    return error(
        422, "Validation Failed", doc, errors=[{"resource": "Issue", "field": field_name, "code": "invalid"}]
    )


ISSUE_STATES = ("open", "closed", "all")
ISSUE_SORTS = ("created", "updated", "comments")
PULL_SORTS = ("created", "updated", "popularity", "long-running")
# Sort keys of a repository's issue listing; the number breaks ties (and keys its `after` cursors).
ISSUE_SORT_KEYS: dict[str, Callable[[Issue], tuple[Any, ...]]] = {
    "created": lambda i: (int(i.created_at.timestamp()), i.number),
    "updated": lambda i: (int(i.updated_at.timestamp()), i.number),
    "comments": lambda i: (i.comments, i.number),
    "popularity": lambda i: (i.comments, i.number),
    "long-running": lambda i: (int(i.created_at.timestamp()) * -1, i.number),
}


@dataclass(frozen=True)
class IssueQuery:
    """The validated filters of an issue or pull request listing (which items, in which order)."""

    state: str
    sort: str
    descending: bool
    pulls_only: bool
    since: datetime | None = None
    labels: frozenset[str] = frozenset()
    assignee: str | None = None
    creator: str | None = None
    head: str | None = None
    base: str | None = None

    def matches(self, i: Issue) -> bool:
        """True when issue ``i`` belongs to the listing."""
        if self.state != "all" and i.state != self.state:
            return False
        if self.pulls_only:
            if not i.is_pr:
                return False
            if self.head and self.head.split(":")[-1] != i.head_ref:
                return False
            return not self.base or i.base_ref == self.base
        if self.since is not None and i.updated_at < self.since:
            return False
        if self.labels and not self.labels <= {lab.name for lab in i.labels}:
            return False
        if self.assignee and self.assignee != "*":
            if self.assignee == "none":
                if i.assignees:
                    return False
            elif not any(a.login == self.assignee for a in i.assignees):
                return False
        return not self.creator or self.creator == "*" or i.user.login == self.creator


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _involvement(wanted: str, user: User) -> Callable[[Issue], bool]:
    """Which issues ``filter=wanted`` of ``GET /orgs/{org}/issues`` keeps for ``user``.

    https://docs.github.com/en/rest/issues/issues#list-organization-issues-assigned-to-the-authenticated-user:
    ``assigned`` to the user, ``created`` by them, ``mentioned`` (an ``@login`` in the body: the
    simulator has no comments), ``subscribed`` (choice: created, assigned or mentioned, the
    conversations GitHub subscribes a user to on its own,
    https://docs.github.com/en/account-and-profile/managing-subscriptions-and-notifications-on-github/setting-up-notifications/about-notifications),
    ``repos`` and ``all`` every one.
    """
    login = user.login.lower()
    mention = re.compile(rf"(?<![\w@])@{re.escape(login)}(?![\w-])", re.IGNORECASE)

    def assigned(i: Issue) -> bool:
        return any(a.login.lower() == login for a in i.assignees)

    def created(i: Issue) -> bool:
        return i.user.login.lower() == login

    def mentioned(i: Issue) -> bool:
        return bool(i.body) and mention.search(i.body or "") is not None

    checks: dict[str, Callable[[Issue], bool]] = {
        "assigned": assigned,
        "created": created,
        "mentioned": mentioned,
        "subscribed": lambda i: created(i) or assigned(i) or mentioned(i),
    }
    return checks.get(wanted, lambda i: True)


Handler = Callable[..., Response]


class GitHubApi:
    """Routes GitHub paths to handlers that read :class:`SimState`."""

    def __init__(
        self,
        state: SimState,
        faults: FaultConfig,
        cursor_min_items: int,
        access: AccessPolicy | None = None,
    ) -> None:
        """Create the API over a state and its fault knobs.

        ``access`` decides what each token may see; ``None`` uses the defaults of
        :class:`SimulatorConfig` (every token a member, or the owner's own for a user owner).
        """
        self.state = state
        self.access = access or AccessPolicy(
            SimulatorConfig(owner=state.owner.login, owner_type=state.owner.type), state
        )
        self.faults = faults
        self.cursor_min_items = cursor_min_items
        self.api_base = ""
        # Live repositories in each listing order, valid for one state version (_repos_sorted).
        self._sorted_repos: dict[tuple[str, bool], list[Repo]] = {}
        self._sorted_version = -1
        # Sorted GET /orgs/{org}/issues listings by (token, filters), valid for one state version.
        self._org_issues: dict[tuple[str | None, tuple[tuple[str, str], ...]], list[tuple[Repo, Issue]]] = {}
        self._org_issues_version = -1
        # The GitHub App routes (github_sim.api_apps), attached by the Simulator; they answer
        # first because a JWT may call nothing else.
        self.apps_api: AppsApi | None = None
        # The webhook delivery routes (github_sim.api_hooks), attached by the Simulator; they
        # answer before the App routes because /app/hook/deliveries is called with a JWT.
        self.hooks_api: HookDeliveriesApi | None = None
        # Paths under one repository: resolved (301 when renamed, 404 when hidden) before their
        # sub-path is routed through _repo_routes.
        self._repo_scopes: list[re.Pattern[str]] = [
            re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?$"),
            re.compile(r"^/repositories/(?P<rid>\d+)(?P<rest>/.*)?$"),
        ]
        self._routes: list[tuple[re.Pattern[str], str, Handler]] = [
            (re.compile(r"^/rate_limit$"), "/rate_limit", self.rate_limit),
            (re.compile(r"^/user$"), "/user", self.get_authenticated),
            (re.compile(r"^/user/repos$"), "/user/repos", self.list_authenticated_repos),
            (re.compile(r"^/users/(?P<login>[^/]+)$"), "/users/{username}", self.get_user),
            (re.compile(r"^/users/(?P<login>[^/]+)/repos$"), "/users/{username}/repos", self.list_user_repos),
            (re.compile(r"^/user/(?P<uid>\d+)/repos$"), "/users/{username}/repos", self.list_user_repos),
            (re.compile(r"^/orgs/(?P<login>[^/]+)$"), "/orgs/{org}", self.get_org),
            (re.compile(r"^/orgs/(?P<login>[^/]+)/repos$"), "/orgs/{org}/repos", self.list_org_repos),
            (re.compile(r"^/organizations/(?P<oid>\d+)/repos$"), "/orgs/{org}/repos", self.list_org_repos),
            (re.compile(r"^/orgs/(?P<login>[^/]+)/events$"), "/orgs/{org}/events", self.org_events),
            (re.compile(r"^/orgs/(?P<login>[^/]+)/issues$"), "/orgs/{org}/issues", self.list_org_issues),
            (re.compile(r"^/organizations/(?P<oid>\d+)/issues$"), "/orgs/{org}/issues", self.list_org_issues),
        ]
        self._repo_routes: list[tuple[re.Pattern[str], str, Handler]] = [
            (re.compile(r"^$"), "", self.get_repo),
            (re.compile(r"^/issues$"), "/issues", self.list_issues),
            (re.compile(r"^/issues/(?P<number>\d+)$"), "/issues/{issue_number}", self.get_issue),
            (re.compile(r"^/pulls$"), "/pulls", self.list_pulls),
            (re.compile(r"^/commits$"), "/commits", self.list_commits),
            (re.compile(r"^/contributors$"), "/contributors", self.list_contributors),
            (re.compile(r"^/languages$"), "/languages", self.languages),
            (re.compile(r"^/git/trees/(?P<sha>.+)$"), "/git/trees/{tree_sha}", self.get_tree),
            (re.compile(r"^/events$"), "/events", self.repo_events),
        ]

    # -- routing ---------------------------------------------------------------------------------
    def route(self, req: Request) -> tuple[str, Response]:
        """Dispatch ``req``; return (operation path template, response)."""
        if self.hooks_api is not None:
            hooked = self.hooks_api.route(req)
            if hooked is not None:
                return hooked
        if self.apps_api is not None:
            answered = self.apps_api.route(req)
            if answered is not None:
                return answered
        if req.method != "GET":
            return f"{req.method} {req.path}", error(404, "Not Found")
        for scope in self._repo_scopes:
            m = scope.match(req.path)
            if m:
                return self.repo_scope(req, **m.groupdict())
        for pattern, template, handler in self._routes:
            m = pattern.match(req.path)
            if m:
                return f"GET {template}", handler(req, **m.groupdict())
        return "GET (unknown)", not_found()

    def repo_scope(
        self,
        req: Request,
        owner: str | None = None,
        name: str | None = None,
        rid: str | None = None,
        rest: str | None = None,
    ) -> tuple[str, Response]:
        """Resolve the repository (301 if renamed, 404 if missing) then dispatch the sub-path."""
        rest = rest or ""
        found = self._repo_route(rest)
        if found is None:
            return "GET (unknown)", not_found()
        m, sub_template, handler = found
        template = f"GET /repos/{{owner}}/{{repo}}{sub_template}"
        with self.state.lock:
            if rid is not None:
                repo = self.state.repo_by_id(int(rid))
            elif owner is not None and owner.lower() == self.state.owner.login.lower() and name is not None:
                repo = self.state.repo(name)
                if repo is None:
                    moved = self.state.renamed_to(name)
                    if moved is not None and self._visible(req, moved):
                        return template, self._moved(req, moved, rest)
            else:
                repo = None
            if repo is None or not self._visible(req, repo):
                return template, not_found()
            return template, handler(req, repo, **m.groupdict())

    def _repo_route(self, rest: str) -> tuple[re.Match[str], str, Handler] | None:
        """The first route under a repository matching sub-path ``rest``: (match, template, handler)."""
        for pattern, sub_template, handler in self._repo_routes:
            m = pattern.match(rest)
            if m:
                return m, sub_template, handler
        return None

    def _moved(self, req: Request, repo: Repo, rest: str) -> Response:
        # GitHub redirects a renamed repository to its id-based URL, keeping the sub-path and query.
        location = f"{self.api_base}/repositories/{repo.id}{rest}"
        if req.params:
            location += "?" + "&".join(f"{k}={v}" for k, v in req.params)
        return _redirect(location)

    def _visible(self, req: Request, repo: Repo) -> bool:
        # A private repository exists only for tokens with access to it (the owner's own tokens,
        # members of the owner organisation); anyone else, unauthenticated callers included, gets
        # 404 for it and everything under it, as GitHub hides private resources:
        # https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#404-not-found-for-an-existing-resource
        return self.access.visible(req.token, repo)

    # -- accounts --------------------------------------------------------------------------------
    def rate_limit(self, req: Request) -> Response:
        """``GET /rate_limit``: filled in by the HTTP layer, which owns the budget."""
        return Response(200, None, spend=False)

    def get_authenticated(self, req: Request) -> Response:
        """``GET /user``: the token's account as a ``private-user``.

        The owner's own token (user owner) answers the owner, with its private repository counts
        (https://docs.github.com/en/rest/users/users#get-the-authenticated-user); any other token
        answers its deterministic pool account, which owns nothing.
        """
        if req.user is None:
            return error(
                401,
                "Requires authentication",
                "https://docs.github.com/rest/users/users#get-the-authenticated-user",
            )
        if self.access.installation_token(req.token) is not None:
            # An installation token is not a user: GitHub answers 403 (observed answer, e.g.
            # https://github.com/actions/create-github-app-token/issues/258).
            return error(
                403,
                INTEGRATION_FORBIDDEN,
                "https://docs.github.com/rest/users/users#get-the-authenticated-user",
            )
        r = self.state.renderer
        with self.state.lock:
            public, private = self._owner_repo_count(req) if req.user is self.state.owner else (0, 0)
            out = r.public_user(req.user, public)
        out.update(
            {
                "user_view_type": "private",
                "private_gists": 0,
                "total_private_repos": private,
                "owned_private_repos": private,
                "disk_usage": 0,
                "collaborators": 0,
                "two_factor_authentication": True,
                "plan": {"name": "free", "space": 976562499, "private_repos": 10000, "collaborators": 0},
            }
        )
        return Response(200, out)

    def _owner_repo_count(self, req: Request) -> tuple[int, int]:
        repos = self.state.repos()
        private = sum(1 for r in repos if r.private)
        return len(repos) - private, private

    def get_user(self, req: Request, login: str) -> Response:
        """``GET /users/{username}`` (an organisation answers too, with type Organization)."""
        with self.state.lock:
            user = self.state.user(login)
            if user is None:
                return not_found()
            public = self._owner_repo_count(req)[0] if user is self.state.owner else 0
            return Response(200, self.state.renderer.public_user(user, public))

    def get_org(self, req: Request, login: str) -> Response:
        """``GET /orgs/{org}``."""
        owner = self.state.owner
        if owner.type != "Organization" or login.lower() != owner.login.lower():
            return not_found()
        with self.state.lock:
            public, private = self._owner_repo_count(req)
            return Response(200, self.state.renderer.organization(owner, public, private))

    def _list_repos(
        self, req: Request, default_sort: str, canonical: str, public_only: bool = False
    ) -> Response:
        sort = req.query.get("sort", default_sort)
        if sort not in REPO_SORTS:
            return _invalid("sort")
        kind = req.query.get("type", "all")
        if kind == "member":
            return self._repo_page(req, lambda r: False, sort, canonical)
        by_type: dict[str, Callable[[Repo], bool]] = {
            "public": lambda r: not r.private,
            "private": lambda r: r.private,
            "forks": lambda r: r.fork,
            "sources": lambda r: not r.fork,
        }
        of_type = by_type.get(kind)
        sees_all = self._sees_every_repository(req)
        if sees_all and not public_only and of_type is None:
            return self._repo_page(req, None, sort, canonical)  # no filter: page the cached order

        def keep(r: Repo) -> bool:
            return (
                (sees_all or self._visible(req, r))
                and not (public_only and r.private)
                and (of_type is None or of_type(r))
            )

        return self._repo_page(req, keep, sort, canonical)

    def _sees_every_repository(self, req: Request) -> bool:
        # Members (or the owner's own tokens) see every repository, so a listing needs no filter;
        # an installation token sees its installation's only (access.visible decides per repo).
        return self.access.installation_token(req.token) is None and self.access.can_read_private(req.token)

    def _repos_sorted(self, sort: str, descending: bool) -> list[Repo]:
        """The live repositories in listing order, cached until the next mutation (caller holds the lock).

        Sorting 10,000 repositories for each page of a listing would cost more than the page.
        The keys are unique (ids, names), so the cached order is the order a fresh sort gives.
        """
        version = self.state.version
        if version != self._sorted_version:
            self._sorted_repos.clear()
            self._sorted_version = version
        cached = self._sorted_repos.get((sort, descending))
        if cached is None:
            cached = sorted(self.state.repos(), key=REPO_SORT_KEYS[sort], reverse=descending)
            self._sorted_repos[(sort, descending)] = cached
        return cached

    def _repo_page(
        self, req: Request, keep: Callable[[Repo], bool] | None, sort: str, canonical: str
    ) -> Response:
        # Sort (direction defaults to asc for full_name, else desc, as documented), filter, page.
        q = req.query
        direction = q.get("direction", "asc" if sort == "full_name" else "desc")
        with self.state.lock:
            ordered = self._repos_sorted(sort, direction == "desc")
            repos = ordered if keep is None else [r for r in ordered if keep(r)]
            fault = self._page_size_fault(q, None)
            if fault:
                return fault
            page = paginate(repos, q, req.params, canonical)
            body = [self.state.renderer.repository(r) for r in page.items]
        return self._page_response(body, page.link)

    def _is_the_organisation(self, login: str | None, oid: str | None) -> bool:
        """Whether ``/orgs/{login}`` or ``/organizations/{oid}`` names the simulated owner, an organisation."""
        owner = self.state.owner
        if owner.type != "Organization":
            return False
        if login is not None and login.lower() != owner.login.lower():
            return False
        return oid is None or int(oid) == owner.id

    def list_org_repos(self, req: Request, login: str | None = None, oid: str | None = None) -> Response:
        """``GET /orgs/{org}/repos`` (links use ``/organizations/{id}/repos`` as GitHub's do).

        Private repositories are listed only to tokens with access (members); outsiders and
        unauthenticated callers see the public ones
        (https://docs.github.com/en/rest/repos/repos#list-organization-repositories).
        """
        owner = self.state.owner
        if not self._is_the_organisation(login, oid):
            return not_found()
        return self._list_repos(req, "created", f"{self.api_base}/organizations/{owner.id}/repos")

    def list_user_repos(self, req: Request, login: str | None = None, uid: str | None = None) -> Response:
        """``GET /users/{username}/repos``: the owner's public repositories; other accounts own none.

        ``type`` is ``owner`` (default), ``all`` or ``member`` (always empty: only the owner's
        repositories exist).
        """
        with self.state.lock:
            user = self.state.user(login) if login is not None else None
            if uid is not None:
                user = (
                    self.state.owner
                    if int(uid) == self.state.owner.id
                    else next((u for u in self.state.data.users if u.id == int(uid)), None)
                )
        if user is None:
            return not_found()
        if user is not self.state.owner:
            return self._page_response([], None)
        # "Lists public repositories for the specified user", whoever asks, the user themself with
        # their own token included (private ones come from GET /user/repos):
        # https://docs.github.com/en/rest/repos/repos#list-repositories-for-a-user
        return self._list_repos(req, "full_name", f"{self.api_base}/user/{user.id}/repos", public_only=True)

    def list_authenticated_repos(self, req: Request) -> Response:
        """``GET /user/repos``: repositories the token's account has explicit permission to access.

        https://docs.github.com/en/rest/repos/repos#list-repositories-for-the-authenticated-user
        Private ones included. Only the owner's repositories exist in the simulator, so the owner's
        own token (user owner, ``affiliation`` with ``owner``) and the tokens of organisation
        members (``affiliation`` with ``organization_member``) list them; every other token owns
        nothing and gets ``[]``.
        """
        if req.user is None:
            # https://docs.github.com/en/rest/repos/repos#list-repositories-for-the-authenticated-user
            # answers 401 "Requires authentication" without a token.
            return error(401, "Requires authentication", USER_REPOS_DOCS)
        if self.access.installation_token(req.token) is not None:
            # No user behind an installation token (https://github.com/PyGithub/PyGithub/issues/2372).
            return error(403, INTEGRATION_FORBIDDEN, USER_REPOS_DOCS)
        q = req.query
        if "type" in q and ("visibility" in q or "affiliation" in q):
            # `type`: "Will cause a 422 error if used in the same request as visibility or
            # affiliation." (https://docs.github.com/en/rest/repos/repos#list-repositories-for-the-authenticated-user)
            return _invalid(
                "type",
                USER_REPOS_DOCS,
                message="If you specify visibility or affiliation, you cannot specify type.",
            )
        if "type" in q:
            if q["type"] not in USER_REPO_TYPES:
                return _invalid("type", USER_REPOS_DOCS)
            visibility, affiliations = USER_REPO_TYPES[q["type"]]
        else:
            visibility = q.get("visibility", "all")
            if visibility not in VISIBILITIES:
                return _invalid("visibility", USER_REPOS_DOCS)
            raw = q.get("affiliation", ",".join(AFFILIATIONS))
            affiliations = tuple(a.strip() for a in raw.split(",") if a.strip())
            if not affiliations or any(a not in AFFILIATIONS for a in affiliations):
                return _invalid("affiliation", USER_REPOS_DOCS)
        sort = q.get("sort", "full_name")
        if sort not in REPO_SORTS:
            return _invalid("sort", USER_REPOS_DOCS)
        access = self.access
        # The owner's own token owns every repository; a member reaches them through the
        # organisation; nobody is a collaborator of anything in the simulator.
        reachable = ("owner" in affiliations and access.is_owner(req.token)) or (
            "organization_member" in affiliations and access.is_member(req.token)
        )
        since, before = _parse_time(q.get("since")), _parse_time(q.get("before"))

        def keep(r: Repo) -> bool:
            return (
                reachable
                and self._visible(req, r)
                and (visibility == "all" or r.private == (visibility == "private"))
                and (since is None or r.updated_at > since)
                and (before is None or r.updated_at < before)
            )

        return self._repo_page(req, keep, sort, f"{self.api_base}/user/repos")

    # -- repository ------------------------------------------------------------------------------
    def get_repo(self, req: Request, repo: Repo) -> Response:
        """``GET /repos/{owner}/{repo}`` (``full-repository``)."""
        return Response(200, self.state.renderer.repository(repo, full=True), last_modified=repo.updated_at)

    @staticmethod
    def _issue_query(
        q: dict[str, str], pulls_only: bool, per_repository: bool = True
    ) -> IssueQuery | Response:
        """Validate the parameters of an issue (or pull request) listing; 422 as GitHub words it.

        ``per_repository`` admits the parameters only a repository's listing documents
        (``assignee``, ``creator``; ``head``, ``base`` for pulls).
        """
        state = q.get("state", "open")
        if state not in ISSUE_STATES:
            return _invalid_issue("state")
        sort = q.get("sort", "created")
        if sort not in (PULL_SORTS if pulls_only else ISSUE_SORTS):
            return _invalid_issue("sort")
        wanted = frozenset(name.strip() for name in q.get("labels", "").split(",") if name.strip())
        return IssueQuery(
            state=state,
            sort=sort,
            descending=q.get("direction", "desc") != "asc",
            pulls_only=pulls_only,
            since=None if pulls_only else _parse_time(q.get("since")),
            labels=frozenset() if pulls_only else wanted,
            assignee=q.get("assignee") if per_repository and not pulls_only else None,
            creator=q.get("creator") if per_repository and not pulls_only else None,
            head=q.get("head") if per_repository and pulls_only else None,
            base=q.get("base") if per_repository and pulls_only else None,
        )

    def _issues_sorted(
        self, req: Request, repo: Repo, pulls_only: bool
    ) -> tuple[list[Issue], Callable[[Issue], tuple[Any, ...]], bool] | Response:
        query = self._issue_query(req.query, pulls_only)
        if isinstance(query, Response):
            return query
        items = [i for i in repo.issues.values() if query.matches(i)]
        key = ISSUE_SORT_KEYS[query.sort]
        items.sort(key=key, reverse=query.descending)
        return items, key, query.descending

    def list_issues(self, req: Request, repo: Repo) -> Response:
        """``GET /repos/{owner}/{repo}/issues``; PRs included with the ``pull_request`` key.

        Large listings page with opaque ``after`` cursors and ``page`` > 100 is refused with 422,
        as GitHub does.
        """
        q = req.query
        if "page" in q and page_of(q) > MAX_ISSUE_PAGE:
            return error(
                422, LARGE_PAGE_MESSAGE, "https://docs.github.com/rest/issues/issues#list-repository-issues"
            )
        fault = self._page_size_fault(q, repo)
        if fault:
            return fault
        result = self._issues_sorted(req, repo, pulls_only=False)
        if isinstance(result, Response):
            return result
        items, key, descending = result
        canonical = f"{self.api_base}/repositories/{repo.id}/issues"
        use_cursor = bool(q.get("after") or q.get("before")) or (
            "page" not in q and len(items) > self.cursor_min_items
        )
        try:
            if use_cursor:
                page = paginate_cursor(items, key, descending, q, req.params, canonical)
            else:
                page = paginate(items, q, req.params, canonical)
        except PaginationError as exc:
            return error(422, str(exc), "https://docs.github.com/rest/issues/issues#list-repository-issues")
        body = [self.state.renderer.issue(repo, i) for i in page.items]
        return self._page_response(body, page.link)

    def list_org_issues(self, req: Request, login: str | None = None, oid: str | None = None) -> Response:
        """``GET /orgs/{org}/issues``: issues and PRs of the organisation's repositories for the token's user.

        https://docs.github.com/en/rest/issues/issues#list-organization-issues-assigned-to-the-authenticated-user
        ``filter`` (default ``assigned``) picks the user's part; ``state``, ``labels``, ``sort``,
        ``direction`` and ``since`` work as in a repository's listing (same validation, same
        matching); every item embeds its ``repository``. The repositories are those the token
        sees (an outsider sees the public ones; archived ones are listed too). Links use
        ``/organizations/{id}/issues``, as the repository listing's use ``/organizations/{id}/repos``.
        """
        owner = self.state.owner
        if not self._is_the_organisation(login, oid):
            return not_found()
        if req.user is None:
            return error(401, "Requires authentication", ORG_ISSUES_DOCS)
        if self.access.installation_token(req.token) is not None:
            # GitHub's description of the operation says `"enabledForGitHubApps": false` and its
            # "Fine-grained access tokens" box lists no installation access token (user access
            # tokens and fine-grained PATs only): an installation is no user to assign issues to.
            # https://docs.github.com/en/rest/issues/issues#list-organization-issues-assigned-to-the-authenticated-user
            return error(403, INTEGRATION_FORBIDDEN, ORG_ISSUES_DOCS)
        q = req.query
        wanted = q.get("filter", "assigned")
        if wanted not in ISSUE_FILTERS:
            return _invalid_issue("filter", ORG_ISSUES_DOCS)
        if q.get("direction", "desc") not in DIRECTIONS:
            return _invalid_issue("direction", ORG_ISSUES_DOCS)
        query = self._issue_query(q, pulls_only=False, per_repository=False)
        if isinstance(query, Response):
            return query
        fault = self._page_size_fault(q, None)
        if fault:
            return fault
        user = req.user
        involved = _involvement(wanted, user)
        by_key = ISSUE_SORT_KEYS[query.sort]

        def key(item: tuple[Repo, Issue]) -> tuple[Any, ...]:
            # Issue numbers repeat across repositories; the issue id breaks ties across the org.
            return (*by_key(item[1])[:-1], item[1].id)

        with self.state.lock:
            # One listing, many pages: keep the sorted listing of this token and these filters
            # until the next mutation rather than walk every issue of the org for each page.
            version = self.state.version
            if version != self._org_issues_version or len(self._org_issues) >= ORG_ISSUE_LISTINGS_KEPT:
                self._org_issues.clear()
                self._org_issues_version = version
            listing = (req.token, tuple(sorted((k, v) for k, v in q.items() if k not in PAGING_PARAMS)))
            items = self._org_issues.get(listing)
            if items is None:
                items = [
                    (repo, issue)
                    for repo in self.state.repos()
                    if self._visible(req, repo)
                    for issue in repo.issues.values()
                    if query.matches(issue) and involved(issue)
                ]
                if "type" in q:
                    # `type` names an issue type; the simulated issues have none, so none matches.
                    items = []
                items.sort(key=key, reverse=query.descending)
                self._org_issues[listing] = items
            page = paginate(items, q, req.params, f"{self.api_base}/organizations/{owner.id}/issues")
            r = self.state.renderer
            # The rendered issue is shared (cached); each item is a new dict with its repository.
            body = [{**r.issue(repo, issue), "repository": r.repository(repo)} for repo, issue in page.items]
        return self._page_response(body, page.link)

    def get_issue(self, req: Request, repo: Repo, number: str) -> Response:
        """``GET /repos/{owner}/{repo}/issues/{number}``."""
        n = int(number)
        issue = repo.issues.get(n)
        if issue is None:
            return self._vanished_issue(req, repo, n)
        return Response(200, self.state.renderer.issue(repo, issue), last_modified=issue.updated_at)

    def _vanished_issue(self, req: Request, repo: Repo, number: int) -> Response:
        # "The API returns a 301 Moved Permanently status if the issue was transferred to another
        # repository. If the issue was transferred to or deleted from a repository where the
        # authenticated user lacks read access, the API returns a 404 Not Found status. If the issue
        # was deleted from a repository where the authenticated user has read access, the API
        # returns a 410 Gone status." (https://docs.github.com/en/rest/issues/issues#get-an-issue)
        # The caller can read ``repo`` (repo_scope checked); the target's visibility is checked here.
        if self.state.issue_deleted(repo, number):
            return error(410, "This issue was deleted", GET_ISSUE_DOCS)
        moved = self.state.issue_transferred_to(repo, number)
        if moved is None or not self._visible(req, moved[0]):
            return not_found()
        target, new_number = moved
        # The Location is the issue's new `url` (its API URL in the target repository).
        return _redirect(f"{self.api_base}/repos/{self.state.owner.login}/{target.name}/issues/{new_number}")

    def list_pulls(self, req: Request, repo: Repo) -> Response:
        """``GET /repos/{owner}/{repo}/pulls``."""
        fault = self._page_size_fault(req.query, repo)
        if fault:
            return fault
        result = self._issues_sorted(req, repo, pulls_only=True)
        if isinstance(result, Response):
            return result
        items = result[0]
        page = paginate(items, req.query, req.params, f"{self.api_base}/repositories/{repo.id}/pulls")
        body = [self.state.renderer.pull_request(repo, i) for i in page.items]
        return self._page_response(body, page.link)

    def list_commits(self, req: Request, repo: Repo) -> Response:
        """``GET /repos/{owner}/{repo}/commits`` (409 for an empty repository)."""
        if not repo.commits:
            return error(409, EMPTY_REPO_MESSAGE, "https://docs.github.com/rest/commits/commits#list-commits")
        q = req.query
        fault = self._page_size_fault(q, repo)
        if fault:
            return fault
        commits = repo.commits
        sha = q.get("sha")
        if sha and sha not in (repo.default_branch, "HEAD"):
            start = next((n for n, c in enumerate(commits) if c.sha.startswith(sha)), None)
            if start is None:
                return error(
                    404,
                    "No commit found for SHA: " + sha,
                    "https://docs.github.com/rest/commits/commits#list-commits",
                )
            commits = commits[start:]
        since, until = _parse_time(q.get("since")), _parse_time(q.get("until"))
        if since or until:
            commits = [
                c
                for c in commits
                if (since is None or c.date >= since) and (until is None or c.date <= until)
            ]
        if q.get("author"):
            who = q["author"]
            commits = [c for c in commits if (c.author and c.author.login == who) or c.author_email == who]
        page = paginate(commits, q, req.params, f"{self.api_base}/repositories/{repo.id}/commits")
        body = [self.state.renderer.commit(repo, c) for c in page.items]
        return self._page_response(body, page.link)

    def list_contributors(self, req: Request, repo: Repo) -> Response:
        """``GET /repos/{owner}/{repo}/contributors`` (``anon=1`` adds e-mails without an account)."""
        if not repo.commits:
            return Response(204, None)  # GitHub answers an empty repository with 204 No Content
        anon = req.query.get("anon", "").lower() in ("1", "true")
        users: Counter[int] = Counter()
        by_id: dict[int, User] = {}
        anonymous: Counter[tuple[str, str]] = Counter()
        for c in repo.commits:
            if c.author is not None:
                users[c.author.id] += 1
                by_id[c.author.id] = c.author
            else:
                anonymous[(c.author_name, c.author_email)] += 1
        r = self.state.renderer
        entries: list[tuple[int, int, dict[str, Any]]] = [
            (n, uid, r.contributor(by_id[uid], n)) for uid, n in users.items()
        ]
        if anon:
            entries += [
                (n, 0, r.anonymous_contributor(name, email, n)) for (name, email), n in anonymous.items()
            ]
        entries.sort(key=lambda e: (-e[0], e[1]))
        page = paginate(
            [e[2] for e in entries],
            req.query,
            req.params,
            f"{self.api_base}/repositories/{repo.id}/contributors",
        )
        return self._page_response(page.items, page.link)

    def languages(self, req: Request, repo: Repo) -> Response:
        """``GET /repos/{owner}/{repo}/languages``: bytes per language."""
        return Response(200, dict(repo.languages))

    def get_tree(self, req: Request, repo: Repo, sha: str) -> Response:
        """``GET /repos/{owner}/{repo}/git/trees/{sha}`` (branch name, HEAD or tree/commit SHA)."""
        if not repo.commits:
            return error(409, EMPTY_REPO_MESSAGE, "https://docs.github.com/rest/git/trees#get-a-tree")
        head = repo.commits[0]
        if sha not in (repo.default_branch, "HEAD", head.sha, head.tree_sha):
            sub = next((e for e in repo.tree if e.type == "tree" and e.sha == sha), None)
            if sub is None:
                return not_found()
            prefix = sub.path + "/"
            entries = [e for e in repo.tree if e.path.startswith(prefix)]
            entries = [type(e)(e.path[len(prefix) :], e.type, e.sha, e.size, e.mode) for e in entries]
            tree_sha = sub.sha
        else:
            entries = repo.tree
            tree_sha = head.tree_sha
        if req.query.get("recursive", "") in ("", "0", "false"):
            entries = [e for e in entries if "/" not in e.path]
        return Response(200, self.state.renderer.tree(repo, tree_sha, entries))

    # -- events ----------------------------------------------------------------------------------
    def _events(self, req: Request, repo_ids: set[int] | None, canonical: str) -> Response:
        with self.state.lock:
            # Events of private repositories the caller cannot see are hidden like the
            # repositories themselves (deleted repositories included).
            hidden = {r.id for r in self.state.data.repos if not self._visible(req, r)}
            events = [
                e
                for e in self.state.events.newest_first()
                if (repo_ids is None or e.repo_id in repo_ids) and e.repo_id not in hidden
            ]
            events = events[:MAX_EVENTS]
            page = paginate(events, req.query, req.params, canonical)
            body = []
            for e in page.items:
                repo = self.state.repo_by_id(e.repo_id)
                name = (
                    f"{self.state.owner.login}/{repo.name}" if repo else f"{self.state.owner.login}/deleted"
                )
                actor = e.actor
                out = {
                    "id": str(e.id),
                    "type": e.type,
                    "actor": {
                        "id": actor.id,
                        "login": actor.login,
                        "display_login": actor.login,
                        "gravatar_id": "",
                        "url": f"{self.api_base}/users/{actor.login}",
                        "avatar_url": f"https://avatars.githubusercontent.com/u/{actor.id}?",
                    },
                    "repo": {"id": e.repo_id, "name": name, "url": f"{self.api_base}/repos/{name}"},
                    "payload": e.payload,
                    "public": repo is None or not repo.private,
                    "created_at": iso(e.created_at),
                }
                if self.state.owner.type == "Organization":
                    owner = self.state.owner
                    out["org"] = {
                        "id": owner.id,
                        "login": owner.login,
                        "gravatar_id": "",
                        "url": f"{self.api_base}/orgs/{owner.login}",
                        "avatar_url": f"https://avatars.githubusercontent.com/u/{owner.id}?",
                    }
                body.append(out)
        return self._page_response(body, page.link)

    def org_events(self, req: Request, login: str) -> Response:
        """``GET /orgs/{org}/events``: the last 300 events of the organisation."""
        owner = self.state.owner
        if owner.type != "Organization" or login.lower() != owner.login.lower():
            return not_found()
        return self._events(req, None, f"{self.api_base}/organizations/{owner.id}/events")

    def repo_events(self, req: Request, repo: Repo) -> Response:
        """``GET /repos/{owner}/{repo}/events``."""
        return self._events(req, {repo.id}, f"{self.api_base}/repositories/{repo.id}/events")

    # -- shared ----------------------------------------------------------------------------------
    def _page_size_fault(self, q: dict[str, str], repo: Repo | None) -> Response | None:
        limit = self.faults.max_page_size_before_502
        if limit is None or "per_page" not in q or per_page_of(q) <= limit:
            return None
        targets = self.faults.page_size_repos
        if targets is not None and (repo is None or repo.name not in targets):
            return None
        status = self.faults.page_size_status
        if status == 504:
            return Response(
                504,
                {
                    "message": "We couldn't respond to your request in time. Sorry about that. "
                    "Please try resubmitting your request and contact us if the problem persists."
                },
            )
        return Response(status, {"message": "Server Error"})

    @staticmethod
    def _page_response(body: list[Any], link: str | None) -> Response:
        resp = Response(200, body)
        if link:
            resp.headers["Link"] = link
        return resp
