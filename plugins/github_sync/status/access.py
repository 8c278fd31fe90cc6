"""Who may read the status app: Airflow's authentication plus read access to the sync DAGs' runs.

Every route of the status app shows data of the ``github_*`` DAG runs (or is the page and
schema that exist only to show it), so every route asks Airflow's auth manager, the same
one the api-server's own DAG routes ask:

* a route about one run (a ``dag_id`` path parameter) needs read access to that DAG's runs,
  through Airflow's own ``requires_access_dag("GET", DagAccessEntity.RUN)``; a ``dag_id``
  that is not a sync DAG is a 404, never an authorisation question about someone else's DAG;
* every other route (statistics, history, repositories, errors, budget, owners, live
  progress, the event stream, the page, its files and the schema) needs read access to the
  runs of *every* sync DAG. These answers mix the DAGs in ways that cannot be split per DAG
  (the GitHub budget is shared by all syncs; a repository's slowest and failing runs, an
  owner's repository count and the live ETA combine modes), so filtering them to the DAGs a
  user may see would show numbers that are neither the user's nor the truth. A deployment
  grants the sync DAGs as one unit; a user with only some of them can still open the runs
  of those through ``/api/runs/{dag_id}/...``.

Owns: which DAGs a request is about and the 401/403/404 that decides. Must not: grant
anything the auth manager did not (no fallback to "authenticated is enough"), or be
imported by components other than the api-server (it imports Airflow's api-server security
module; :mod:`github_sync.status.api` imports it only when it builds the app).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.models.dag import DagModel
from fastapi import HTTPException, Request

from github_sync.config import DAG_IDS

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseUser
    from airflow.api_fastapi.auth.managers.models.batch_apis import IsAuthorizedDagRequest

log = logging.getLogger(__name__)

# The DAG entity every status route shows: records of the sync DAGs' runs.
RUN_ENTITY = DagAccessEntity.RUN
READ: ResourceMethod = "GET"
# Airflow's own limit on a dag_id (airflow.models.base.ID_LEN); a longer one is not a DAG.
DAG_ID_ECHO_CHARS = 250
FORBIDDEN = "Forbidden: needs read access to the runs of the github-sync DAGs"


class SyncDagAccessDenied(HTTPException):
    """403: logged in, but not allowed the sync DAGs (a login page would not help: no redirect)."""

    # Read by the app's error handler, which must not import this module (it imports the
    # api-server's security module, which the plugin must not load in other components).
    refused_access = True

    def __init__(self) -> None:
        """Create the 403 with the reason."""
        super().__init__(status_code=403, detail=FORBIDDEN)


def sync_dag_ids() -> tuple[str, ...]:
    """The DAGs whose runs the status app shows (the ``github_*`` DAGs of :mod:`github_sync.config`)."""
    return DAG_IDS


def requires_sync_dag_access() -> Callable[[Request, GetUserDep], None]:
    """The dependency guarding every status route: authenticated, and allowed the DAGs it shows.

    Returns:
        A FastAPI dependency raising 401 without (or with an expired) login, 403 without
        read access to the runs of the DAG(s) the route shows, 404 for a ``dag_id`` that
        is not a sync DAG.
    """
    run_of_one_dag = requires_access_dag(READ, RUN_ENTITY)

    def check(request: Request, user: GetUserDep) -> None:
        dag_id = request.path_params.get("dag_id")
        if dag_id is not None:
            if dag_id not in sync_dag_ids():
                raise HTTPException(
                    status_code=404, detail=f"not a github-sync DAG: {dag_id[:DAG_ID_ECHO_CHARS]!r}"
                )
            # Airflow's own dependency reads the dag_id from the path, as on its DAG routes.
            run_of_one_dag(request, user)
            return
        if not _may_read_every_sync_dag(user):
            log.info("Status request for %s refused: no read access to every sync DAG", request.url.path)
            raise SyncDagAccessDenied

    return check


def _may_read_every_sync_dag(user: BaseUser) -> bool:
    dag_ids = list(sync_dag_ids())
    # Only multi-team deployments associate DAGs with teams; a DAG without a team is absent.
    teams = DagModel.get_dag_id_to_team_name_mapping(dag_ids)
    requests: list[IsAuthorizedDagRequest] = [
        {
            "method": READ,
            "access_entity": RUN_ENTITY,
            "details": DagDetails(id=dag_id, team_name=teams.get(dag_id)),
        }
        for dag_id in dag_ids
    ]
    return get_auth_manager().batch_is_authorized_dag(requests, user=user)
