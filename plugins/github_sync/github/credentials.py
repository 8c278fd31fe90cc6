"""Credentials the hook authenticates with: a token, or a GitHub App installation.

A :class:`Credential` gives the transport two things per request: a non-secret ``key``
(which budget the request spends and which ETags it may reuse; see
:mod:`github_sync.github.budget` and :mod:`github_sync.github.http_cache`) and the
``Authorization`` value. Two kinds:

* :class:`TokenCredential` - a personal access token (classic or fine-grained), an OAuth
  token or any token GitHub accepts as ``Bearer``; its budget is its user's.
* :class:`AppInstallationCredential` - a GitHub App authenticating as an installation
  (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation):
  an RS256 JWT signed with the app's private key (:func:`app_jwt`) buys an installation
  access token (``POST /app/installations/{id}/access_tokens``), cached until shortly
  before its ``expires_at`` and bought again after a 401. Without an installation id the
  installation is found through the app's installations (``GET /app/installations``) by
  the owner a request is for. Each installation has its own budget, so the key is per
  installation.

It must not decide on rate limits or retries of API requests (the transport's), read
Airflow connections (:mod:`github_sync.github.connection`), or let the private key, a JWT
or an installation token into a log, an exception or a repr.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import jwt
import requests

from github_sync.config import validate_api_base_url
from github_sync.github.errors import CredentialError, GitHubServerError, GitHubTransportError
from github_sync.github.http_cache import token_hash

log = logging.getLogger(__name__)

# GitHub: "iat: issued at time, 60 seconds in the past to allow for clock drift";
# "exp: no more than 10 minutes into the future". Nine minutes leaves a minute of drift.
# https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
JWT_BACKDATE_S = 60
JWT_LIFETIME_S = 9 * 60
JWT_ALGORITHM = "RS256"
# An installation token is bought again this long before its expires_at, so no request goes
# out on a token that expires in flight; for short-lived tokens (tests) a share of the lifetime.
TOKEN_REFRESH_MARGIN_S = 60.0
TOKEN_REFRESH_MARGIN_FRACTION = 0.2
# Paths whose first segments name the owner a request is for (to find its installation).
_OWNER_PATH_PREFIXES = ("repos", "orgs", "users")
UNAUTHORIZED = 401
NOT_FOUND = 404
# Characters of an error body quoted in an exception.
_ERROR_SNIPPET = 200

KIND_TOKEN = "token"
KIND_APP = "github_app"


class Credential(Protocol):
    """What the transport needs of a credential."""

    @property
    def label(self) -> str:
        """Human, non-secret name for logs and reports (``connection github_default``)."""
        ...

    @property
    def kind(self) -> str:
        """``token`` or ``github_app``."""
        ...

    @property
    def refreshable(self) -> bool:
        """True when a 401 may be cured by :meth:`invalidate` and a new :meth:`authorization`."""
        ...

    def key_for(self, path: str) -> str:
        """The budget and cache key of a request for ``path`` (non-secret, stable across runs)."""
        ...

    def authorization(self, path: str) -> str:
        """The ``Authorization`` header value for a request for ``path`` (may buy a token)."""
        ...

    def invalidate(self, path: str) -> None:
        """Forget the token used for ``path`` after GitHub answered it 401."""
        ...

    def secrets(self) -> list[str]:
        """Every secret value this credential holds now, for redaction."""
        ...


class TokenCredential:
    """A token sent as ``Authorization: Bearer``; its key is a SHA-256 of the API and the token."""

    kind = KIND_TOKEN
    refreshable = False

    def __init__(self, token: str, label: str = "token", api: str = "") -> None:
        """Wrap ``token``.

        Args:
            token: the token.
            label: names it in logs (a connection id, never the token).
            api: the API base URL it is for: one token on two GitHubs (github.com and an
                Enterprise server) has two budgets and two sets of ETags.
        """
        if not token:
            raise ValueError("empty token")
        self._token = token
        self._key = token_hash(f"{api}\0{token}" if api else token)
        self.label = label

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self.label!r})"

    def key_for(self, path: str) -> str:
        """The hash of the API and the token (never the token)."""
        return self._key

    def authorization(self, path: str) -> str:
        """``Bearer <token>``."""
        return f"Bearer {self._token}"

    def invalidate(self, path: str) -> None:
        """Nothing to refresh: a 401 for a token is final."""

    def secrets(self) -> list[str]:
        """The token."""
        return [self._token]


def app_jwt(app_id: str, private_key: str, now: datetime) -> str:
    """The RS256 JWT a GitHub App authenticates as itself with (valid about 10 minutes).

    Args:
        app_id: the app's ID or client ID (GitHub accepts either as ``iss``).
        private_key: the app's private key, PEM.
        now: current time, in agreement with GitHub's clock.
    """
    issued = int(now.timestamp())
    claims = {"iat": issued - JWT_BACKDATE_S, "exp": issued + JWT_LIFETIME_S, "iss": str(app_id)}
    return jwt.encode(claims, private_key, algorithm=JWT_ALGORITHM)


@dataclass(frozen=True)
class InstallationToken:
    """An installation access token and when it expires."""

    token: str
    expires_at: datetime
    obtained_at: datetime

    def __repr__(self) -> str:
        return f"InstallationToken(expires_at={self.expires_at.isoformat()})"

    def fresh(self, now: datetime) -> bool:
        """True while the token is usable for one more request (not within the refresh margin)."""
        lifetime = (self.expires_at - self.obtained_at).total_seconds()
        margin = min(TOKEN_REFRESH_MARGIN_S, max(lifetime, 0) * TOKEN_REFRESH_MARGIN_FRACTION)
        return now < self.expires_at - timedelta(seconds=margin)


@dataclass(frozen=True)
class Installation:
    """An installation of the app, as GitHub describes it."""

    installation_id: int
    account: str
    permissions: Mapping[str, str]
    repository_selection: str | None


# (method, url, headers, json body) -> response: the hook's session, without its API auth.
SendFn = Callable[[str, str, Mapping[str, str], Any], requests.Response]


class AppInstallationCredential:
    """A GitHub App acting as one (or, without an id, each) of its installations."""

    kind = KIND_APP
    refreshable = True

    def __init__(
        self,
        *,
        app_id: str,
        private_key: str,
        base_url: str,
        send: SendFn,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        installation_id: int | None = None,
        token_permissions: Mapping[str, str] | None = None,
        label: str = "github app",
        on_token: Callable[[str], None] | None = None,
    ) -> None:
        """Create the credential; nothing is sent until the first request needs a token.

        Args:
            app_id: the app's ID (or client ID).
            private_key: the app's private key, PEM.
            base_url: the API base URL (``https://api.github.com``).
            send: sends one request without the hook's API authentication.
            clock: current aware time, in agreement with GitHub's (JWT ``iat``/``exp``).
            installation_id: the installation; ``None`` finds it by the request's owner.
            token_permissions: permissions to ask for (a subset of the installation's).
            label: non-secret name for logs.
            on_token: called with each new installation token (Airflow's secret masker).
        """
        self.app_id = str(app_id)
        self.label = label
        self._private_key = private_key
        # The JWT goes to this URL: refused with user info like every base URL (config's rule).
        self._base_url = validate_api_base_url(f"{label}: base_url", base_url)
        self._send = send
        self._clock = clock
        self._installation_id = installation_id
        self._token_permissions = dict(token_permissions) if token_permissions else None
        self._on_token = on_token
        self._lock = threading.Lock()
        self._tokens: dict[int, InstallationToken] = {}
        self._installations: dict[str, Installation] | None = None
        self._key_salt = hashlib.sha256(f"{self._base_url}|{self.app_id}".encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(app_id={self.app_id!r}, installation_id={self._installation_id!r})"

    # ------------------------------------------------------------------ Credential

    def key_for(self, path: str) -> str:
        """``app:<hash of base URL and app>:<installation id>``: the installation's budget."""
        return f"app:{self._key_salt}:{self.installation_for(path)}"

    def authorization(self, path: str) -> str:
        """``Bearer <installation token>``, bought or bought again when needed."""
        installation_id = self.installation_for(path)
        with self._lock:
            token = self._tokens.get(installation_id)
            if token is None or not token.fresh(self._clock()):
                token = self._buy_token(installation_id)
                self._tokens[installation_id] = token
            return f"Bearer {token.token}"

    def invalidate(self, path: str) -> None:
        """Forget the installation's token (GitHub answered 401: expired or revoked)."""
        installation_id = self.installation_for(path)
        with self._lock:
            self._tokens.pop(installation_id, None)

    def secrets(self) -> list[str]:
        """The private key and the current installation tokens."""
        with self._lock:
            return [self._private_key, *(t.token for t in self._tokens.values())]

    # ------------------------------------------------------------------ installations

    def installation_for(self, path: str) -> int:
        """The installation a request for ``path`` is made as.

        Raises:
            CredentialError: no installation id and the app is installed on several
                accounts none of which the path names, or on none.
        """
        if self._installation_id is not None:
            return self._installation_id
        installations = self.installations()
        owner = owner_of_path(path)
        if owner is not None and owner.lower() in installations:
            return installations[owner.lower()].installation_id
        if len(installations) == 1:
            return next(iter(installations.values())).installation_id
        accounts = sorted(i.account for i in installations.values())
        raise CredentialError(
            method="GET",
            path=path,
            status=NOT_FOUND,
            message=(
                f"GitHub App {self.app_id} ({self.label}) is not installed on the account this request is for"
                f" (installed on: {accounts or 'no account'}); install it there or set installation_id"
            ),
        )

    def installations(self) -> dict[str, Installation]:
        """The app's installations by lower-case account login (``GET /app/installations``, once)."""
        with self._lock:
            if self._installations is None:
                found: dict[str, Installation] = {}
                url: str | None = f"{self._base_url}/app/installations?per_page=100"
                while url:
                    response = self._app_request("GET", url, None)
                    for item in response.json():
                        installation = _installation(item)
                        found[installation.account.lower()] = installation
                    url = response.links.get("next", {}).get("url")
                self._installations = found
            return dict(self._installations)

    def installation(self, installation_id: int | None = None) -> Installation:
        """One installation as GitHub describes it (``GET /app/installations/{id}``; free)."""
        wanted = installation_id if installation_id is not None else self.installation_for("/")
        response = self._app_request("GET", f"{self._base_url}/app/installations/{wanted}", None)
        return _installation(response.json())

    def app(self) -> Mapping[str, Any]:
        """The app itself (``GET /app``)."""
        body = self._app_request("GET", f"{self._base_url}/app", None).json()
        return body if isinstance(body, Mapping) else {}

    # ------------------------------------------------------------------ requests as the app

    def _buy_token(self, installation_id: int) -> InstallationToken:
        # Caller holds the lock: one purchase at a time, the other threads then reuse it.
        url = f"{self._base_url}/app/installations/{installation_id}/access_tokens"
        body = {"permissions": self._token_permissions} if self._token_permissions else None
        answer = self._app_request("POST", url, body).json()
        try:
            token = str(answer["token"])
            expires_at = datetime.fromisoformat(str(answer["expires_at"]).replace("Z", "+00:00"))
        except (KeyError, TypeError, ValueError):
            raise GitHubServerError(
                method="POST",
                path=_path(url, self._base_url),
                status=201,
                message="installation token answer without token/expires_at",
            ) from None
        if self._on_token is not None:
            self._on_token(token)
        log.info(
            "GitHub App %s: installation %d access token obtained, expires %s",
            self.app_id,
            installation_id,
            expires_at.isoformat(),
        )
        return InstallationToken(
            token=token,
            expires_at=expires_at,
            obtained_at=self._clock(),
        )

    def _app_request(self, method: str, url: str, body: Any) -> requests.Response:
        path = _path(url, self._base_url)
        headers = {"Authorization": f"Bearer {app_jwt(self.app_id, self._private_key, self._clock())}"}
        try:
            response = self._send(method, url, headers, body)
        except requests.RequestException as exc:
            raise GitHubTransportError(
                method=method, path=path, cause=type(exc).__name__, retryable=True
            ) from None
        if response.status_code >= 500:
            raise GitHubServerError(
                method=method,
                path=path,
                status=response.status_code,
                message=_message(response),
                retryable=True,
            )
        if response.status_code >= 400:
            hint = {
                UNAUTHORIZED: "check the app id and private key of the connection",
                NOT_FOUND: "check installation_id (and that the app is installed)",
            }.get(response.status_code, "check the app's permissions")
            raise CredentialError(
                method=method,
                path=path,
                status=response.status_code,
                message=f"GitHub App {self.app_id} ({self.label}): {_message(response)}; {hint}",
            )
        return response


def owner_of_path(path: str) -> str | None:
    """The owner a request is for (``/repos/{owner}/...``, ``/orgs/{org}/...``, ``/users/{user}/...``)."""
    parts = [part for part in path.split("?", 1)[0].split("/") if part]
    if len(parts) >= 2 and parts[0] in _OWNER_PATH_PREFIXES:
        return parts[1]
    return None


def _installation(item: Any) -> Installation:
    if not isinstance(item, Mapping) or "id" not in item:
        raise GitHubServerError(
            method="GET", path="/app/installations", status=200, message="not an installation"
        )
    account = item.get("account") or {}
    return Installation(
        installation_id=int(item["id"]),
        account=str(account.get("login") or ""),
        permissions=dict(item.get("permissions") or {}),
        repository_selection=item.get("repository_selection"),
    )


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:_ERROR_SNIPPET]
    return str(body.get("message") or "")[:_ERROR_SNIPPET] if isinstance(body, Mapping) else ""


def _path(url: str, base_url: str) -> str:
    return url.removeprefix(base_url).split("?", 1)[0] or "/"


__all__ = [
    "KIND_APP",
    "KIND_TOKEN",
    "AppInstallationCredential",
    "Credential",
    "Installation",
    "InstallationToken",
    "TokenCredential",
    "app_jwt",
    "owner_of_path",
]
