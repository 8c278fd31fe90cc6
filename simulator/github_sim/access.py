"""Who a token is and which repositories it may see.

The simulated owner (an organisation or a user) owns every repository. A token is one of:

* the owner's own token (``owner_type="User"`` only; see ``SimulatorConfig.owner_tokens``),
* a member of the owner organisation (``owner_type="Organization"``, any token that is not an
  outsider), with access to every repository of the organisation,
* an outsider (``SimulatorConfig.outsider_tokens``, or any non-owner token of a user owner),
  who sees public repositories only, like an unauthenticated caller.

GitHub hides what a caller may not see rather than refusing it: a private repository answers
404 to anyone without access
(https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#404-not-found-for-an-existing-resource).
This module only answers the questions; the API decides how a hidden resource is answered.
"""

from __future__ import annotations

from github_sim.config import SimulatorConfig
from github_sim.records import Repo, User
from github_sim.state import SimState


class AccessPolicy:
    """Answers "whose token is this" and "may it see this repository" for the HTTP layer and API."""

    def __init__(self, config: SimulatorConfig, state: SimState) -> None:
        """Read the token roles of ``config`` for the owner of ``state``."""
        self.state = state
        self.owner_type = config.owner_type
        self.owner_tokens = None if config.owner_tokens is None else frozenset(config.owner_tokens)
        self.outsider_tokens = frozenset(config.outsider_tokens)

    def is_outsider(self, token: str | None) -> bool:
        """True for a token listed in ``outsider_tokens``."""
        return token is not None and token in self.outsider_tokens

    def is_owner(self, token: str | None) -> bool:
        """True for a token of the owner account itself (only a user owner has tokens)."""
        if token is None or self.owner_type != "User" or self.is_outsider(token):
            return False
        # owner_tokens=None: every accepted token is the user's own (a personal access token).
        return self.owner_tokens is None or token in self.owner_tokens

    def is_member(self, token: str | None) -> bool:
        """True for a token of a member of the owner organisation (every non-outsider token)."""
        return token is not None and self.owner_type == "Organization" and not self.is_outsider(token)

    def can_read_private(self, token: str | None) -> bool:
        """True when ``token`` has access to the owner's private repositories."""
        return self.is_owner(token) or self.is_member(token)

    def visible(self, token: str | None, repo: Repo) -> bool:
        """True when ``repo`` exists for the caller: public, or private and the caller has access."""
        return not repo.private or self.can_read_private(token)

    def account(self, token: str) -> User:
        """Return the account ``token`` belongs to: the owner for the owner's tokens, else a
        deterministic account of the user pool (stable for a token)."""
        if self.is_owner(token):
            return self.state.owner
        return self.state.user_for_token(token)
