"""The HTTP session the hook talks to GitHub with: API headers, credentials per request, the pool.

Owns what every request carries (media type, API version, user agent), that the token goes
only to the API's own origin (:class:`ApiAuth`), and the pool sized to the hook's
``max_in_flight`` with urllib3's own retries off.

It must not read Airflow connections (the hook resolves base URL and credentials), retry or
rate-limit anything, or show the token in any repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from github_sync import __version__
from github_sync.config import validate_api_base_url

API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
USER_AGENT = f"github-sync/{__version__}"
# (connect, read) seconds of the App's own requests (JWT: installations, tokens): small answers.
REQUEST_TIMEOUT = (10.0, 30.0)


class ApiAuth(AuthBase):
    """Adds one request's ``Authorization`` only when it goes to the API's own origin.

    A full URL handed to the hook (a ``Link``, a body's ``url`` field) could point at
    another host; the credential must never go there. The value is per request because the
    transport picks the credential of each request (several tokens, an App's rotating tokens).
    """

    def __init__(self, authorization: str, session: ApiSession) -> None:
        self._authorization = authorization
        self._origin = session.origin

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if origin_of(request.url or "") == self._origin:
            request.headers["Authorization"] = self._authorization
        return request

    def __repr__(self) -> str:
        return f"{type(self).__name__}(origin={self._origin!r})"


class ApiSession(requests.Session):
    """A session for one API base URL; ``origin`` is where credentials may be sent."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.origin = origin_of(base_url)

    def send_unauthenticated(
        self, method: str, url: str, headers: Mapping[str, str], body: Any
    ) -> requests.Response:
        """One request with the given ``headers`` (an App's JWT), only to the API's origin."""
        if origin_of(url) != self.origin:
            raise ValueError(f"refusing to send credentials to {origin_of(url)} (API is {self.origin})")
        return self.request(
            method, url, headers=dict(headers), json=body, allow_redirects=False, timeout=REQUEST_TIMEOUT
        )


def origin_of(url: str) -> tuple[str, str]:
    """``(scheme, host[:port])`` of ``url``, lower-cased: what must match for the token to be sent."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def normalize_base_url(host: str, *, source: str) -> str:
    """The API base URL from a connection's ``host``: a scheme added if missing, no trailing slash.

    Args:
        host: the connection's ``host`` or a hook's ``base_url``.
        source: what ``host`` is, for the message (``connection 'github_default': host``).

    Raises:
        ConfigError: not an http(s) URL, or it carries user info (never echoed).
    """
    host = host.strip()
    if "://" not in host:
        # The provider's form asks for "https://{hostname}/api/v3", but people type bare hosts.
        host = f"https://{host}"
    return validate_api_base_url(source, host)


def without_user_info(url: str) -> str:
    """``url`` with any ``user:password@`` removed from its host, for reprs and log lines.

    Base URLs with user info are refused where they enter; this is the second line for URLs
    that come from elsewhere (a ``Link`` or ``Location`` from a server).
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def build_session(base_url: str, *, max_connections: int) -> ApiSession:
    """A new session for ``base_url``; each request brings its credential (:class:`ApiAuth`).

    Args:
        base_url: the API base URL (its origin receives the credentials).
        max_connections: pool size (the hook's ``max_in_flight``).
    """
    session = ApiSession(base_url)
    session.headers.update(
        {"Accept": MEDIA_TYPE, "X-GitHub-Api-Version": API_VERSION, "User-Agent": USER_AGENT}
    )
    # urllib3's own retries are off: the hook's retry policy decides, once.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max_connections, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
