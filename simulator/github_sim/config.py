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

    def __post_init__(self) -> None:
        if self.owner_type not in ("Organization", "User"):
            raise ValueError(f"owner_type must be 'Organization' or 'User', not {self.owner_type!r}")
        if self.repos < 0:
            raise ValueError("repos must be >= 0")
        if self.private_repos is not None and not 0 <= self.private_repos <= self.repos:
            raise ValueError(f"private_repos must be between 0 and repos ({self.repos})")
        both = set(self.owner_tokens or ()) & set(self.outsider_tokens)
        if both:
            raise ValueError(f"tokens cannot be both owner and outsider tokens: {sorted(both)}")
