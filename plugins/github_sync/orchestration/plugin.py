"""The github-sync Airflow plugin: the status API and dashboard, and their entry in the UI.

* ``fastapi_apps``: the status app (:mod:`github_sync.status.api`) is mounted by the
  api-server under ``/github-sync``; every route requires an authenticated Airflow user
  whom the auth manager lets read the sync DAGs' runs (:mod:`github_sync.status.access`).
* ``external_views``: a top-level navigation entry; the Airflow UI shows the dashboard
  in its plugin frame at ``/plugin/github-sync`` (same origin, so the session cookie
  authenticates the page).

The plugin only registers; the app and its queries live in :mod:`github_sync.status`, and
this module must not import them eagerly (``LazyStatusApp`` builds the app on first use).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from github_sync.status.api import URL_PREFIX, LazyStatusApp

NAV_NAME = "GitHub Sync"
NAV_URL_ROUTE = "github-sync"
# The GitHub mark is not ours to ship; a neutral "sync" icon (arrows) as an inline SVG.
NAV_ICON = (
    "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' "
    "stroke='%23718096' stroke-width='2' stroke-linecap='round' stroke-linejoin='round'>"
    "<path d='M21 12a9 9 0 0 1-15.5 6.2L3 16'/><path d='M3 21v-5h5'/>"
    "<path d='M3 12a9 9 0 0 1 15.5-6.2L21 8'/><path d='M21 3v5h-5'/></svg>"
)


class GitHubSyncPlugin(AirflowPlugin):
    """github-sync's plugin: status dashboard and API inside Airflow's api-server."""

    name = "github_sync"
    fastapi_apps = [
        {
            "app": LazyStatusApp(),
            "url_prefix": URL_PREFIX,
            "name": "github-sync status",
        }
    ]
    external_views = [
        {
            "name": NAV_NAME,
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": NAV_URL_ROUTE,
            "nav_top_level": True,
            "icon": NAV_ICON,
        }
    ]
