"""GitHub App endpoints: the App itself, its installations, installation tokens and repositories.

Owns the routes and bodies of the operations an App calls with its JWT (``/app``,
``/app/installations...``, ``/orgs|users|repos/.../installation``) and the one an installation
token calls (``GET /installation/repositories``), and who may call them: a JWT reaches only
these App routes. It must not verify JWTs or tokens (the HTTP layer does, with
:mod:`github_sim.apps`), nor rate-limit or write headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from github_sim.api import INTEGRATION_FORBIDDEN, GitHubApi, Request, Response, error, not_found
from github_sim.apps import TokenRequestError, installation_rate_limit
from github_sim.config import DATA_ANCHOR, AppConfig, InstallationConfig
from github_sim.pagination import paginate
from github_sim.records import Repo, User
from github_sim.render import iso, node_id

APPS_DOCS = "https://docs.github.com/rest/apps/apps"
INSTALLATION_REPOS_DOCS = (
    "https://docs.github.com/rest/apps/installations#list-repositories-accessible-to-the-app-installation"
)
TOKEN_DOCS = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"
# GitHub's answer to an installation listing without an installation token.
NOT_INSTALLATION_TOKEN = "You must authenticate with an installation access token in order to list repositories for an installation."
REPOS_NOT_ACCESSIBLE = (
    "There is at least one repository that does not exist or is not accessible to the parent installation."
)
# Fixed creation dates (the data set is deterministic; "now" would change every run).
APP_CREATED_AT = DATA_ANCHOR - timedelta(days=400)
INSTALLED_AT = DATA_ANCHOR - timedelta(days=300)

AppHandler = Callable[..., Response]


class AppsApi:
    """The App routes of a :class:`~github_sim.api.GitHubApi` (which it shares state and paging with)."""

    def __init__(self, api: GitHubApi) -> None:
        """Serve the App routes next to ``api``."""
        self.api = api
        self.state = api.state
        # (method, pattern, template, handler). JWT-only, except /installation/repositories.
        self._jwt_routes: list[tuple[str, re.Pattern[str], str, AppHandler]] = [
            ("GET", re.compile(r"^/app$"), "/app", self.get_app),
            ("GET", re.compile(r"^/app/installations$"), "/app/installations", self.list_installations),
            (
                "GET",
                re.compile(r"^/app/installations/(?P<iid>\d+)$"),
                "/app/installations/{installation_id}",
                self.get_installation,
            ),
            (
                "POST",
                re.compile(r"^/app/installations/(?P<iid>\d+)/access_tokens$"),
                "/app/installations/{installation_id}/access_tokens",
                self.create_token,
            ),
            (
                "GET",
                re.compile(r"^/orgs/(?P<login>[^/]+)/installation$"),
                "/orgs/{org}/installation",
                self.org_installation,
            ),
            (
                "GET",
                re.compile(r"^/users/(?P<login>[^/]+)/installation$"),
                "/users/{username}/installation",
                self.user_installation,
            ),
            (
                "GET",
                re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/installation$"),
                "/repos/{owner}/{repo}/installation",
                self.repo_installation,
            ),
        ]
        self._installation_repos = re.compile(r"^/installation/repositories$")

    # -- routing ---------------------------------------------------------------------------------
    def route(self, req: Request) -> tuple[str, Response] | None:
        """Answer ``req`` if it is an App request or an App route; ``None`` lets the API route it."""

        if self._installation_repos.match(req.path) and req.method == "GET":
            return "GET /installation/repositories", self.list_installation_repos(req)
        for method, pattern, template, handler in self._jwt_routes:
            m = pattern.match(req.path)
            if m is None or method != req.method:
                continue
            if req.app is None:
                # A JWT-only route with anything else than a JWT, as GitHub answers it.
                return f"{method} {template}", error(401, "A JSON web token could not be decoded", APPS_DOCS)
            return f"{method} {template}", handler(req, **m.groupdict())
        if req.app is not None and req.path != "/rate_limit":
            # Choice: an App's JWT calling a non-App route answers 403 "Resource not accessible by
            # integration" (GitHub's answer when an App lacks access); a JWT "can only be used to
            # call the App endpoints" (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/about-authentication-with-a-github-app).
            return f"{req.method} (app jwt)", error(
                403, INTEGRATION_FORBIDDEN, "https://docs.github.com/rest"
            )
        return None

    # -- bodies ----------------------------------------------------------------------------------
    def _account(self, login: str) -> User:
        return self.api.access.user_named(login)

    def _app_body(self, app: AppConfig) -> dict[str, Any]:
        # The ``integration`` schema: https://docs.github.com/en/rest/apps/apps#get-the-authenticated-app
        r = self.state.renderer
        permissions: dict[str, str] = {}
        for inst in app.installations:
            permissions.update(inst.permissions)
        return {
            "id": app.app_id,
            "slug": app.slug,
            "client_id": app.client_id,
            "node_id": node_id("Integration", app.app_id),
            "owner": r.simple_user(self.state.owner),
            "name": app.name,
            "description": "",
            "external_url": f"{r.html}/{self.state.owner.login}",
            "html_url": f"{r.html}/apps/{app.slug}",
            "created_at": iso(APP_CREATED_AT),
            "updated_at": iso(APP_CREATED_AT),
            "permissions": permissions,
            "events": [],
            "installations_count": len(app.installations),
        }

    def _installation_body(self, app: AppConfig, inst: InstallationConfig) -> dict[str, Any]:
        # The ``installation`` schema: https://docs.github.com/en/rest/apps/apps#get-an-installation-for-the-authenticated-app
        r = self.state.renderer
        account = self._account(inst.account)
        settings = (
            f"{r.html}/organizations/{account.login}/settings/installations/{inst.installation_id}"
            if account.type == "Organization"
            else f"{r.html}/settings/installations/{inst.installation_id}"
        )
        return {
            "id": inst.installation_id,
            "account": r.simple_user(account),
            "repository_selection": inst.repository_selection,
            "access_tokens_url": f"{self.api.api_base}/app/installations/{inst.installation_id}/access_tokens",
            "repositories_url": f"{self.api.api_base}/installation/repositories",
            "html_url": settings,
            "app_id": app.app_id,
            "client_id": app.client_id,
            "app_slug": app.slug,
            "target_id": account.id,
            "target_type": account.type,
            "permissions": dict(inst.permissions),
            "events": [],
            "created_at": iso(INSTALLED_AT),
            "updated_at": iso(INSTALLED_AT),
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def installation_repos(self, inst: InstallationConfig) -> list[Repo]:
        """Live repositories the installation reaches (its account's, all or selected), by id."""
        if inst.account.lower() != self.state.owner.login.lower():
            return []
        with self.state.lock:
            repos = self.state.repos()
        if inst.repository_selection == "selected":
            wanted = set(inst.repositories)
            repos = [r for r in repos if r.name in wanted]
        return sorted(repos, key=lambda r: r.id)

    def rate_limit(self, installation_id: int) -> int | None:
        """The primary limit of ``installation_id`` now (``None`` for an unknown one)."""
        found = self.api.access.apps.installation(installation_id) if self.api.access.apps else None
        if found is None:
            return None
        inst = found[1]
        organization = self._account(inst.account).type == "Organization"
        return installation_rate_limit(len(self.installation_repos(inst)), inst.users, organization)

    def _own_installation(self, req: Request, iid: int) -> tuple[AppConfig, InstallationConfig] | None:
        apps = self.api.access.apps
        found = apps.installation(iid) if apps is not None else None
        if found is None or req.app is None or found[0].app_id != req.app.app_id:
            return None
        return found

    # -- handlers --------------------------------------------------------------------------------
    def get_app(self, req: Request) -> Response:
        """``GET /app``: https://docs.github.com/en/rest/apps/apps#get-the-authenticated-app"""

        assert req.app is not None
        return Response(200, self._app_body(req.app))

    def list_installations(self, req: Request) -> Response:
        """``GET /app/installations``, paged like other listings:
        https://docs.github.com/en/rest/apps/apps#list-installations-for-the-authenticated-app"""
        assert req.app is not None
        app = req.app
        items = sorted(app.installations, key=lambda i: i.installation_id)
        page = paginate(items, req.query, req.params, f"{self.api.api_base}/app/installations")
        return self.api._page_response([self._installation_body(app, i) for i in page.items], page.link)

    def get_installation(self, req: Request, iid: str) -> Response:
        """``GET /app/installations/{installation_id}`` (404 for another App's or an unknown one):
        https://docs.github.com/en/rest/apps/apps#get-an-installation-for-the-authenticated-app"""

        found = self._own_installation(req, int(iid))
        if found is None:
            return not_found()
        return Response(200, self._installation_body(*found))

    def _installation_on(self, req: Request, login: str, organization_only: bool) -> Response:

        assert req.app is not None
        for inst in req.app.installations:
            if inst.account.lower() != login.lower():
                continue
            if organization_only and self._account(inst.account).type != "Organization":
                break
            return Response(200, self._installation_body(req.app, inst))
        return not_found()

    def org_installation(self, req: Request, login: str) -> Response:
        """``GET /orgs/{org}/installation``: 404 unless installed on that organisation:
        https://docs.github.com/en/rest/apps/apps#get-an-organization-installation-for-the-authenticated-app"""
        return self._installation_on(req, login, organization_only=True)

    def user_installation(self, req: Request, login: str) -> Response:
        """``GET /users/{username}/installation``: https://docs.github.com/en/rest/apps/apps#get-a-user-installation-for-the-authenticated-app

        Choice: answered for an organisation login too, as ``/users/{username}`` answers
        organisations (clients such as actions/create-github-app-token look owners up this way).
        """
        return self._installation_on(req, login, organization_only=False)

    def repo_installation(self, req: Request, owner: str, name: str) -> Response:
        """``GET /repos/{owner}/{repo}/installation``: the installation reaching that repository:
        https://docs.github.com/en/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app"""

        assert req.app is not None
        for inst in req.app.installations:
            if inst.account.lower() == owner.lower() and any(
                r.name.lower() == name.lower() for r in self.installation_repos(inst)
            ):
                return Response(200, self._installation_body(req.app, inst))
        return not_found()

    def create_token(self, req: Request, iid: str) -> Response:
        """``POST /app/installations/{installation_id}/access_tokens`` -> 201:
        https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app

        The optional body's ``permissions`` must be granted to the installation (else 422);
        ``repositories`` (names) or ``repository_ids`` restrict the token to those repositories
        of the installation (else 422).
        """

        apps = self.api.access.apps
        found = self._own_installation(req, int(iid))
        if found is None or apps is None:
            return not_found()
        _, inst = found
        try:
            body = json.loads(req.body) if req.body.strip() else {}
        except ValueError:
            return error(400, "Problems parsing JSON", TOKEN_DOCS)
        if not isinstance(body, dict):
            return error(400, "Problems parsing JSON", TOKEN_DOCS)
        permissions = body.get("permissions")
        if permissions is not None and not (
            isinstance(permissions, dict) and all(isinstance(v, str) for v in permissions.values())
        ):
            return error(422, "Invalid request.", TOKEN_DOCS)
        names, ids = body.get("repositories"), body.get("repository_ids")
        reachable = self.installation_repos(inst)
        chosen: list[Repo] | None = None
        if names is not None or ids is not None:
            by_name = {r.name.lower(): r for r in reachable}
            by_id = {r.id: r for r in reachable}
            try:
                picked = [by_name[str(n).lower()] for n in names or []]
                picked += [by_id[int(i)] for i in ids or []]
            except (KeyError, TypeError, ValueError):
                return error(422, REPOS_NOT_ACCESSIBLE, TOKEN_DOCS)
            chosen = sorted({r.id: r for r in picked}.values(), key=lambda r: r.id)
        try:
            issued = apps.issue(
                inst.installation_id,
                permissions,
                frozenset(r.id for r in chosen) if chosen is not None else None,
            )
        except TokenRequestError as exc:
            return error(422, str(exc), TOKEN_DOCS)
        out: dict[str, Any] = {
            "token": issued.token,
            "expires_at": iso(issued.expires_at),
            "permissions": dict(issued.permissions),
            "repository_selection": "selected" if chosen is not None else inst.repository_selection,
        }
        if chosen is not None:
            with self.state.lock:
                out["repositories"] = [self.state.renderer.repository(r) for r in chosen]
        return Response(201, out, spend=False)

    def list_installation_repos(self, req: Request) -> Response:
        """``GET /installation/repositories`` with an installation token (403 for other tokens):
        https://docs.github.com/en/rest/apps/installations#list-repositories-accessible-to-the-app-installation"""

        if req.token is None:
            return error(401, "Requires authentication", INSTALLATION_REPOS_DOCS)
        issued = self.api.access.installation_token(req.token)
        apps = self.api.access.apps
        found = apps.installation(issued.installation_id) if issued is not None and apps is not None else None
        if issued is None or found is None:
            return error(403, NOT_INSTALLATION_TOKEN, INSTALLATION_REPOS_DOCS)
        inst = found[1]
        repos = [r for r in self.installation_repos(inst) if self.api.access.installation_covers(issued, r)]
        selection = "selected" if issued.repository_ids is not None else inst.repository_selection
        page = paginate(repos, req.query, req.params, f"{self.api.api_base}/installation/repositories")
        with self.state.lock:
            body = {
                "total_count": len(repos),
                "repository_selection": selection,
                "repositories": [self.state.renderer.repository(r) for r in page.items],
            }
        resp = Response(200, body)
        if page.link:
            resp.headers["Link"] = page.link
        return resp
