"""Who a token is and which repositories it may see.

The simulated owner (an organisation or a user) owns every repository. A token is one of:

* the owner's own token (``owner_type="User"`` only; see ``SimulatorConfig.owner_tokens``),
* a member of the owner organisation (``owner_type="Organization"``, any token that is not an
  outsider), with access to every repository of the organisation,
* an outsider (``SimulatorConfig.outsider_tokens``, or any non-owner token of a user owner),
  who sees public repositories only, like an unauthenticated caller,
* an installation access token of a GitHub App (``ghs_...``, issued by the simulator): it acts
  as the App's bot on the installation's account and sees that account's repositories (all of
  them, private included, or the selected ones).

Which login a token belongs to (``SimulatorConfig.token_users``) also decides its primary
budget: GitHub's limit is per user, shared by all of that user's tokens, and per installation
for installation tokens (:meth:`AccessPolicy.budget_key`).

GitHub hides what a caller may not see rather than refusing it: a private repository answers
404 to anyone without access
(https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#404-not-found-for-an-existing-resource).
This module only answers the questions; the API decides how a hidden resource is answered.
"""

from __future__ import annotations

import zlib

from github_sim.apps import BOT_ID_BASE, AppRegistry, IssuedToken
from github_sim.config import SimulatorConfig
from github_sim.ratelimit import ANONYMOUS
from github_sim.records import Repo, User
from github_sim.state import SimState

# Ids of accounts named by token_users that the generated user pool lacks.
EXTRA_USER_ID_BASE = 70_000_000
EXTRA_USER_ID_SPAN = 1_000_000


class AccessPolicy:
    """Answers "whose token is this" and "may it see this repository" for the HTTP layer and API."""

    def __init__(self, config: SimulatorConfig, state: SimState, apps: AppRegistry | None = None) -> None:
        """Read the token roles of ``config`` for the owner of ``state``; ``apps`` knows the
        installation tokens issued (``None``: no App)."""
        self.state = state
        self.apps = apps
        self.owner_type = config.owner_type
        self.owner_tokens = None if config.owner_tokens is None else frozenset(config.owner_tokens)
        self.outsider_tokens = frozenset(config.outsider_tokens)
        self.token_users = dict(config.token_users)
        self._extra_users: dict[str, User] = {}

    def installation_token(self, token: str | None) -> IssuedToken | None:
        """The valid installation access token ``token`` (``None`` for any other or an expired one)."""
        return self.apps.live(token) if self.apps is not None else None

    def login_of(self, token: str | None) -> str | None:
        """The login ``token`` is mapped to in ``token_users``, or ``None``."""
        return self.token_users.get(token) if token is not None else None

    def budget_key(self, token: str | None) -> str:
        """Key of the primary budget ``token`` spends.

        One per installation for installation tokens
        (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#primary-rate-limit-for-github-app-installations),
        one per user for tokens mapped to a login, shared by all of that user's tokens
        (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#primary-rate-limit-for-authenticated-users),
        else one per token; unauthenticated callers share one.
        """
        if token is None:
            return ANONYMOUS
        issued = self.installation_token(token)
        if issued is not None:
            return installation_key(issued.installation_id)
        login = self.login_of(token)
        if login is not None:
            return user_key(login)
        return token

    def is_outsider(self, token: str | None) -> bool:
        """True for a token listed in ``outsider_tokens``."""
        return token is not None and token in self.outsider_tokens

    def is_owner(self, token: str | None) -> bool:
        """True for a token of the owner account itself (only a user owner has tokens)."""
        if token is None or self.owner_type != "User" or self.is_outsider(token):
            return False
        login = self.login_of(token)
        if login is not None:
            return login.lower() == self.state.owner.login.lower()
        if self.installation_token(token) is not None:
            return False  # the App's bot, not the user
        # owner_tokens=None: every accepted token is the user's own (a personal access token).
        return self.owner_tokens is None or token in self.owner_tokens

    def is_member(self, token: str | None) -> bool:
        """True for a token of a member of the owner organisation (every non-outsider token)."""
        return (
            token is not None
            and self.owner_type == "Organization"
            and not self.is_outsider(token)
            and self.installation_token(token) is None
        )

    def can_read_private(self, token: str | None) -> bool:
        """True when ``token`` has access to the owner's private repositories."""
        return self.is_owner(token) or self.is_member(token)

    def installation_covers(self, issued: IssuedToken, repo: Repo) -> bool:
        """True when the installation token ``issued`` reaches ``repo`` (its account's, selected)."""
        if self.apps is None:
            return False
        found = self.apps.installation(issued.installation_id)
        if found is None or found[1].account.lower() != self.state.owner.login.lower():
            return False
        inst = found[1]
        if inst.repository_selection == "selected" and repo.name not in inst.repositories:
            return False
        return issued.repository_ids is None or repo.id in issued.repository_ids

    def visible(self, token: str | None, repo: Repo) -> bool:
        """True when ``repo`` exists for the caller: public, or private and the caller has access."""
        if not repo.private:
            return True
        issued = self.installation_token(token)
        if issued is not None:
            return self.installation_covers(issued, repo)
        return self.can_read_private(token)

    def account(self, token: str) -> User:
        """Return the account ``token`` belongs to: the owner for the owner's tokens, else a
        deterministic account of the user pool (stable for a token)."""
        if self.is_owner(token):
            return self.state.owner
        issued = self.installation_token(token)
        if issued is not None and self.apps is not None:
            return bot_account(self.apps.apps[issued.app_id].slug, issued.app_id)
        login = self.login_of(token)
        if login is not None:
            return self.user_named(login)
        return self.state.user_for_token(token)

    def user_named(self, login: str) -> User:
        """The account called ``login``: from the generated pool, else a stable extra account."""
        with self.state.lock:
            user = self.state.user(login)
            if user is None:
                user = self._extra_users.get(login.lower())
                if user is None:
                    uid = EXTRA_USER_ID_BASE + zlib.crc32(login.lower().encode()) % EXTRA_USER_ID_SPAN
                    user = User(login=login, id=uid, created_at=self.state.owner.created_at)
                    self._extra_users[login.lower()] = user
            return user


INSTALLATION_KEY_PREFIX = "installation:"


def installation_key(installation_id: int) -> str:
    """Budget key of an installation (all its tokens share it)."""
    return f"{INSTALLATION_KEY_PREFIX}{installation_id}"


def installation_of_key(key: str) -> int | None:
    """The installation id of an installation's budget key, else ``None``."""
    rest = key.removeprefix(INSTALLATION_KEY_PREFIX)
    return int(rest) if rest != key and rest.isdigit() else None


def user_key(login: str) -> str:
    """Budget key of a user named in ``token_users`` (all its tokens share it)."""
    return f"user:{login.lower()}"


def bot_account(slug: str, app_id: int) -> User:
    """The bot account ``{slug}[bot]`` an App's installation tokens act as."""
    return User(login=f"{slug}[bot]", id=BOT_ID_BASE + app_id, type="Bot")
