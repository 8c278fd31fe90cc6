"""The status API and dashboard: a FastAPI app mounted by the plugin under ``/github-sync``.

Every route, the page, its static files and ``/github-sync/openapi.json`` included, depends
on :func:`github_sync.status.access.requires_sync_dag_access`: a request needs Airflow's
JWT, either as ``Authorization: Bearer`` (API clients) or as the ``_token`` cookie the
Airflow UI sets at login (the browser loading the page, its scripts, ``fetch`` and
``EventSource`` calls, all same-origin), and the auth manager's read access to the runs of
the sync DAGs the route shows (403 otherwise). A browser opening the page without a
session is sent to Airflow's login page instead of seeing a bare 401. FastAPI's own schema
route would not get the app's dependencies, so it is disabled and served as a normal route.

Owns the routes: their parameters and validation, their response models
(:mod:`github_sync.status.responses`, so ``/github-sync/openapi.json`` documents every
body), the error answers and the static files. Must not: run SQL itself (the query
modules do), or serve anything without the auth dependency.

One piece (longer than 300 lines) because the routes are closures of :func:`create_app`:
they share the app's database provider, stream registry and error handlers, and the
route table is easiest to review in one place. What they compute lives in the query modules.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from github_sync.github.owners import is_github_login
from github_sync.status import budget, finished_runs, live_runs, repository_stats, run_owners
from github_sync.status.db import DatabaseNotConfigured, DatabaseProvider
from github_sync.status.responses import (
    ErrorBody,
    HistoryResponse,
    OwnersResponse,
    ProgressResponse,
    RateLimitResponse,
    RepositoriesResponse,
    RunDetail,
    StatisticsResponse,
)
from github_sync.status.stream import DEFAULT_HEARTBEAT_S, DEFAULT_POLL_INTERVAL_S, EVENTS, sync_events
from github_sync.store.run_records import MODES

log = logging.getLogger(__name__)

URL_PREFIX = "/github-sync"
STATIC_DIR = Path(__file__).with_name("static")
DASHBOARD_HTML = STATIC_DIR / "dashboard.html"
MAX_DAYS = 366
DEFAULT_WINDOW_DAYS = 30
DEFAULT_HISTORY_LIMIT = 25
MAX_HISTORY_LIMIT = 500
DEFAULT_REPOSITORY_LIMIT = 10
MAX_REPOSITORY_LIMIT = 100
# A run every minute for 19 years is 10 million rows: no history page starts further in,
# and the bound keeps the value far inside PostgreSQL's bigint (a 20-digit offset was a 500).
MAX_HISTORY_OFFSET = 10_000_000
# Airflow's own limit on a run_id (airflow.models.base.ID_LEN): a longer one is no run.
MAX_RUN_ID_CHARS = 250
OPENAPI_PATH = "/openapi.json"
# Any characters but NUL, which PostgreSQL text cannot hold (a NUL in the path was a 500).
RUN_ID_PATTERN = "^[^\\x00]*$"
RUN_STATES = ("success", "failed")
# The vendored library never changes under its versioned name; our own files may.
VENDOR_CACHE_CONTROL = "private, max-age=86400"
OWN_CACHE_CONTROL = "no-cache"
UNAUTHORIZED_STATUSES = (401, 403)
# How much of a rejected owner is echoed back in the 422.
OWNER_ECHO_CHARS = 60
DATABASE_UNAVAILABLE = "github-sync database unavailable"
# What every JSON route may answer besides its body (documented in the OpenAPI schema).
DATABASE_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "The github-sync database is unreachable or not configured."}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such github-sync run."}
}
# The stream's events, documented on top of FastAPI's generic text/event-stream item: the
# event names and the JSON in ``data`` (a RunSnapshot, defined in the schema's components).
STREAM_OPENAPI: dict[str, Any] = {
    "responses": {
        "200": {
            "content": {
                "text/event-stream": {
                    "itemSchema": {
                        "properties": {
                            "event": {"type": "string", "enum": list(EVENTS)},
                            "data": {
                                "type": "string",
                                "contentMediaType": "application/json",
                                "contentSchema": {"$ref": "#/components/schemas/RunSnapshot"},
                                "description": "The run's snapshot; a vanished run's sync:error adds `error`.",
                            },
                        }
                    }
                }
            }
        }
    }
}
# Proxies must pass events through untouched; FastAPI's EventSourceResponse already sends
# Cache-Control: no-cache and X-Accel-Buffering: no, this adds the other directive.
STREAM_CACHE_DIRECTIVE = "no-transform"


def owner_filter(
    owner: str | None = Query(
        None,
        description="Only this GitHub owner (organisation or user login, compared case-insensitively).",
    ),
) -> str | None:
    """The optional ``owner`` query parameter, validated as a GitHub login (422 otherwise)."""
    if owner is None or is_github_login(owner):
        return owner
    raise HTTPException(
        status_code=422,
        detail=(
            "owner must be a GitHub user or organisation login (letters, digits and hyphens, "
            f"at most 39 characters, not starting with a hyphen), got {owner[:OWNER_ECHO_CHARS]!r}"
        ),
    )


class StreamRegistry:
    """Counts open event streams (observability, and how tests prove a stream ended)."""

    def __init__(self) -> None:
        """Create an empty registry."""
        self._lock = threading.Lock()
        self.open = 0
        self.closed = 0

    def opened(self) -> None:
        """Record a new stream."""
        with self._lock:
            self.open += 1

    def close(self) -> None:
        """Record a stream that ended."""
        with self._lock:
            self.open -= 1
            self.closed += 1


def _default_auth_dependency() -> Callable[..., Any]:
    # Imported lazily: the plugin module is imported by every Airflow component, the
    # api-server's security module only matters where the app is served.
    from github_sync.status.access import requires_sync_dag_access

    return requires_sync_dag_access()


def _login_redirect(request: Request) -> Response | None:
    """Where a browser without a session should go: Airflow's login page, back here after."""
    try:
        from airflow.api_fastapi.app import get_auth_manager

        login = get_auth_manager().get_url_login(next_url=str(request.url))
    except Exception:
        log.debug("No login URL from the auth manager", exc_info=True)
        return None
    return RedirectResponse(login, status_code=303)


