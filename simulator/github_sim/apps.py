"""GitHub Apps: who a JWT is, the installation access tokens issued, and an installation's budget.

Owns the identity side of GitHub Apps: verifying an App's RS256 JSON web tokens against the
simulator clock, issuing ``ghs_`` installation access tokens and telling whether one is still
valid, and the documented rate limit of an installation. It must not route requests, render
bodies or write headers (:mod:`github_sim.api_apps` and :mod:`github_sim.server` do), and it
never logs a token.

JWT verification needs PyJWT (its JWS layer) with its ``crypto`` extra (``cryptography``); both are imported
only when an App is configured or a key is generated, so the simulator itself keeps running
on the standard library when no App is used.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import string
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from github_sim.clock import SimClock
from github_sim.config import AppConfig, InstallationConfig
from github_sim.render import iso

log = logging.getLogger(__name__)

# https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
JWT_DOCS = "https://docs.github.com/rest"
# "exp ... The time must be no more than 10 minutes into the future."
JWT_MAX_LIFETIME_S = 600
# "iat ... To protect against clock drift, we recommend that you set this 60 seconds in the past".
JWT_CLOCK_DRIFT_S = 60
JWT_ALGORITHM = "RS256"
# Three base64url parts whose header starts with '{"' (base64 "eyJ"): a JWT, not a token.
JWT_SHAPE = re.compile(r"^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
MSG_UNDECODABLE = "A JSON web token could not be decoded"
MSG_EXP_TOO_FAR = "'Expiration time' claim ('exp') is too far in the future"
MSG_EXP_INVALID = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which "
    "the assertion expires"
)
MSG_IAT_INVALID = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
)
# Installation access tokens: "ghs_" and 36 alphanumerics, the 40-character format of the example
# in https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app
# (the newer stateless "ghs_APPID_JWT" format that page announces is not simulated).
TOKEN_PREFIX = "ghs_"
TOKEN_RANDOM_CHARS = 36
TOKEN_ALPHABET = string.ascii_letters + string.digits
# https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#primary-rate-limit-for-github-app-installations
INSTALLATION_BASE_LIMIT = 5000
INSTALLATION_BONUS_THRESHOLD = 20
INSTALLATION_BONUS_PER_ITEM = 50
INSTALLATION_MAX_LIMIT = 12500
# Permission levels in increasing order of power.
PERMISSION_RANK = {"read": 1, "write": 2, "admin": 3}
RSA_KEY_BITS = 2048
RSA_PUBLIC_EXPONENT = 65537
BOT_ID_BASE = 90_000_000  # ids of the Apps' bot accounts ("{slug}[bot]")


class AppAuthError(Exception):
    """A JWT GitHub would refuse with 401; ``str(exc)`` is GitHub's message."""


class TokenRequestError(Exception):
    """A token request GitHub would refuse with 422; ``str(exc)`` is GitHub's message."""


@dataclass(frozen=True)
class IssuedToken:
    """One installation access token."""

    token: str
    app_id: int
    installation_id: int
    expires_at: datetime
    permissions: dict[str, str]
    repository_ids: frozenset[int] | None  # None: every repository of the installation

    def expired(self, now: datetime) -> bool:
        """True once the clock has passed ``expires_at``."""
        return now >= self.expires_at


def generate_app_key() -> tuple[str, str]:
    """Return ``(private_pem, public_pem)`` of a fresh 2048-bit RSA key (for tests and the demo)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def installation_rate_limit(repositories: int, users: int = 0, organization: bool = True) -> int:
    """GitHub's primary limit of an installation per hour.

    5,000, plus 50 per repository beyond 20, plus (organisations with more than 20 users) 50 per
    user beyond 20, at most 12,500:
    https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#primary-rate-limit-for-github-app-installations
    """
    limit = INSTALLATION_BASE_LIMIT
    limit += INSTALLATION_BONUS_PER_ITEM * max(repositories - INSTALLATION_BONUS_THRESHOLD, 0)
    if organization:
        limit += INSTALLATION_BONUS_PER_ITEM * max(users - INSTALLATION_BONUS_THRESHOLD, 0)
    return min(limit, INSTALLATION_MAX_LIMIT)


def looks_like_jwt(token: str) -> bool:
    """True when ``token`` has a JWT's shape (GitHub then authenticates it as an App)."""
    return JWT_SHAPE.match(token) is not None


def permissions_granted(requested: dict[str, str], granted: dict[str, str]) -> bool:
    """True when every requested permission is granted at least at the requested level."""
    return all(
        name in granted and PERMISSION_RANK.get(level, 99) <= PERMISSION_RANK.get(granted[name], 0)
        for name, level in requested.items()
    )


