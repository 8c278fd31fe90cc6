"""What a hook's credentials are and may do, found out without spending any budget.

:func:`check_access` backs ``github-sync check-connection`` and the hook's
``test_connection``: for each credential, which authentication it is, for which account or
installation, with what budget and what permissions. Only requests GitHub does not count
are sent: ``GET /rate_limit`` ("does not count against your primary rate limit",
https://docs.github.com/en/rest/rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user)
and, for an App, requests authenticated with its JWT (``GET /app``,
``GET /app/installations/{id}``) and the purchase of an installation token, none of which
draw on the installation's budget. A token's account is looked up (``GET /user``, one
request) only when asked.

It must not change anything, nor show a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from github_sync.github.credentials import AppInstallationCredential
from github_sync.github.errors import GitHubError
from github_sync.github.ratelimit import RESOURCE_CORE, RESOURCE_GRAPHQL, RESOURCE_SEARCH, RateLimit

if TYPE_CHECKING:
    from github_sync.github.hook import GitHubHook

log = logging.getLogger(__name__)

# The resources a report shows (GET /rate_limit lists more).
REPORTED_RESOURCES = (RESOURCE_CORE, RESOURCE_SEARCH, RESOURCE_GRAPHQL)
# A classic personal access token's scopes come back in this header (fine-grained tokens send none).
SCOPES_HEADER = "X-OAuth-Scopes"


@dataclass(frozen=True)
class AccessReport:
    """One credential as GitHub describes it."""

    label: str
    kind: str
    ok: bool
    account: str | None = None
    installation_id: int | None = None
    app: str | None = None
    permissions: Mapping[str, str] = field(default_factory=dict)
    scopes: str | None = None
    repository_selection: str | None = None
    budget: Mapping[str, RateLimit] = field(default_factory=dict)
    error: str | None = None

    def describe(self) -> str:
        """One line for a person: what, for whom, with what budget and permissions."""
        if not self.ok:
            return f"{self.label}: FAILED ({self.error})"
        parts = [f"{self.label}: {self.kind.replace('_', ' ')}"]
        if self.app:
            parts.append(f"app {self.app}")
        if self.installation_id is not None:
            parts.append(f"installation {self.installation_id} on {self.account or '?'}")
        elif self.account:
            parts.append(f"account {self.account}")
        for resource in REPORTED_RESOURCES:
            window = self.budget.get(resource)
            if window is not None:
                parts.append(f"{resource} {window.remaining}/{window.limit} until {window.reset:%H:%M}Z")
        if self.permissions:
            parts.append("permissions " + ", ".join(f"{k}:{v}" for k, v in sorted(self.permissions.items())))
        if self.repository_selection:
            parts.append(f"repositories: {self.repository_selection}")
        if self.scopes is not None:
            parts.append(f"scopes: {self.scopes or 'none (fine-grained token)'}")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``github-sync check-connection --json``)."""
        return {
            "label": self.label,
            "kind": self.kind,
            "ok": self.ok,
            "account": self.account,
            "installation_id": self.installation_id,
            "app": self.app,
            "permissions": dict(self.permissions),
            "scopes": self.scopes,
            "repository_selection": self.repository_selection,
            "budget": {
                name: {"limit": w.limit, "remaining": w.remaining, "reset": w.reset.isoformat()}
                for name, w in self.budget.items()
            },
            "error": self.error,
        }


def check_access(hook: GitHubHook, *, look_up_accounts: bool = False) -> list[AccessReport]:
    """Describe each of ``hook``'s credentials (see the module docstring for what is sent).

    Args:
        hook: the hook whose credentials to check.
        look_up_accounts: also ask ``GET /user`` for a token's account (costs one request each).

    Raises:
        ConfigError: the connection itself is invalid (no credential, a bad extra).
    """
    reports = []
    for credential in hook.credentials():
        probe = hook.with_credential(credential)
        try:
            reports.append(_check(probe, credential, look_up_accounts))
        except GitHubError as exc:
            reports.append(
                AccessReport(label=credential.label, kind=credential.kind, ok=False, error=str(exc))
            )
        finally:
            probe.close()
    return reports


def _check(probe: GitHubHook, credential: Any, look_up_accounts: bool) -> AccessReport:
    details: dict[str, Any] = {}
    if isinstance(credential, AppInstallationCredential):
        app = credential.app()
        installation = credential.installation()
        details = {
            "app": str(app.get("slug") or app.get("name") or credential.app_id),
            "installation_id": installation.installation_id,
            "account": installation.account,
            "permissions": installation.permissions,
            "repository_selection": installation.repository_selection,
        }
    rate = probe.get("/rate_limit", conditional=False)
    resources = rate.json.get("resources", {}) if isinstance(rate.json, Mapping) else {}
    budget = {name: _window(name, resources[name]) for name in REPORTED_RESOURCES if name in resources}
    if not isinstance(credential, AppInstallationCredential):
        details["scopes"] = rate.headers.get(SCOPES_HEADER)
        if look_up_accounts:
            user = probe.get("/user", conditional=False).json
            details["account"] = str(user.get("login")) if isinstance(user, Mapping) else None
    return AccessReport(label=credential.label, kind=credential.kind, ok=True, budget=budget, **details)


def _window(resource: str, body: Mapping[str, Any]) -> RateLimit:
    return RateLimit(
        limit=int(body.get("limit") or 0),
        remaining=int(body.get("remaining") or 0),
        used=int(body.get("used") or 0),
        reset=datetime.fromtimestamp(int(body.get("reset") or 0), tz=UTC),
        resource=resource,
    )
