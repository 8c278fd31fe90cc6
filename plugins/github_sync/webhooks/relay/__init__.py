"""The webhook relay: receives GitHub deliveries, stores them in PostgreSQL, triggers Airflow.

One module per concern: :mod:`.settings` (environment), :mod:`.signature` (HMAC check),
:mod:`.store` (durable deliveries), :mod:`.forwarder` (Airflow REST, coalescing, retries),
:mod:`.app` (the ASGI app) and :mod:`.cli` (the ``github-sync-relay`` console script).
Nothing here imports Airflow: the relay is a small service of its own.
"""

from __future__ import annotations
