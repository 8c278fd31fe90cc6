"""Developer and operator tools: the ``github-sync`` command, ``make run`` and a local Airflow."""