class AppRegistry:
    """The configured Apps, their installations and the installation tokens issued so far."""

    def __init__(self, apps: list[AppConfig], clock: SimClock) -> None:
        """Index ``apps`` (their public keys are loaded now) on the simulator ``clock``."""
        self.clock = clock
        self.apps: dict[int, AppConfig] = {a.app_id: a for a in apps}
        self._by_client_id = {a.client_id: a for a in apps}
        self.installations: dict[int, tuple[AppConfig, InstallationConfig]] = {
            i.installation_id: (a, i) for a in apps for i in a.installations
        }
        self._keys: dict[int, Any] = {}
        if apps:
            from cryptography.hazmat.primitives import serialization

            self._keys = {
                a.app_id: serialization.load_pem_public_key(a.public_key_pem.encode()) for a in apps
            }
        self._tokens: dict[str, IssuedToken] = {}
        self._issued: dict[int, int] = {i: 0 for i in self.installations}
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        """True when at least one App is configured."""
        return bool(self.apps)

    # -- JWT -------------------------------------------------------------------------------------
    def _issuer(self, iss: Any) -> AppConfig | None:
        # "iss: The issuer ... Use your GitHub App's client ID" (the app ID is accepted too).
        if isinstance(iss, int) and not isinstance(iss, bool):
            return self.apps.get(iss)
        if isinstance(iss, str):
            if iss.isdigit():
                return self.apps.get(int(iss))
            return self._by_client_id.get(iss)
        return None

    def verify_jwt(self, raw: str) -> AppConfig:
        """Return the App that signed ``raw``, or raise :class:`AppAuthError` with GitHub's message.

        Checked as GitHub documents
        (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app):
        RS256 signature of the App named by ``iss``; ``iat`` present and not in the future (60 s of
        drift allowed); ``exp`` present, not past and at most 10 minutes ahead of now. Times are
        the simulator clock's, not the wall clock's.
        """
        from jwt import PyJWS, PyJWTError

        # The signature is checked with PyJWS and the claims here: PyJWT's own claim checks use
        # the wall clock and refuse a numeric ``iss``, which GitHub accepts (the App's id).
        jws = PyJWS(algorithms=[JWT_ALGORITHM])
        try:
            unverified = json.loads(jws.decode(raw, options={"verify_signature": False}))
            header = jws.get_unverified_header(raw)
        except (PyJWTError, ValueError) as exc:
            raise AppAuthError(MSG_UNDECODABLE) from exc
        app = self._issuer(unverified.get("iss")) if isinstance(unverified, dict) else None
        if app is None or header.get("alg") != JWT_ALGORITHM:
            raise AppAuthError(MSG_UNDECODABLE)
        try:
            claims = json.loads(jws.decode(raw, self._keys[app.app_id], algorithms=[JWT_ALGORITHM]))
        except (PyJWTError, ValueError) as exc:
            raise AppAuthError(MSG_UNDECODABLE) from exc
        now = self.clock.timestamp()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or isinstance(iat, bool) or iat > now + JWT_CLOCK_DRIFT_S:
            raise AppAuthError(MSG_IAT_INVALID)
        if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= now:
            raise AppAuthError(MSG_EXP_INVALID)
        # exp - iat may exceed 10 minutes by the 60 s GitHub's own example backdates iat with.
        if exp - now > JWT_MAX_LIFETIME_S or exp - iat > JWT_MAX_LIFETIME_S + JWT_CLOCK_DRIFT_S:
            raise AppAuthError(MSG_EXP_TOO_FAR)
        return app

    # -- installation tokens ---------------------------------------------------------------------
    def installation(self, installation_id: int) -> tuple[AppConfig, InstallationConfig] | None:
        """Return ``(app, installation)`` of ``installation_id``, or ``None``."""
        return self.installations.get(installation_id)

    def issue(
        self,
        installation_id: int,
        permissions: dict[str, str] | None = None,
        repository_ids: frozenset[int] | None = None,
    ) -> IssuedToken:
        """Issue a token of ``installation_id`` valid ``token_lifetime_s`` from now on the sim clock.

        ``permissions`` must be granted to the installation (else :class:`TokenRequestError`);
        ``None`` gives the installation's. ``repository_ids`` restricts the token to those
        repositories (the caller checked they belong to the installation).
        """
        app, inst = self.installations[installation_id]
        if permissions is not None and not permissions_granted(permissions, inst.permissions):
            # PyGithub's recorded answer of GitHub for this case.
            raise TokenRequestError("The permissions requested are not granted to this installation.")
        expires = (self.clock.now() + timedelta(seconds=app.token_lifetime_s)).replace(microsecond=0)
        token = TOKEN_PREFIX + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_RANDOM_CHARS))
        issued = IssuedToken(
            token=token,
            app_id=app.app_id,
            installation_id=installation_id,
            expires_at=expires,
            permissions=dict(permissions if permissions is not None else inst.permissions),
            repository_ids=repository_ids,
        )
        with self._lock:
            self._tokens[token] = issued
            self._issued[installation_id] += 1
        log.info("installation %d: access token issued, expires %s", installation_id, iso(expires))
        return issued

    def lookup(self, token: str) -> IssuedToken | None:
        """Return the issued token ``token`` (expired ones included), or ``None`` if never issued."""
        with self._lock:
            return self._tokens.get(token)

    def live(self, token: str | None) -> IssuedToken | None:
        """Return the issued token ``token`` while it is valid, else ``None``."""
        issued = self.lookup(token) if token is not None else None
        if issued is None or issued.expired(self.clock.now()):
            return None
        return issued

    def tokens_issued(self) -> dict[int, int]:
        """Return how many tokens each installation was issued so far."""
        with self._lock:
            return dict(self._issued)
