"""Webhook delivery endpoints: list a hook's recent deliveries, get one, ask for a redelivery.

Owns the routes and bodies of the nine operations over the simulator's one hook
(:data:`~github_sim.webhooks.HOOK_ID`; which hook it is for which owner is said in
:mod:`github_sim.webhooks`):

* ``/orgs/{org}/hooks/{hook_id}/deliveries[/{delivery_id}[/attempts]]``, organisation owner only;
* ``/repos/{owner}/{repo}/hooks/{hook_id}/deliveries[...]``, user owner only, that repository's
  deliveries;
* ``/app/hook/deliveries[...]``, an App's JWT only, the deliveries of its installations;

and who may call them. It must not deliver anything or keep the log (the
:class:`~github_sim.webhooks.WebhookEmitter` does), authenticate, rate-limit or write headers.

Who may: "You must be an organization owner to use this endpoint"
(https://docs.github.com/en/rest/orgs/webhooks#list-deliveries-for-an-organization-webhook) and,
for a repository hook, admin access to the repository
(https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks).
The simulator's access model cannot tell an organisation's owners from its members, so every
member token counts as an owner; on a user owner's repository only the owner's own tokens are
admins. Everyone else, unauthenticated callers included, gets 404: GitHub documents only 404 for
its hook operations and hides what a caller may not administer
(https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#404-not-found-for-an-existing-resource).
An installation token needs the ``organization_hooks`` / ``repository_hooks`` permission (``read``
to look, ``write`` to redeliver), else 403 as for any integration lacking a permission.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from github_sim.api import INTEGRATION_FORBIDDEN, GitHubApi, Request, Response, error, not_found
from github_sim.pagination import PaginationError, paginate_id_cursor
from github_sim.records import Repo
from github_sim.render import iso
from github_sim.webhooks import HOOK_ID, HookDelivery, WebhookEmitter

ORG_DOCS = "https://docs.github.com/rest/orgs/webhooks"
REPO_DOCS = "https://docs.github.com/rest/repos/webhooks"
APP_DOCS = "https://docs.github.com/rest/apps/webhooks"
# `status` of a listing: "A status of success returns deliveries with a status_code in the
# 200-399 range (inclusive). A status of failure returns deliveries with a status_code in the
# 400-599 range (inclusive)." (https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook)
STATUS_FILTERS: dict[str, range] = {"success": range(200, 400), "failure": range(400, 600)}
# Fine-grained permissions an installation token needs on each kind of hook.
ORG_HOOKS_PERMISSION = "organization_hooks"
REPO_HOOKS_PERMISSION = "repository_hooks"
WRITE = "write"
# GitHub's answer to a JWT-only route called without a JWT (as github_sim.api_apps answers it).
NO_JWT_MESSAGE = "A JSON web token could not be decoded"

_TAIL = r"/deliveries(?:/(?P<delivery_id>[^/]+)(?P<attempts>/attempts)?)?$"
ORG_ROUTE = re.compile(r"^/orgs/(?P<org>[^/]+)/hooks/(?P<hook_id>[^/]+)" + _TAIL)
REPO_ROUTE = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/hooks/(?P<hook_id>[^/]+)" + _TAIL)
APP_ROUTE = re.compile(r"^/app/hook" + _TAIL)

# Which deliveries of the log a scope shows.
Keep = Callable[[HookDelivery], bool]


def delivery_item(d: HookDelivery) -> dict[str, Any]:
    """The ``hook-delivery-item`` body of a listing."""
    return {
        "id": d.id,
        "guid": d.guid,
        "delivered_at": iso(d.delivered_at),
        "redelivery": d.redelivery,
        "duration": d.duration,
        "status": d.status,
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
        "throttled_at": None,
    }


def delivery_body(d: HookDelivery) -> dict[str, Any]:
    """The ``hook-delivery`` body of ``GET .../deliveries/{delivery_id}``: the item, the request and the answer."""
    return {
        **delivery_item(d),
        "url": d.url,
        "request": {"headers": dict(d.request_headers), "payload": d.payload},
        "response": {"headers": dict(d.response_headers), "payload": d.response_body},
    }


class HookDeliveriesApi:
    """The delivery routes of a :class:`~github_sim.api.GitHubApi` over the log of a :class:`WebhookEmitter`."""

    def __init__(self, api: GitHubApi, emitter: WebhookEmitter) -> None:
        """Serve the deliveries ``emitter`` recorded, with the access rules of ``api``."""
        self.api = api
        self.state = api.state
        self.emitter = emitter

    # -- routing ---------------------------------------------------------------------------------
    def route(self, req: Request) -> tuple[str, Response] | None:
        """Answer ``req`` if it is a delivery route; ``None`` lets the API route it."""
        for pattern, template, scope in (
            (APP_ROUTE, "/app/hook/deliveries", self._app_scope),
            (ORG_ROUTE, "/orgs/{org}/hooks/{hook_id}/deliveries", self._org_scope),
            (REPO_ROUTE, "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries", self._repo_scope),
        ):
            m = pattern.match(req.path)
            if m is None:
                continue
            groups = m.groupdict()
            delivery_id, attempts = groups.pop("delivery_id"), groups.pop("attempts")
            method = "POST" if attempts else "GET"
            if delivery_id is not None:
                template += "/{delivery_id}" + ("/attempts" if attempts else "")
            endpoint = f"{req.method} {template}"
            if req.method != method:
                return endpoint, not_found()
            scoped = scope(req, method == "POST", **groups)
            if isinstance(scoped, Response):
                return endpoint, scoped
            keep, docs = scoped
            if delivery_id is None:
                return endpoint, self.list_deliveries(req, keep, docs)
            found = self._delivery(delivery_id, keep)
            if found is None:
                return endpoint, not_found()
            if attempts is None:
                return endpoint, Response(200, delivery_body(found))
            return endpoint, self.redeliver(found)
        return None

    # -- scopes: who may, and which deliveries ---------------------------------------------------
    def _hook_exists(self, hook_id: str) -> bool:
        # The hook exists while deliveries have somewhere to go (a webhook target is set).
        return hook_id.isdigit() and int(hook_id) == HOOK_ID and self.emitter.target is not None

    def _integration_refused(self, req: Request, permission: str, write: bool) -> Response | None:
        issued = self.api.access.installation_token(req.token)
        if issued is None:
            return None
        level = issued.permissions.get(permission)
        if level is None or (write and level != WRITE):
            return error(403, INTEGRATION_FORBIDDEN, "https://docs.github.com/rest")
        return None

    def _org_scope(self, req: Request, write: bool, org: str, hook_id: str) -> tuple[Keep, str] | Response:
        """Organisation hook: an organisation owner, every delivery of the hook."""
        if req.app is not None:
            return error(403, INTEGRATION_FORBIDDEN, "https://docs.github.com/rest")
        owner = self.state.owner
        if owner.type != "Organization" or org.lower() != owner.login.lower():
            return not_found()
        refused = self._integration_refused(req, ORG_HOOKS_PERMISSION, write)
        if refused is not None:
            return refused
        access = self.api.access
        if not (access.is_member(req.token) or access.installation_token(req.token) is not None):
            return not_found()
        if not self._hook_exists(hook_id):
            return not_found()
        return (lambda d: True), ORG_DOCS

    def _repo_scope(
        self, req: Request, write: bool, owner: str, name: str, hook_id: str
    ) -> tuple[Keep, str] | Response:
        """Repository hook (a user owner's repositories): a repository admin, that repository's deliveries."""
        if req.app is not None:
            return error(403, INTEGRATION_FORBIDDEN, "https://docs.github.com/rest")
        account = self.state.owner
        with self.state.lock:
            repo: Repo | None = self.state.repo(name) if owner.lower() == account.login.lower() else None
        access = self.api.access
        if repo is None or not access.visible(req.token, repo):
            return not_found()
        refused = self._integration_refused(req, REPO_HOOKS_PERMISSION, write)
        if refused is not None:
            return refused
        issued = access.installation_token(req.token)
        admin = access.is_owner(req.token) or (
            issued is not None and access.installation_covers(issued, repo)
        )
        # An organisation's repositories carry no repository hook: the hook is the organisation's.
        if not admin or account.type != "User" or not self._hook_exists(hook_id):
            return not_found()
        repo_id = repo.id
        return (lambda d: d.repository_id == repo_id), REPO_DOCS

    def _app_scope(self, req: Request, write: bool) -> tuple[Keep, str] | Response:
        """The App's webhook: its JWT only, the deliveries of its installations."""
        if req.app is None:
            return error(401, NO_JWT_MESSAGE, APP_DOCS)
        if self.emitter.target is None:
            return not_found()
        installations = {i.installation_id for i in req.app.installations}
        return (lambda d: d.installation_id in installations), APP_DOCS

    # -- handlers --------------------------------------------------------------------------------
    def _delivery(self, raw_id: str, keep: Keep) -> HookDelivery | None:
        # An unknown delivery, another scope's, or one older than the retention: 404 (choice: an
        # expired delivery is gone, as it is gone from the listing and the web interface's
        # "Recent deliveries", https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks).
        if not raw_id.isdigit():
            return None
        found = self.emitter.delivery(int(raw_id))
        return found if found is not None and keep(found) else None

    def list_deliveries(self, req: Request, keep: Keep, docs: str) -> Response:
        """``GET .../deliveries``: newest first, ``per_page`` (30, at most 100), ``cursor``, ``status``.

        https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook
        (the organisation's and the App's take the same parameters).
        """
        wanted = req.query.get("status")
        if wanted is not None and wanted not in STATUS_FILTERS:
            return error(
                422,
                "Validation Failed",
                docs,
                errors=[{"resource": "HookDelivery", "field": "status", "code": "invalid"}],
            )
        codes = STATUS_FILTERS.get(wanted) if wanted is not None else None
        items = [
            d for d in self.emitter.deliveries() if keep(d) and (codes is None or d.status_code in codes)
        ]
        try:
            page = paginate_id_cursor(
                items, lambda d: d.id, req.query, req.params, f"{self.api.api_base}{req.path}"
            )
        except PaginationError as exc:
            return error(400, str(exc), docs)
        resp = Response(200, [delivery_item(d) for d in page.items])
        if page.link:
            resp.headers["Link"] = page.link
        return resp

    def redeliver(self, delivery: HookDelivery) -> Response:
        """``POST .../deliveries/{delivery_id}/attempts`` -> 202: the delivery is sent again, same GUID.

        https://docs.github.com/en/rest/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook
        The attempt happens after the answer (202 Accepted), in the delivery thread.
        """
        if not self.emitter.redeliver(delivery.id):
            return not_found()
        return Response(202, {})
