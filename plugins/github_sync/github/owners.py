"""GitHub account names: the one rule for a login and for a repository name, and the run's owners.

Every boundary that takes an owner (the DAG Params, ``GITHUB_OWNER``, the CLI, the
status API) validates it here, so the rule cannot drift between them. It must not ask
GitHub whether an owner exists (the sync does) nor import Airflow: the Params only carry
the patterns defined here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# GitHub logins: alphanumerics and single hyphens, at most 39 characters, case-insensitive.
# The Param schemas carry the pattern for the trigger form; Python checks use fullmatch,
# so a trailing newline (which `$` lets through) is refused too.
OWNER_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$"
REPOSITORY_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"
REPOSITORY_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$"
# At most this many owners in one run: each costs a listing, and a run should stay readable.
MAX_OWNERS = 50

_LOGIN = re.compile(OWNER_PATTERN.strip("^$"))
_REPOSITORY_NAME = re.compile(REPOSITORY_NAME_PATTERN.strip("^$"))


class OwnerError(ValueError):
    """An owner or repository name is malformed; the message names where it came from."""


def is_github_login(value: object) -> bool:
    return isinstance(value, str) and _LOGIN.fullmatch(value) is not None


def is_repository_name(value: object) -> bool:
    # "." and ".." are not repository names; they would change the API path.
    return (
        isinstance(value, str) and _REPOSITORY_NAME.fullmatch(value) is not None and value not in {".", ".."}
    )


def check_login(value: object, *, source: str) -> str:
    """Return ``value`` if it is a GitHub login, else raise naming ``source``."""
    if not is_github_login(value):
        raise OwnerError(
            f"{source} must be a GitHub user or organisation login (letters, digits and "
            f"hyphens, at most 39 characters, not starting with a hyphen), got {value!r}"
        )
    return str(value)


def check_repository(value: object, *, source: str) -> tuple[str, str]:
    """Split ``owner/name`` into its parts, or raise naming ``source``."""
    owner, _, name = value.partition("/") if isinstance(value, str) else ("", "", "")
    if not is_github_login(owner) or not is_repository_name(name):
        raise OwnerError(
            f"{source} must be 'owner/name' (a GitHub login and a repository name), got {value!r}"
        )
    return owner, name


def parse_owner_list(text: str, *, source: str) -> list[str]:
    """Owners written as ``acme, octo`` (the environment's form); duplicates dropped, order kept."""
    return unique_owners([part.strip() for part in text.split(",") if part.strip()], source=source)


def unique_owners(owners: Sequence[object], *, source: str) -> list[str]:
    """Validate a list of owners; drop case-insensitive duplicates, keep the order given."""
    if len(owners) > MAX_OWNERS:
        raise OwnerError(f"{source} lists {len(owners)} owners; at most {MAX_OWNERS} per run")
    seen: dict[str, str] = {}
    for index, owner in enumerate(owners):
        login = check_login(owner, source=f"{source}[{index}]")
        seen.setdefault(login.lower(), login)
    return list(seen.values())


def resolve_owners(owner: object, owners: object) -> list[str]:
    """The run's owners from the Params: ``owner`` (one owner, the shorthand) wins over ``owners``.

    Raises:
        OwnerError: neither is set, or a value is not a login; the message names the Param.
    """
    if owner not in (None, ""):
        return [check_login(owner, source="Param 'owner'")]
    if isinstance(owners, str):
        listed = parse_owner_list(owners, source="Param 'owners'")
    elif isinstance(owners, list | tuple):
        listed = unique_owners(list(owners), source="Param 'owners'")
    elif owners is None:
        listed = []
    else:
        raise OwnerError(f"Param 'owners' must be a list of GitHub logins, got {owners!r}")
    if not listed:
        raise OwnerError(
            "no owner to sync: set the Param 'owners' (or 'owner') when triggering, "
            "or GITHUB_OWNER for scheduled runs"
        )
    return listed
