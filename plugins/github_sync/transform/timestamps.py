"""Timestamps: parse the forms GitHub sends into aware UTC datetimes, and pick the latest of several.

Pure functions only: nothing here reads the clock (the run's time is always passed in) or knows
which column or cursor a timestamp belongs to.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["latest", "parse_github_timestamp"]


def latest(*times: datetime | None) -> datetime | None:
    """Return the latest of ``times``, ignoring ``None``; ``None`` when none is given.

    E.g. a high-water mark that only moves forward: ``latest(stored, seen)``.
    """
    present = [value for value in times if value is not None]
    return max(present) if present else None


def parse_github_timestamp(value: str | int | float | datetime | None) -> datetime | None:
    """Return ``value`` as an aware UTC datetime (``None`` stays ``None``).

    Accepted forms, all seen in GitHub's payloads:

    * ISO 8601 with ``Z`` (REST API: ``"2011-01-26T19:01:12Z"``);
    * ISO 8601 with an offset (push webhook commits: ``"2015-05-05T19:40:15-04:00"``), converted
      to UTC;
    * epoch seconds as a number (push webhook ``repository.created_at`` / ``pushed_at``);
    * a ``datetime`` (already parsed upstream).

    A string or datetime without an offset is taken as UTC, because GitHub's API reports UTC.

    Args:
        value: The raw value.

    Returns:
        An aware datetime in UTC, or None.

    Raises:
        ValueError: If the value is not one of the forms above.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, bool):
        # bool is an int subclass; a boolean is never a timestamp.
        raise ValueError(f"not a timestamp: {value!r}")
    elif isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=UTC)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from None
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
