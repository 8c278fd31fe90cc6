"""The HTTP session the hook talks to GitHub with: API headers, the token, the connection pool.

Owns what every request carries (media type, API version, user agent), that the token goes
only to the API's own origin (:class:`BearerAuth`), and the pool sized to the hook's
``max_in_flight`` with urllib3's own retries off.

It must not read Airflow connections (the hook resolves base URL and token), retry or
rate-limit anything, or show the token in any repr.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from github_sync import __version__

API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
USER_AGENT = f"github-sync/{__version__}"


class BearerAuth(AuthBase):
    """Adds ``Authorization: Bearer`` only to requests for the API's own origin.

    A full URL handed to the hook (a ``Link``, a body's ``url`` field) could point at
    another host; the token must never go there.
    """

    def __init__(self, token: str, origin: tuple[str, str]) -> None:
        self._token = token
        self._origin = origin

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if origin_of(request.url or "") == self._origin:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return f"{type(self).__name__}(origin={self._origin!r})"


def origin_of(url: str) -> tuple[str, str]:
    """``(scheme, host[:port])`` of ``url``, lower-cased: what must match for the token to be sent."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def normalize_base_url(host: str) -> str:
    """The API base URL from a connection's ``host``: a scheme added if missing, no trailing slash."""
    host = host.strip()
    if "://" not in host:
        # The provider's form asks for "https://{hostname}/api/v3", but people type bare hosts.
        host = f"https://{host}"
    return host.rstrip("/")


def build_session(base_url: str, token: str, *, max_connections: int) -> requests.Session:
    """A new session for ``base_url`` authenticated with ``token``.

    Args:
        base_url: the API base URL (its origin receives the token).
        token: the GitHub token.
        max_connections: pool size (the hook's ``max_in_flight``).
    """
    session = requests.Session()
    session.headers.update(
        {"Accept": MEDIA_TYPE, "X-GitHub-Api-Version": API_VERSION, "User-Agent": USER_AGENT}
    )
    session.auth = BearerAuth(token, origin_of(base_url))
    # urllib3's own retries are off: the hook's retry policy decides, once.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max_connections, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
