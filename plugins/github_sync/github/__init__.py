"""GitHub's REST API as the sync sees it: the hook (connection and public API), rate limits,
retry policy, pagination, the HTTP cache, typed errors and GitHub's naming rules.

Nothing here knows about rows, tables or Airflow runs.
"""
