"""The webhook relay: receives GitHub deliveries, stores them in PostgreSQL, triggers Airflow.

One module per concern: :mod:`.settings` (environment, pydantic-settings), :mod:`.signature`
(HMAC check), :mod:`.payload` (decoding a body into the row to store), :mod:`.store` (durable deliveries, psycopg_pool), :mod:`.forwarder` (coalescing
deliveries into runs, tenacity retries), :mod:`.airflow_api` (the one Airflow REST call and its
JWT), :mod:`.app` (the ASGI app) and :mod:`.cli` (the
``github-sync-relay`` console script). Nothing here imports Airflow or the orchestration
layer: the relay is a small service of its own, below them.
"""

from __future__ import annotations
