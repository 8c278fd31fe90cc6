"""The Airflow integration: Params, the DAG pattern, task bodies, the deferrable operator,
import_logs callbacks, connections/Variables (runtime), Assets and the plugin.

DAG files import only from here; this package calls sync/, store/ and webhooks/, never the
other way round. It must hold no sync logic: what a run does is decided below it, this
package only says when and with which connections.

* :mod:`~github_sync.orchestration.dag_building` - what every DAG declares alike;
* :mod:`~github_sync.orchestration.params` - the trigger form;
* :mod:`~github_sync.orchestration.tasks` - the run-level task bodies;
* :mod:`~github_sync.orchestration.operators` - the mapped, deferrable repository task;
* :mod:`~github_sync.orchestration.run_guard` - how a run-level task fails;
* :mod:`~github_sync.orchestration.runtime` - connections, Variables and the run's time;
* :mod:`~github_sync.orchestration.callbacks`, :mod:`~github_sync.orchestration.assets`,
  :mod:`~github_sync.orchestration.plugin`.
"""
