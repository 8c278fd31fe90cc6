"""Configuration of a simulated GitHub: the shape of the organisation, its limits and who its tokens are.

Values and their validation only; nothing here generates data or serves requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

# Generated history ends here (fixed, not "now", so a seed gives the same data every day).
DATA_ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
# GitHub's documented primary limits.
AUTHENTICATED_LIMIT = 5000
UNAUTHENTICATED_LIMIT = 60
RESET_INTERVAL_S = 3600
# Issue listings with more items than this page with opaque `after` cursors, like GitHub's.
CURSOR_MIN_ITEMS = 1000
# "Installation access tokens expire one hour from the time you create them."
# https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app
INSTALLATION_TOKEN_LIFETIME_S = 3600
# What an installation may do unless configured otherwise (read access to what github-sync reads).
DEFAULT_INSTALLATION_PERMISSIONS = {
    "metadata": "read",
    "contents": "read",
    "issues": "read",
    "pull_requests": "read",
}
REPOSITORY_SELECTIONS = ("all", "selected")
# SimulatorConfig.repo_mix: "default" draws big, medium, empty and archived repositories among
# small ones; "small" makes every repository small (scale benchmarks of many repositories).
REPO_MIXES = ("default", "small")
PERMISSION_LEVELS = ("read", "write", "admin")


@dataclass
class InstallationConfig:
    """One installation of a GitHub App on an account.

    Attributes:
        installation_id: the installation's id (``/app/installations/{installation_id}``).
        account: login of the account the App is installed on; in practice the simulated owner
            (installations on any other account exist but reach no repository).
        permissions: what the installation (and each of its tokens) may do, ``{name: level}``.
        repository_selection: ``"all"`` (every repository of the account, private included) or
            ``"selected"`` (only ``repositories``).
        repositories: names of the selected repositories (``repository_selection="selected"``).
        users: organisation users counted by the installation's rate limit (50 requests per user
            beyond 20); the simulator keeps no membership list, so none are counted by default.
    """

    installation_id: int
    account: str
    permissions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_INSTALLATION_PERMISSIONS))
    repository_selection: str = "all"
    repositories: list[str] = field(default_factory=list)
    users: int = 0

    def __post_init__(self) -> None:
        if self.repository_selection not in REPOSITORY_SELECTIONS:
            raise ValueError(f"repository_selection must be one of {REPOSITORY_SELECTIONS}")
        bad = {k: v for k, v in self.permissions.items() if v not in PERMISSION_LEVELS}
        if bad:
            raise ValueError(f"permission levels must be one of {PERMISSION_LEVELS}: {bad}")


@dataclass
class AppConfig:
    """A GitHub App that can authenticate with JWTs signed by its private key.

    Attributes:
        app_id: the App's id; a JWT's ``iss`` may be it (number or string) or ``client_id``.
        slug: the App's URL-friendly name (its bot account is ``{slug}[bot]``).
        public_key_pem: PEM of the RSA public key that verifies the App's RS256 JWTs.
        client_id: the App's client ID (``Iv1.`` and hex), also accepted as the JWT ``iss``.
        installations: where the App is installed.
        token_lifetime_s: lifetime of an installation access token (GitHub: one hour).
        name: display name of the App.
    """

    app_id: int
    slug: str
    public_key_pem: str
    client_id: str = ""
    installations: list[InstallationConfig] = field(default_factory=list)
    token_lifetime_s: int = INSTALLATION_TOKEN_LIFETIME_S
    name: str = ""

    def __post_init__(self) -> None:
        if not self.client_id:
            self.client_id = f"Iv1.{self.app_id:016x}"
        if not self.name:
            self.name = self.slug
        if self.token_lifetime_s <= 0:
            raise ValueError("token_lifetime_s must be > 0")
        ids = [i.installation_id for i in self.installations]
        if len(ids) != len(set(ids)):
            raise ValueError(f"installation ids of app {self.app_id} are not unique: {ids}")


@dataclass
class SimulatorConfig:
    """Everything that shapes one simulated GitHub.

    Attributes:
        owner: login of the organisation (or user) owning every repository.
        owner_type: ``"Organization"`` or ``"User"``.
        repos: number of repositories to generate.
        seed: seed of the data set and of the fault RNG; same seed, same data.
        latency_ms: delay added to every API request.
        rate_limit: primary limit per token per window.
        reset_interval_s: length of a primary rate-limit window.
        tokens: accepted tokens; ``None`` accepts any non-empty token.
        unauthenticated_limit: primary limit of requests without a token.
        host: interface to bind.
        port: port to bind; 0 picks a free one.
        big_repos: number of repositories with thousands of issues; ``None`` scales with ``repos``.
        empty_repos: number of repositories without any commit.
        archived_repos: number of archived repositories.
        cursor_min_items: issue listings larger than this use ``after`` cursors in Link headers.
        data_anchor: end of the generated history.
        start_time: what the clock shows at start; ``None`` follows real time.
        html_base: base of the ``html_url`` fields.
        owner_tokens: tokens that belong to the owner account; only meaningful when ``owner_type``
            is ``"User"``. ``None`` makes every accepted token (except ``outsider_tokens``) the
            owner's own token, as a personal access token would be; ignored for an
            ``"Organization"``, which has no tokens of its own. The owner's tokens see its private
            repositories and ``GET /user`` answers the owner.
        outsider_tokens: tokens of accounts that are neither the owner nor members of the owner
            organisation: they see public repositories only (``GET /orgs/{org}/repos``,
            ``GET /repos/...``) and ``GET /user/repos`` answers ``[]``. Every other accepted token
            of an ``"Organization"`` owner is a member with access to all its repositories.
        private_repos: number of private repositories, chosen deterministically from the seed
            (non-big, non-empty ones first); ``None`` keeps the seeded default share of small ones.
        apps: GitHub Apps whose JWTs and installation access tokens (``ghs_...``) are accepted;
            issued installation tokens are accepted even when ``tokens`` is a fixed list.
        token_users: ``{token: login}``; tokens of one login share one primary budget (GitHub's
            limit is per user) and ``GET /user`` answers that login. Unmapped tokens keep a
            budget each.
        repo_mix: ``"default"`` (big, medium, empty and archived repositories among small ones,
            as ``big_repos``, ``empty_repos`` and ``archived_repos`` say) or ``"small"``: every
            repository small (at most 30 issues and 150 commits), those three counts ignored, so
            10,000 repositories fit in a few hundred MB for scale benchmarks.
    """

    owner: str = "acme"
    owner_type: str = "Organization"
    repos: int = 20
    seed: int = 1
    latency_ms: int = 0
    rate_limit: int = AUTHENTICATED_LIMIT
    reset_interval_s: int = RESET_INTERVAL_S
    tokens: list[str] | set[str] | None = None
    unauthenticated_limit: int = UNAUTHENTICATED_LIMIT
    host: str = "127.0.0.1"
    port: int = 0
    big_repos: int | None = None
    empty_repos: int = 2
    archived_repos: int = 2
    cursor_min_items: int = CURSOR_MIN_ITEMS
    data_anchor: datetime = field(default=DATA_ANCHOR)
    start_time: datetime | None = None
    html_base: str = "https://github.com"
    owner_tokens: list[str] | None = None
    outsider_tokens: list[str] = field(default_factory=list)
    private_repos: int | None = None
    apps: list[AppConfig] = field(default_factory=list)
    token_users: dict[str, str] = field(default_factory=dict)
    repo_mix: str = "default"

    def __post_init__(self) -> None:
        if self.repo_mix not in REPO_MIXES:
            raise ValueError(f"repo_mix must be one of {REPO_MIXES}, not {self.repo_mix!r}")
        if self.owner_type not in ("Organization", "User"):
            raise ValueError(f"owner_type must be 'Organization' or 'User', not {self.owner_type!r}")
        if self.repos < 0:
            raise ValueError("repos must be >= 0")
        if self.private_repos is not None and not 0 <= self.private_repos <= self.repos:
            raise ValueError(f"private_repos must be between 0 and repos ({self.repos})")
        both = set(self.owner_tokens or ()) & set(self.outsider_tokens)
        if both:
            raise ValueError(f"tokens cannot be both owner and outsider tokens: {sorted(both)}")
        installation_ids = [i.installation_id for a in self.apps for i in a.installations]
        if len(installation_ids) != len(set(installation_ids)):
            raise ValueError(f"installation ids must be unique across apps: {installation_ids}")
        app_ids = [a.app_id for a in self.apps]
        if len(app_ids) != len(set(app_ids)):
            raise ValueError(f"app ids must be unique: {app_ids}")
