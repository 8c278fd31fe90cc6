"""GitHub's REST API as the sync sees it.

``hook`` (the Airflow connection and the public API) on top of ``transport`` (one GET as a
pipeline of steps), which uses ``ratelimit`` (every rate-limit rule and wait), ``retry``
(attempts and backoff), ``http_cache`` (conditional requests), ``session`` (headers, token,
pool) and ``response`` (what a caller gets back); ``pagination`` follows ``Link`` headers,
``listings`` names the repository listings the sync reads (and counts one from its first and
last pages), ``stats`` counts, ``errors`` are the typed failures and ``owners`` GitHub's naming rules.

Nothing here knows about rows, tables or Airflow runs; only ``hook`` imports Airflow.
"""
