"""Airflow plugin entry point (plugins folder): registers the github-sync plugin."""

from __future__ import annotations

from github_sync.orchestration.plugin import GitHubSyncPlugin

__all__ = ["GitHubSyncPlugin"]
