"""GitHub webhooks: the relay service (verify, store, trigger) and how a stored delivery becomes rows.

``relay/`` is a separate process that must not import Airflow or the sync; ``apply.py`` turns
stored deliveries into rows and knows nothing of Airflow runs (orchestration drives it).
"""
