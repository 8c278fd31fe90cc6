"""The target PostgreSQL database: schema migrations, idempotent loads, run records, retention.

Every SQL statement on the sync's tables lives in this package (the status plugin's read-only
queries aside); nothing here calls GitHub.
"""
