"""The target PostgreSQL database: schema migrations, idempotent loads (loader), the projects
table, sync cursors, synced-row read-backs, transactions, run records, the typed
``import_logs`` record and retention.

Every SQL statement on the sync's tables lives in this package (the status plugin's read-only
queries aside); nothing here calls GitHub or knows about Airflow.
"""
