"""A SimpleAuthManager that can deny the sync DAGs to named users (the status tests' auth manager).

Why a test double: Airflow's built-in SimpleAuthManager cannot express per-DAG access (its
viewer, user, op and admin roles all read every DAG), and no auth manager that can (FAB's)
is a dependency of this project. This subclass changes one answer only: for the users of
:data:`SYNC_DAGS_BY_USER` it denies the ``github_*`` DAGs they are not given (and "every
DAG" requests); everything else, tokens and roles included, is SimpleAuthManager's own.
The status app asks it through Airflow's real ``requires_access_dag`` and
``batch_is_authorized_dag``, as it would ask FAB's or any other auth manager.
"""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

SYNC_DAG_PREFIX = "github_"
OUTSIDER = "outsider"
FULL_SYNC_ONLY = "full-sync-only"
# Restricted users and the sync DAGs each may still read; every other user is unrestricted.
SYNC_DAGS_BY_USER: dict[str, frozenset[str]] = {
    OUTSIDER: frozenset(),
    FULL_SYNC_ONLY: frozenset({"github_full_sync"}),
}


class DagScopedAuthManager(SimpleAuthManager):
    """SimpleAuthManager, except that restricted users cannot read the sync DAGs not given to them."""

    def is_authorized_dag(
        self,
        *,
        method: ResourceMethod,
        user: SimpleAuthManagerUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
    ) -> bool:
        """Deny a restricted user the sync DAGs outside their set, else answer as SimpleAuthManager."""
        given = SYNC_DAGS_BY_USER.get(user.username)
        dag_id = details.id if details else None
        if (
            given is not None
            and (dag_id is None or dag_id.startswith(SYNC_DAG_PREFIX))
            and dag_id not in given
        ):
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
