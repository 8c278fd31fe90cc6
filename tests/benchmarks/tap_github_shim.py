"""Run ``tap-github`` against the simulator: two small compatibility fixes, the tap otherwise unmodified.

Executed by the tap's own interpreter (``tests/benchmarks/.venvs/tap-github/bin/python``),
never imported by the project. ``meltanolabs-tap-github`` 1.30.1 validates each token with a
GET of the hard-coded ``https://api.github.com/rate_limit`` (``TokenManager.is_valid_token``),
ignoring ``api_url_base``; without network access to github.com the tap exits before its
first stream. This shim replaces only that URL (the same single request, to the configured
API, as GitHub Enterprise users would need).

Second, ``IssuesStream.post_process`` reads ``row["type"]`` (GitHub's issue-type field,
``null`` when unset); the simulator's issue objects predate that field, so the shim adds
``"type": null`` to rows without it before the tap's own post-processing runs.
"""

from __future__ import annotations

import os
import sys

import requests
from tap_github import authenticator, repository_streams
from tap_github.tap import cli

API_URL_BASE = os.environ["TAP_GITHUB_SHIM_API_URL_BASE"].rstrip("/")


def is_valid_token(self: authenticator.TokenManager) -> bool:
    """The tap's own check, with the URL taken from the environment."""
    if not self.token:
        return False
    try:
        response = requests.get(
            url=f"{API_URL_BASE}/rate_limit", headers={"Authorization": f"token {self.token}"}, timeout=30
        )
        response.raise_for_status()
        return True
    except requests.exceptions.HTTPError:
        authenticator.logger.warning("A token could not be validated: %s", response.status_code)
        return False


authenticator.TokenManager.is_valid_token = is_valid_token  # type: ignore[method-assign]
_issues_post_process = repository_streams.IssuesStream.post_process


def issues_post_process(self: object, row: dict, context: object = None) -> dict:
    """The tap's own post-processing, after defaulting the ``type`` field GitHub now always sends."""
    row.setdefault("type", None)
    return _issues_post_process(self, row, context)  # type: ignore[arg-type]


repository_streams.IssuesStream.post_process = issues_post_process  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(cli())
