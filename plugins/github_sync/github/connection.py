"""The ``github`` Airflow connection, read the way ``apache-airflow-providers-github`` reads it.

One connection serves the provider's ``GithubHook``/``GithubOperator`` and this project:

* ``password``: a token (personal access token, fine-grained or classic); it wins over App
  auth, as in the provider;
* or GitHub App auth in ``extra``, the provider's keys and types: ``app_id`` (int or str),
  ``installation_id`` (int; optional here, the installation is then found by owner),
  ``private_key`` (PEM) or ``key_path`` (a ``.pem`` file), ``token_permissions`` (optional);
* ``host``: the API base URL (GitHub Enterprise ``https://{hostname}/api/v3``), without
  user info (``user:password@``: refused, it would redirect the token and show a password);
* this project's tunables under one namespaced key, ``extra["github_sync"]``
  (:class:`HookOptions`), so they never collide with the provider's.

Unknown keys are warned about, not fatal (the provider may add keys; a typo is shown in the
task log). Tunables still at the top level (before the namespace existed) are honoured with
a warning saying where they belong. :func:`read_connection` validates everything and
raises :class:`~github_sync.config.ConfigError` naming the connection and the key.

It must not send requests (:mod:`github_sync.github.credentials` buys App tokens) or let
a token or key into a message or repr.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from github_sync.config import DEFAULT_GITHUB_API_URL, ConfigError
from github_sync.config import GITHUB_CONN_OPTIONS_KEY as OPTIONS_KEY
from github_sync.github.session import normalize_base_url

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = DEFAULT_GITHUB_API_URL
# The provider's App keys (apache-airflow-providers-github 2.12, GithubHook.get_conn).
PROVIDER_APP_KEYS = frozenset({"app_id", "installation_id", "private_key", "key_path", "token_permissions"})
# The provider, like GitHub, wants the key as a PEM file.
KEY_FILE_SUFFIX = ".pem"
PEM_PRIVATE_KEY_MARKER = "PRIVATE KEY-----"


class HookOptions(BaseModel):
    """This project's tunables of a GitHub connection (``extra["github_sync"]``).

    Attributes:
        max_wait_s: longest rate-limit wait a task sleeps; longer ones defer.
        reserve_fraction: share of each credential's budget never spent.
        max_in_flight: concurrent requests of one hook.
        retry_max_attempts, retry_backoff_initial_s, retry_backoff_max_s: retries of 5xx
            and transport errors.
        credentials: further ``github`` connections whose credentials share the work
            (several users' tokens, several Apps); each request goes out on the one with
            the most budget left.
        shared_budget: keep each credential's rate-limit state in the target database, so
            every worker sees the others' spending and pauses (off: per process).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    max_wait_s: float | None = Field(default=None, ge=0)
    reserve_fraction: float | None = Field(default=None, ge=0, lt=1)
    max_in_flight: int | None = Field(default=None, ge=1)
    retry_max_attempts: int | None = Field(default=None, ge=1)
    retry_backoff_initial_s: float | None = Field(default=None, ge=0)
    retry_backoff_max_s: float | None = Field(default=None, ge=0)
    credentials: tuple[str, ...] = ()
    shared_budget: bool = True

    def hook_kwargs(self) -> dict[str, Any]:
        """The set tunables as ``GitHubHook`` keyword arguments (retries as a ``RetryPolicy``)."""
        from github_sync.github.retry import RetryPolicy

        kwargs: dict[str, Any] = {
            name: value
            for name in ("max_wait_s", "reserve_fraction", "max_in_flight")
            if (value := getattr(self, name)) is not None
        }
        retry = {
            name.removeprefix("retry_"): value
            for name in ("retry_max_attempts", "retry_backoff_initial_s", "retry_backoff_max_s")
            if (value := getattr(self, name)) is not None
        }
        if retry:
            kwargs["retry_policy"] = RetryPolicy(**retry)
        return kwargs


@dataclass(frozen=True)
class AppAuth:
    """GitHub App authentication from the provider's extras (the key is never shown)."""

    app_id: str
    private_key: str = field(repr=False)
    installation_id: int | None = None
    token_permissions: Mapping[str, str] | None = None


@dataclass(frozen=True)
class GitHubConnection:
    """A validated ``github`` connection."""

    conn_id: str
    base_url: str
    token: str | None = field(default=None, repr=False)
    app: AppAuth | None = None
    options: HookOptions = field(default_factory=HookOptions)

    @property
    def auth_kind(self) -> str:
        """``token`` or ``github_app``."""
        return "token" if self.token else "github_app"


class ConnectionLike(Protocol):
    """What is read of an Airflow ``Connection``."""

    host: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """The extra, decoded."""
        ...


def read_connection(conn_id: str, conn: ConnectionLike) -> GitHubConnection:
    """Validate connection ``conn_id``.

    Raises:
        ConfigError: no token and no App auth, or a value of the wrong type; the message
            names the connection and the key, never a secret.
    """
    extra = dict(conn.extra_dejson or {})
    options = _options(conn_id, extra)
    known = PROVIDER_APP_KEYS | {OPTIONS_KEY} | _tunable_names()
    for key in sorted(set(extra) - known):
        log.warning(
            "connection %r: extra %r is not used by github-sync (nor by the GitHub provider)", conn_id, key
        )
    base_url = normalize_base_url(
        (conn.host or "").strip() or DEFAULT_BASE_URL, source=f"connection {conn_id!r}: host"
    )
    if conn.password:
        ignored = sorted(PROVIDER_APP_KEYS & set(extra))
        if ignored:
            log.warning(
                "connection %r has a token in password and App extras %s: the token is used, as by the provider",
                conn_id,
                ignored,
            )
        return GitHubConnection(conn_id=conn_id, base_url=base_url, token=conn.password, options=options)
    if not PROVIDER_APP_KEYS & set(extra):
        raise ConfigError(
            f"connection {conn_id!r} has no GitHub credential: put a token in its password, or GitHub App "
            "auth in its extra (app_id, installation_id, private_key or key_path)"
        )
    return GitHubConnection(
        conn_id=conn_id, base_url=base_url, app=_app_auth(conn_id, extra), options=options
    )


def _tunable_names() -> frozenset[str]:
    # The numeric tunables (the keys a connection's extra held before the namespace).
    return frozenset(HookOptions.model_fields) - {"credentials", "shared_budget"}


def _options(conn_id: str, extra: Mapping[str, Any]) -> HookOptions:
    namespaced = extra.get(OPTIONS_KEY) or {}
    if not isinstance(namespaced, Mapping):
        raise ConfigError(f"connection {conn_id!r}: extra {OPTIONS_KEY!r} must be a JSON object")
    legacy = {key: value for key, value in extra.items() if key in _tunable_names()}
    if legacy:
        log.warning(
            "connection %r: extras %s belong under %r (honoured for now)",
            conn_id,
            sorted(legacy),
            OPTIONS_KEY,
        )
    merged = {**legacy, **namespaced}
    for key, value in merged.items():
        # pydantic would turn true into 1 and "5" into 5: the connection says what it means.
        if key in _tunable_names() and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(f"connection {conn_id!r}: {OPTIONS_KEY}.{key} must be a number, got {value!r}")
    try:
        options = HookOptions.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{OPTIONS_KEY}.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"connection {conn_id!r}: {problems}") from None
    for key in sorted(options.model_extra or {}):
        log.warning("connection %r: %s.%s is not a github-sync setting (ignored)", conn_id, OPTIONS_KEY, key)
    return options


