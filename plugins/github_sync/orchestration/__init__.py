"""The Airflow integration: Params, the DAG pattern, task bodies, the deferrable operator,
import_logs callbacks, connections/Variables (runtime), Assets and the plugin.

DAG files import only from here; this package calls sync/, store/ and webhooks/, never the
other way round.
"""
