"""Label rules: which GitHub labels mean a severity, "in progress", "blocker" or a score modifier.

The rules are data, not code. The defaults ship as ``github_sync/transform/label_rules.json``; a team
overrides them with the Airflow Variable ``github_sync_label_rules`` (:data:`LABEL_RULES_VARIABLE`).
The DAG reads the Variable at the start of a run and passes its text to :func:`load_label_rules`,
which validates it strictly, so that a typo fails the run before anything is written. This module
never imports Airflow.

JSON format (the shipped file and an override have the same shape; every key is optional in an
override)::

    {
      "$comment": "free text, ignored",
      "default_severity": "medium",
      "severity": {
        "critical": ["critical|urgent", "p\\\\s*[-_]?\\\\s*0", ...],
        "high": [...], "medium": [...], "low": [...]
      },
      "in_progress": ["in[ _-]?progress|wip|doing", ...],
      "blocker": ["blocker|blocking", ...],
      "score_modifiers": {
        "security": [...], "regression": [...], "documentation": [...], "good_first_issue": [...]
      }
    }

* Every pattern is a Python regular expression, matched case-insensitively against the *whole*
  label (``re.fullmatch``) after trimming it and collapsing runs of whitespace to one space. So
  ``"wip"`` matches ``WIP`` and ``" wip "`` but not ``wipe``.
* ``default_severity`` is used when no severity pattern matches a label. Severity names are
  exactly ``critical``, ``high``, ``medium``, ``low``.
* When labels match several severities, the most severe wins (``P3`` + ``critical`` →
  ``critical``).
* ``score_modifiers`` only names *which labels* trigger a modifier; the points themselves are
  code (``github_sync.transform.scoring.MODIFIER_POINTS``) so the dashboard's scale stays the same across
  teams. The modifier names are fixed: ``security``, ``regression``, ``documentation``,
  ``good_first_issue``.

Override semantics (a deep merge in the spirit of RFC 7386 JSON Merge Patch): objects merge key by
key, and a list *replaces* the default list at the same place. To add a pattern to a default list,
repeat the default list with your pattern added. ``null`` is rejected rather than meaning
"delete", because every key must keep a value. An unset, empty or whitespace-only Variable means
"use the defaults".

Example override: make ``customer-facing`` a high-severity label and treat ``🚧`` as in progress::

    {"severity": {"high": ["customer-facing", "(?:severity|priority)\\\\s*[:/]\\\\s*high"]},
     "in_progress": ["in[ _-]?progress|wip|🚧"]}

This module owns the rules' format, their validation and matching; it must not hold score points
(scoring does) or read the Variable itself (the DAG passes its text in). It is one piece (over
300 lines) because the format, the merge of an override into the defaults and the strict
validation are one contract, documented once above.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "DEFAULT_RULES_RESOURCE",
    "LABEL_RULES_VARIABLE",
    "MAX_PATTERN_LENGTH",
    "SCORE_MODIFIERS",
    "SEVERITIES",
    "LabelRules",
    "LabelRulesError",
    "load_label_rules",
    "normalize_label",
]

#: Name of the Airflow Variable that holds a team's JSON override.
LABEL_RULES_VARIABLE = "github_sync_label_rules"

#: The allowed severities, most severe first. The order is what "the highest wins" means.
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")

#: The score-modifier names a rules file may define patterns for.
SCORE_MODIFIERS: tuple[str, ...] = ("security", "regression", "documentation", "good_first_issue")

#: File name of the shipped defaults inside the ``github_sync`` package.
DEFAULT_RULES_RESOURCE = "label_rules.json"

#: Longest accepted pattern. Labels are at most 50 characters on GitHub; a longer pattern is far
#: more likely a paste accident than a rule.
MAX_PATTERN_LENGTH = 500

_TOP_LEVEL_KEYS = ("$comment", "default_severity", "severity", "in_progress", "blocker", "score_modifiers")
_WHITESPACE = re.compile(r"\s+")

Patterns = tuple[re.Pattern[str], ...]


class LabelRulesError(ValueError):
    """The label rules (the shipped file or an Airflow Variable override) are not valid.

    Attributes:
        source: What was being read, e.g. ``"Airflow Variable 'github_sync_label_rules'"``.
        path: Where in the JSON the problem is (``"severity.high[2]"``), ``""`` for the document.
        detail: The problem without the source prefix.
    """

    def __init__(self, source: str, path: str, detail: str) -> None:
        self.source = source
        self.path = path
        self.detail = detail
        where = f"{path} " if path else ""
        super().__init__(f"{source} is not valid: {where}{detail}")


def normalize_label(label: str) -> str:
    """Return ``label`` trimmed with inner whitespace runs collapsed, the form patterns see.

    Args:
        label: A label name as GitHub returns it.

    Returns:
        The label as the patterns are matched against it (case is left alone; patterns are
        compiled case-insensitive).
    """
    return _WHITESPACE.sub(" ", label).strip()


def _matches_any(patterns: Patterns, labels: Iterable[str]) -> bool:
    return any(p.fullmatch(label) for label in labels for p in patterns)


@dataclass(frozen=True)
class LabelRules:
    """Compiled, validated label rules. Build with :meth:`default` or :meth:`from_override`.

    Attributes:
        default_severity: Severity used when no label names one.
        severity: ``(severity, patterns)`` pairs, most severe first.
        in_progress: Patterns of labels that mean work has started.
        blocker: Patterns of labels that mark a blocker.
        score_modifiers: ``(modifier name, patterns)`` pairs.
    """

    default_severity: str
    severity: tuple[tuple[str, Patterns], ...]
    in_progress: Patterns
    blocker: Patterns
    score_modifiers: tuple[tuple[str, Patterns], ...]

    @classmethod
    def default(cls) -> LabelRules:
        """Return the rules shipped in ``github_sync/transform/label_rules.json`` (read once, then cached).

        Returns:
            The default rules.

        Raises:
            LabelRulesError: If the shipped file itself is broken (a packaging bug).
        """
        return _default_rules()

    @classmethod
    def from_override(cls, json_text: str, *, variable_name: str) -> LabelRules:
        """Merge a team's JSON override onto the defaults and validate the result strictly.

        Args:
            json_text: The Variable's value. Empty or whitespace-only means "no override".
            variable_name: Name of the Airflow Variable, quoted in error messages.

        Returns:
            The merged rules.

        Raises:
            LabelRulesError: Invalid JSON, not an object, unknown keys, wrong types, unknown
                severity or modifier names, empty or invalid regular expressions. The message
                names the Variable and the JSON path, e.g. ``Airflow Variable
                'github_sync_label_rules' is not valid: severity.high[2] is not a string (got int)``.
        """
        source = f"Airflow Variable {variable_name!r}"
        if not json_text.strip():
            return cls.default()
        try:
            override = json.loads(json_text)
        except json.JSONDecodeError as exc:
            raise LabelRulesError(
                source, "", f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None
        # Validate the override on its own first, so the path in an error points into what the
        # team wrote, not into the merged document.
        _validate_document(override, source=source, partial=True)
        merged = _merge(_default_document(), override)
        return cls._from_document(merged, source=source)

    @classmethod
    def _from_document(cls, doc: Mapping[str, Any], *, source: str) -> LabelRules:
        _validate_document(doc, source=source, partial=False)
        return cls(
            default_severity=doc["default_severity"],
            severity=tuple(
                (sev, _compile_all(doc["severity"].get(sev, []), source, f"severity.{sev}"))
                for sev in SEVERITIES
            ),
            in_progress=_compile_all(doc["in_progress"], source, "in_progress"),
            blocker=_compile_all(doc["blocker"], source, "blocker"),
            score_modifiers=tuple(
                (name, _compile_all(doc["score_modifiers"].get(name, []), source, f"score_modifiers.{name}"))
                for name in SCORE_MODIFIERS
            ),
        )

    def matched_severity(self, labels: Iterable[str]) -> str | None:
        """Return the most severe severity any label names, or ``None`` when none does.

        Args:
            labels: Label names.

        Returns:
            One of :data:`SEVERITIES`, or ``None``.
        """
        normalized = [normalize_label(label) for label in labels]
        for severity, patterns in self.severity:
            if _matches_any(patterns, normalized):
                return severity
        return None

    def severity_for(self, labels: Iterable[str]) -> str:
        """Return the severity the labels name (most severe wins), else :attr:`default_severity`.

        Args:
            labels: Label names.

        Returns:
            One of :data:`SEVERITIES`.
        """
        return self.matched_severity(labels) or self.default_severity

    def is_in_progress(self, labels: Iterable[str]) -> bool:
        """Tell whether a label says work has started (``in progress``, ``WIP``, ``doing``...).

        Args:
            labels: Label names.

        Returns:
            True when any label matches an in-progress pattern.
        """
        return _matches_any(self.in_progress, [normalize_label(label) for label in labels])

    def is_blocker(self, labels: Iterable[str]) -> bool:
        """Tell whether a label marks a blocker (``blocker``, ``blocking``, ``priority/blocker``...).

        Args:
            labels: Label names.

        Returns:
            True when any label matches a blocker pattern.
        """
        return _matches_any(self.blocker, [normalize_label(label) for label in labels])

    def modifiers_for(self, labels: Iterable[str]) -> frozenset[str]:
        """Return the score modifiers the labels trigger (each at most once).

        Args:
            labels: Label names.

        Returns:
            A subset of :data:`SCORE_MODIFIERS`.
        """
        normalized = [normalize_label(label) for label in labels]
        return frozenset(
            name for name, patterns in self.score_modifiers if _matches_any(patterns, normalized)
        )


def load_label_rules(variable_value: str | None) -> LabelRules:
    """Build the rules for a run from the Variable's value (``None`` when the Variable is unset).

    Args:
        variable_value: The text of the Airflow Variable :data:`LABEL_RULES_VARIABLE`, or None.

    Returns:
        The defaults when ``variable_value`` is None or blank, else the merged override.

    Raises:
        LabelRulesError: When the override is not valid (see :meth:`LabelRules.from_override`).
    """
    if variable_value is None:
        return LabelRules.default()
    return LabelRules.from_override(variable_value, variable_name=LABEL_RULES_VARIABLE)


# --- the shipped defaults ------------------------------------------------------------------


@cache
def _default_text() -> str:
    return (
        resources.files("github_sync.transform").joinpath(DEFAULT_RULES_RESOURCE).read_text(encoding="utf-8")
    )


def _default_document() -> dict[str, Any]:
    # Parsed afresh each time so that a merge can never mutate a shared default.
    document: dict[str, Any] = json.loads(_default_text())
    return document


@cache
def _default_rules() -> LabelRules:
    return LabelRules._from_document(
        _default_document(), source=f"github_sync/transform/{DEFAULT_RULES_RESOURCE}"
    )


# --- validation ----------------------------------------------------------------------------


def _type_name(value: object) -> str:
    # JSON vocabulary reads better in an error aimed at someone editing JSON.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _check_keys(obj: Mapping[str, Any], allowed: Iterable[str], source: str, path: str, what: str) -> None:
    allowed = tuple(allowed)
    for key in obj:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise LabelRulesError(source, where, f"is not a known {what} (allowed: {', '.join(allowed)})")


def _validate_patterns(value: object, source: str, path: str) -> None:
    if not isinstance(value, list):
        raise LabelRulesError(source, path, f"must be an array of strings (got {_type_name(value)})")
    for i, pattern in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(pattern, str):
            raise LabelRulesError(source, where, f"is not a string (got {_type_name(pattern)})")
        if not pattern.strip():
            raise LabelRulesError(source, where, "is empty")
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise LabelRulesError(source, where, f"is longer than {MAX_PATTERN_LENGTH} characters")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise LabelRulesError(source, where, f"is not a valid regular expression: {exc}") from None


def _validate_pattern_map(value: object, allowed: tuple[str, ...], source: str, path: str, what: str) -> None:
    if not isinstance(value, dict):
        raise LabelRulesError(source, path, f"must be an object (got {_type_name(value)})")
    _check_keys(value, allowed, source, path, what)
    for key, patterns in value.items():
        _validate_patterns(patterns, source, f"{path}.{key}")


def _validate_document(doc: object, *, source: str, partial: bool) -> None:
    if not isinstance(doc, dict):
        raise LabelRulesError(source, "", f"the value must be a JSON object (got {_type_name(doc)})")
    _check_keys(doc, _TOP_LEVEL_KEYS, source, "", "key")
    if not partial:
        for key in _TOP_LEVEL_KEYS[1:]:
            if key not in doc:
                raise LabelRulesError(source, key, "is missing")
    if "$comment" in doc and not isinstance(doc["$comment"], str):
        raise LabelRulesError(source, "$comment", f"must be a string (got {_type_name(doc['$comment'])})")
    if "default_severity" in doc:
        value = doc["default_severity"]
        if not isinstance(value, str):
            raise LabelRulesError(source, "default_severity", f"must be a string (got {_type_name(value)})")
        if value not in SEVERITIES:
            raise LabelRulesError(
                source,
                "default_severity",
                f"{value!r} is not a known severity (allowed: {', '.join(SEVERITIES)})",
            )
    if "severity" in doc:
        _validate_pattern_map(doc["severity"], SEVERITIES, source, "severity", "severity")
    if "score_modifiers" in doc:
        _validate_pattern_map(
            doc["score_modifiers"], SCORE_MODIFIERS, source, "score_modifiers", "score modifier"
        )
    for key in ("in_progress", "blocker"):
        if key in doc:
            _validate_patterns(doc[key], source, key)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` onto ``base``: objects merge by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _compile_all(patterns: Iterable[str], source: str, path: str) -> Patterns:
    compiled = []
    for i, pattern in enumerate(patterns):
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE))
        except re.error as exc:  # pragma: no cover - validated before; kept for a clear message
            raise LabelRulesError(
                source, f"{path}[{i}]", f"is not a valid regular expression: {exc}"
            ) from None
    return tuple(compiled)
