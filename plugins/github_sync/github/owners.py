"""GitHub account names: the one rule for a login and for a repository name, and the run's owners.

Every boundary that takes an owner (the DAG Params, ``GITHUB_OWNER``, the CLI, the
status API) validates it here, so the rule cannot drift between them. It must not ask
GitHub whether an owner exists (the sync does) nor import Airflow: the Params only carry
the patterns defined here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# The patterns serve two regex engines: Airflow checks a Param's "pattern" with Python's
# re.search (jsonschema), the trigger form with ECMAScript. "$" differs between them: Python's
# also matches before a final "\n", so "acme\n" passed the Param. "(?!\n)" after "$" removes
# that case and means nothing in ECMAScript, where "$" is already the end; "\Z" is not portable
# (ECMAScript reads it as a literal "Z", or rejects it in unicode mode).
END_OF_INPUT = r"$(?!\n)"

# GitHub logins, as GitHub's sign-up form states the rule (GitHub's docs do not; collected in
# https://github.com/dead-claudia/github-limits): "may only contain alphanumeric characters or
# single hyphens, and cannot begin or end with a hyphen", at most 39 characters, case-insensitive.
# (Some accounts older than that rule end with a hyphen; they are refused here.) The lookahead
# bounds the length without "$", so the body composes with what follows it ("/name").
MAX_LOGIN_LENGTH = 39
LOGIN_BODY = rf"(?=[A-Za-z0-9-]{{1,{MAX_LOGIN_LENGTH}}}(?![A-Za-z0-9-]))[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
# Repository names: "can only contain ASCII letters, digits, and the characters ., -, and _",
# at most 100 characters (GitHub's messages when creating one; https://github.com/github/docs/issues/44518).
# "." and ".." are not names: they would change the API path (GET /repos/acme/.. is GET /repos/).
MAX_REPOSITORY_NAME_LENGTH = 100
REPOSITORY_NAME_BODY = rf"(?!\.\.?(?![A-Za-z0-9._-]))[A-Za-z0-9._-]{{1,{MAX_REPOSITORY_NAME_LENGTH}}}"


def anchored(body: str) -> str:
    """``body`` as a whole-value pattern, the same in Python and ECMAScript (see ``END_OF_INPUT``)."""
    return f"^(?:{body}){END_OF_INPUT}"


OWNER_PATTERN = anchored(LOGIN_BODY)
REPOSITORY_NAME_PATTERN = anchored(REPOSITORY_NAME_BODY)
REPOSITORY_PATTERN = anchored(f"{LOGIN_BODY}/{REPOSITORY_NAME_BODY}")
# An allow-list entry is a repository name, or owner/name when syncing several owners.
ALLOW_LIST_ENTRY_PATTERN = anchored(f"(?:{LOGIN_BODY}/)?{REPOSITORY_NAME_BODY}")
# The longest owner/name: a login, "/", a repository name (also the longest allow-list entry).
MAX_FULL_NAME_LENGTH = MAX_LOGIN_LENGTH + 1 + MAX_REPOSITORY_NAME_LENGTH
MAX_ALLOW_LIST_ENTRY_LENGTH = MAX_FULL_NAME_LENGTH
# At most this many owners in one run: each costs a listing, and a run should stay readable.
MAX_OWNERS = 50
# At most this many allow-list entries: longer lists are better written as separate owners or
# runs, and 1,000 entries of at most 140 characters keep the run's conf (stored in Airflow's
# dag_run row, shown in the UI, sent through the REST API) under about 140 kB.
MAX_ALLOW_LIST = 1000

_LOGIN = re.compile(OWNER_PATTERN)
_REPOSITORY_NAME = re.compile(REPOSITORY_NAME_PATTERN)
_ALLOW_LIST_ENTRY = re.compile(ALLOW_LIST_ENTRY_PATTERN)


class OwnerError(ValueError):
    """An owner or repository name is malformed; the message names where it came from."""


def is_github_login(value: object) -> bool:
    return isinstance(value, str) and _LOGIN.fullmatch(value) is not None


def is_repository_name(value: object) -> bool:
    return isinstance(value, str) and _REPOSITORY_NAME.fullmatch(value) is not None


def check_login(value: object, *, source: str) -> str:
    """Return ``value`` if it is a GitHub login, else raise naming ``source``."""
    if not is_github_login(value):
        raise OwnerError(
            f"{source} must be a GitHub user or organisation login (letters, digits and single "
            f"hyphens, at most {MAX_LOGIN_LENGTH} characters, not starting or ending with a hyphen), "
            f"got {value!r}"
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


def check_allow_list(value: object, *, source: str) -> list[str]:
    """Return the allow-list ``value`` (``None`` is empty), or raise naming ``source`` and the index.

    The Param's schema says the same, but a run's conf can come from the REST API: the task
    checks it again here.
    """
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise OwnerError(f"{source} must be a list of repository names, got {type(value).__name__}")
    if len(value) > MAX_ALLOW_LIST:
        raise OwnerError(f"{source} lists {len(value)} repositories; at most {MAX_ALLOW_LIST} per run")
    for index, entry in enumerate(value):
        if not isinstance(entry, str) or len(entry) > MAX_ALLOW_LIST_ENTRY_LENGTH:
            shown = entry if not isinstance(entry, str) else f"{len(entry)} characters"
            raise OwnerError(
                f"{source}[{index}] must be a repository name or owner/name of at most "
                f"{MAX_ALLOW_LIST_ENTRY_LENGTH} characters, got {shown!r}"
            )
        if _ALLOW_LIST_ENTRY.fullmatch(entry) is None:
            raise OwnerError(
                f"{source}[{index}] must be a repository name or owner/name (a GitHub login, '/', and "
                f"letters, digits, '.', '-' or '_'; not '.' or '..'), got {entry!r}"
            )
    return list(value)


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
