"""Status API, live event stream and dashboard of the github-sync runs (served by the Airflow plugin).

Modules: ``api`` (routes), ``responses`` (the JSON bodies), the read-only queries by
concern (``finished_runs``, ``live_runs``, ``repository_stats``, ``budget``,
``run_owners``), ``stream`` (server-sent events), ``progress`` (ETA arithmetic), ``db``
(the read-only connection). Reads the tables ``store`` writes; never imports the
orchestration layer.
"""
