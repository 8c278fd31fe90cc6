"""Status API, live event stream and dashboard of the github-sync runs (served by the Airflow plugin)."""
