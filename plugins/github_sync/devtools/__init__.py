"""Developer and operator tools: the ``github-sync`` command, ``make run`` and a local Airflow.

Nothing in the product imports this package; it uses the library like any client would.
"""