def create_app(
    *,
    database: DatabaseProvider | None = None,
    auth_dependency: Callable[..., Any] | None = None,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    heartbeat_s: float = DEFAULT_HEARTBEAT_S,
) -> FastAPI:
    """Build the status app.

    Args:
        database: how to reach the target database; defaults to the ``github_sync_db``
            connection (falling back to ``GITHUB_SYNC_DATABASE_URL``).
        auth_dependency: the dependency guarding every route; defaults to Airflow's
            authentication plus read access to the sync DAGs' runs
            (:func:`github_sync.status.access.requires_sync_dag_access`).
        poll_interval_s: how often the event stream reads the run tables.
        heartbeat_s: longest silence on the event stream before a heartbeat comment.

    Returns:
        The FastAPI app, to be mounted under :data:`URL_PREFIX`.
    """
    provider = database or DatabaseProvider()
    guard = auth_dependency or _default_auth_dependency()
    app = FastAPI(
        title="github-sync status",
        description="Statistics, history and live progress of the github-sync DAG runs.",
        dependencies=[Depends(guard)],
        # Airflow's own /docs covers its API; this app's schema stays at /github-sync/openapi.json.
        docs_url=None,
        redoc_url=None,
        # FastAPI's schema route ignores the app's dependencies (it answered without login):
        # off, and served below as an ordinary, guarded route.
        openapi_url=None,
    )
    app.state.streams = StreamRegistry()
    app.state.database = provider

    @contextmanager
    def connection() -> Iterator[psycopg.Connection[Any]]:
        conn = provider.connect()
        try:
            yield conn
        finally:
            conn.close()

    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        log.warning("github-sync database unavailable for %s: %s", request.url.path, exc)
        return JSONResponse({"detail": DATABASE_UNAVAILABLE}, status_code=503)

    @app.exception_handler(DatabaseNotConfigured)
    async def database_missing(request: Request, exc: DatabaseNotConfigured) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        wants_page = request.url.path.rstrip("/") == request.scope.get("root_path", "").rstrip("/")
        # A user the auth manager refuses the sync DAGs is logged in already: sending them
        # to the login page would bring them straight back here (a redirect loop).
        refused_access = getattr(exc, "refused_access", False)
        if (
            exc.status_code in UNAUTHORIZED_STATUSES
            and not refused_access
            and wants_page
            and "text/html" in request.headers.get("accept", "")
        ):
            redirect = _login_redirect(request)
            if redirect is not None:
                return redirect
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi(request: Request) -> JSONResponse:
        # As FastAPI's own schema route: the paths are relative to the mount point, so the
        # mount point (and any Airflow base_url prefix) is the document's server.
        schema = app.openapi()
        root_path = request.scope.get("root_path", "").rstrip("/")
        if root_path and root_path not in {server.get("url") for server in schema.get("servers", [])}:
            schema = {**schema, "servers": [{"url": root_path}, *schema.get("servers", [])]}
        return JSONResponse(schema)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard(request: Request) -> HTMLResponse:
        # Absolute URLs from the mount point: the page works at /github-sync and
        # /github-sync/, and behind an Airflow base_url with a path prefix.
        base = request.scope.get("root_path", "").rstrip("/")
        airflow_base = base.removesuffix(URL_PREFIX)
        html = DASHBOARD_HTML.read_text(encoding="utf-8")
        html = html.replace("__BASE__", base).replace("__AIRFLOW_BASE__", airflow_base)
        return HTMLResponse(html, headers={"Cache-Control": OWN_CACHE_CONTROL})

    @app.get("/static/{path:path}", include_in_schema=False)
    def static(path: str) -> FileResponse:
        target = (STATIC_DIR / path).resolve()
        if (
            not target.is_file()
            or not target.is_relative_to(STATIC_DIR.resolve())
            or target == DASHBOARD_HTML
        ):
            raise HTTPException(status_code=404, detail="not found")
        vendored = target.is_relative_to((STATIC_DIR / "vendor").resolve())
        return FileResponse(
            target, headers={"Cache-Control": VENDOR_CACHE_CONTROL if vendored else OWN_CACHE_CONTROL}
        )

    @app.get("/api/stats", responses=DATABASE_ERRORS)
    def stats(
        days: int = Query(DEFAULT_WINDOW_DAYS, ge=1, le=MAX_DAYS),
        owner: str | None = Depends(owner_filter),
    ) -> StatisticsResponse:
        """Per-mode and overall statistics of the runs logged in the last ``days`` days.

        With ``owner``: of the runs that included that owner.
        """
        with connection() as conn:
            return finished_runs.statistics(conn, days=days, owner=owner)

    @app.get("/api/history", responses=DATABASE_ERRORS)
    def history(
        limit: int = Query(DEFAULT_HISTORY_LIMIT, ge=1, le=MAX_HISTORY_LIMIT),
        offset: int = Query(0, ge=0, le=MAX_HISTORY_OFFSET),
        mode: str | None = Query(None),
        state: str | None = Query(None),
        owner: str | None = Depends(owner_filter),
    ) -> HistoryResponse:
        """A page of logged runs, newest first (with ``owner``: the runs that included it)."""
        if mode is not None and mode not in MODES:
            raise HTTPException(status_code=422, detail=f"mode must be one of {', '.join(MODES)}")
        if state is not None and state not in RUN_STATES:
            raise HTTPException(status_code=422, detail=f"state must be one of {', '.join(RUN_STATES)}")
        with connection() as conn:
            return finished_runs.history(
                conn, limit=limit, offset=offset, mode=mode, state=state, owner=owner
            )

    @app.get("/api/runs/{dag_id}/{run_id:path}", responses={**NOT_FOUND, **DATABASE_ERRORS})
    def run(
        dag_id: str,
        run_id: str = PathParameter(
            max_length=MAX_RUN_ID_CHARS,
            pattern=RUN_ID_PATTERN,
            description="The Airflow run id (no NUL character: PostgreSQL text cannot hold one).",
        ),
    ) -> RunDetail:
        """One run with every repository's outcome (run ids contain ``:`` and ``+``, hence ``:path``).

        ``dag_id`` is one of the sync DAGs (404 otherwise, checked with the caller's access).
        """
        with connection() as conn:
            detail = finished_runs.run_detail(conn, dag_id, run_id)
        if detail is None:
            raise HTTPException(status_code=404, detail=f"no github-sync run {dag_id}/{run_id}")
        return detail

    @app.get("/api/rate-limit", responses=DATABASE_ERRORS)
    def rate_limit() -> RateLimitResponse:
        """The latest known GitHub budget and what the syncs spent in the last hour."""
        with connection() as conn:
            return budget.rate_limit(conn)

    @app.get("/api/repositories", responses=DATABASE_ERRORS)
    def repositories(
        days: int = Query(DEFAULT_WINDOW_DAYS, ge=1, le=MAX_DAYS),
        limit: int = Query(DEFAULT_REPOSITORY_LIMIT, ge=1, le=MAX_REPOSITORY_LIMIT),
        owner: str | None = Depends(owner_filter),
    ) -> RepositoriesResponse:
        """The slowest and the failing repositories (with ``owner``: that owner's repositories)."""
        with connection() as conn:
            return repository_stats.repositories(conn, days=days, limit=limit, owner=owner)

    @app.get("/api/progress", responses=DATABASE_ERRORS)
    def progress(owner: str | None = Depends(owner_filter)) -> ProgressResponse:
        """The runs in progress, with done/total, current repositories, elapsed and ETA.

        With ``owner``: the runs that include that owner.
        """
        with connection() as conn:
            return live_runs.progress(conn, owner=owner)

    @app.get("/api/owners", responses=DATABASE_ERRORS)
    def owners() -> OwnersResponse:
        """The GitHub owners known from live projects and recorded runs, with their repository counts."""
        with connection() as conn:
            return run_owners.known_owners(conn)

    def stream_cache_directive(response: Response) -> None:
        # A second Cache-Control line: its directives add to FastAPI's no-cache.
        response.headers.append("Cache-Control", STREAM_CACHE_DIRECTIVE)

    @app.get(
        "/stream",
        response_class=EventSourceResponse,
        dependencies=[Depends(stream_cache_directive)],
        openapi_extra=STREAM_OPENAPI,
    )
    async def stream(
        request: Request, owner: str | None = Depends(owner_filter)
    ) -> AsyncIterator[ServerSentEvent]:
        """Server-sent ``sync:start|progress|complete|error`` events until the client leaves.

        With ``owner``: only the runs that include that owner.
        """
        registry: StreamRegistry = app.state.streams
        registry.opened()
        try:
            async for event in sync_events(
                provider.connect,
                is_disconnected=request.is_disconnected,
                poll_interval_s=poll_interval_s,
                heartbeat_s=heartbeat_s,
                owner=owner,
            ):
                yield event
        finally:
            registry.close()

    return app


class LazyStatusApp:
    """An ASGI app that builds the status app on its first request.

    The plugin is imported by every Airflow component (scheduler, workers, dag-processor);
    only the api-server serves requests, so only it pays for building the app.
    """

    def __init__(self, factory: Callable[[], FastAPI] = create_app) -> None:
        """Create the wrapper.

        Args:
            factory: builds the real app.
        """
        self._factory = factory
        self._app: FastAPI | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> FastAPI:
        """The real app (built on first access)."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app

    @property
    def built(self) -> FastAPI | None:
        """The real app if it has been built, else None (reading this never builds it)."""
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        if scope["type"] == "lifespan":
            # Mounted sub-apps do not receive lifespan events; nothing to start or stop.
            return
        await self.app(scope, receive, send)
