"""Airflow plugin entry point (plugins folder): registers the github-sync plugin.

Airflow imports every module of the plugins folder; this one only re-exports the plugin
class (:mod:`github_sync.orchestration.plugin`) and must define nothing of its own.
"""

from __future__ import annotations

from github_sync.orchestration.plugin import GitHubSyncPlugin

__all__ = ["GitHubSyncPlugin"]