def _app_auth(conn_id: str, extra: Mapping[str, Any]) -> AppAuth:
    app_id = extra.get("app_id")
    if isinstance(app_id, bool) or not isinstance(app_id, str | int) or not str(app_id).strip():
        raise ConfigError(f"connection {conn_id!r}: extra 'app_id' must be the App's ID (integer or string)")
    installation_id = extra.get("installation_id")
    if installation_id is not None and (
        isinstance(installation_id, bool) or not isinstance(installation_id, int)
    ):
        raise ConfigError(
            f"connection {conn_id!r}: extra 'installation_id' must be an integer (the provider requires one too)"
        )
    permissions = extra.get("token_permissions")
    if permissions is not None and not (
        isinstance(permissions, Mapping) and all(isinstance(v, str) for v in permissions.values())
    ):
        raise ConfigError(
            f"connection {conn_id!r}: extra 'token_permissions' must map permissions to levels"
            ' ({"issues": "read"})'
        )
    return AppAuth(
        app_id=str(app_id).strip(),
        private_key=_private_key(conn_id, extra),
        installation_id=installation_id,
        token_permissions=dict(permissions) if permissions else None,
    )


def _private_key(conn_id: str, extra: Mapping[str, Any]) -> str:
    key_path, inline = extra.get("key_path"), extra.get("private_key")
    if key_path:
        if not str(key_path).endswith(KEY_FILE_SUFFIX):
            raise ConfigError(f"connection {conn_id!r}: extra 'key_path' must name a .pem private key file")
        try:
            key = Path(str(key_path)).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"connection {conn_id!r}: cannot read key_path {key_path!r} ({exc.strerror})"
            ) from None
        source = f"the file {key_path!r}"
    elif isinstance(inline, str) and inline.strip():
        # A key pasted into JSON often arrives with its newlines escaped.
        key = inline if "\n" in inline else inline.replace("\\n", "\n")
        source = "extra 'private_key'"
    else:
        raise ConfigError(
            f"connection {conn_id!r}: GitHub App auth needs extra 'private_key' (PEM) or 'key_path' (a .pem file)"
        )
    if PEM_PRIVATE_KEY_MARKER not in key:
        raise ConfigError(f"connection {conn_id!r}: {source} is not a PEM private key")
    return key


__all__ = ["DEFAULT_BASE_URL", "OPTIONS_KEY", "AppAuth", "GitHubConnection", "HookOptions", "read_connection"]
