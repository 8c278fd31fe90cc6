"""Label rules: default conventions, case-insensitive matching, and the Variable override."""

from __future__ import annotations

import json

import pytest

from github_sync.transform.labels import (
    LABEL_RULES_VARIABLE,
    SEVERITIES,
    LabelRules,
    LabelRulesError,
    load_label_rules,
)

RULES = LabelRules.default()


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ("critical", "critical"),
        ("CRITICAL", "critical"),
        ("Critical", "critical"),
        ("urgent", "critical"),
        ("severity: critical", "critical"),
        ("priority: critical", "critical"),
        ("Priority: Critical", "critical"),
        ("priority/critical-urgent", "critical"),
        ("sev1", "critical"),
        ("sev-1", "critical"),
        ("SEV 1", "critical"),
        ("S1", "critical"),
        ("sev0", "critical"),
        ("P0", "critical"),
        ("p0", "critical"),
        ("priority: P0", "critical"),
        ("severity: high", "high"),
        ("severity/high", "high"),
        ("Severity:High", "high"),
        ("priority/high", "high"),
        ("high priority", "high"),
        ("priority-high", "high"),
        ("priority/important-soon", "high"),
        ("sev2", "high"),
        ("S2", "high"),
        ("P1", "high"),
        ("severity: medium", "medium"),
        ("priority/medium", "medium"),
        ("sev3", "medium"),
        ("P2", "medium"),
        ("severity: low", "low"),
        ("priority/low", "low"),
        ("low-priority", "low"),
        ("severity: minor", "low"),
        ("P3", "low"),
        ("  severity:   low  ", "low"),  # whitespace is trimmed and collapsed
        ("kind/bug", None),  # a bug kind says nothing about severity
        ("bug", None),
        ("enhancement", None),
        ("high", None),  # bare level words other than critical/urgent are too ambiguous
        ("P5", None),
        ("critical-path", None),  # whole-label match
        ("", None),
    ],
)
def test_default_severity_patterns(label: str, severity: str | None) -> None:
    assert RULES.matched_severity([label]) == severity
    assert RULES.severity_for([label]) == (severity or "medium")


@pytest.mark.parametrize(
    ("labels", "severity"),
    [
        (["P3", "critical"], "critical"),
        (["critical", "P3"], "critical"),  # order does not matter
        (["severity: low", "severity: high"], "high"),
        (["P2", "sev2"], "high"),
        (["priority/low", "priority: medium"], "medium"),
        (["bug", "P1", "sev0"], "critical"),
    ],
)
def test_two_severity_labels_the_highest_wins(labels: list[str], severity: str) -> None:
    assert RULES.severity_for(labels) == severity


def test_default_severity_when_no_label_matches() -> None:
    assert RULES.default_severity == "medium"
    assert RULES.severity_for([]) == "medium"
    assert RULES.severity_for(["bug", "question"]) == "medium"


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("in progress", True),
        ("In Progress", True),
        ("in-progress", True),
        ("WIP", True),
        ("wip", True),
        ("status: in progress", True),
        ("Status: In Progress", True),
        ("doing", True),
        ("DOING", True),
        ("wipe", False),
        ("progress", False),
        ("todo", False),
    ],
)
def test_in_progress_labels(label: str, expected: bool) -> None:
    assert RULES.is_in_progress([label]) is expected


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("blocker", True),
        ("Blocker", True),
        ("blocking", True),
        ("priority/blocker", True),
        ("release blocker", True),
        ("blocked", False),  # blocked by something else is not blocking others
        ("unblocker", False),
    ],
)
def test_blocker_labels(label: str, expected: bool) -> None:
    assert RULES.is_blocker([label]) is expected


@pytest.mark.parametrize(
    ("label", "modifier"),
    [
        ("security", "security"),
        ("Security", "security"),
        ("type: security", "security"),
        ("regression", "regression"),
        ("kind/regression", "regression"),
        ("documentation", "documentation"),
        ("docs", "documentation"),
        ("Docs", "documentation"),
        ("good first issue", "good_first_issue"),
        ("good-first-issue", "good_first_issue"),
        ("Good First Issue", "good_first_issue"),
    ],
)
def test_modifier_labels(label: str, modifier: str) -> None:
    assert RULES.modifiers_for([label]) == {modifier}


def test_rules_are_frozen() -> None:
    with pytest.raises(AttributeError):
        RULES.default_severity = "low"  # type: ignore[misc]


# --- override --------------------------------------------------------------------------------


def _override(doc: object) -> LabelRules:
    return LabelRules.from_override(json.dumps(doc), variable_name=LABEL_RULES_VARIABLE)


def test_valid_override_changes_severity_mapping() -> None:
    rules = _override({"severity": {"high": ["customer[ -]facing"]}, "default_severity": "low"})
    assert rules.severity_for(["Customer-Facing"]) == "high"
    # the replaced list no longer holds the default high patterns ...
    assert rules.severity_for(["severity: high"]) == "low"
    # ... while the other severities keep theirs (objects merge, lists replace)
    assert rules.severity_for(["P0"]) == "critical"
    assert rules.severity_for(["bug"]) == "low"
    # and the untouched sections are the defaults
    assert rules.is_in_progress(["wip"]) and rules.is_blocker(["blocker"])
    assert rules.modifiers_for(["security"]) == {"security"}


def test_override_of_modifiers_and_in_progress() -> None:
    rules = _override({"in_progress": ["🚧"], "score_modifiers": {"security": ["sec"]}, "$comment": "team A"})
    assert rules.is_in_progress(["🚧"]) and not rules.is_in_progress(["wip"])
    assert rules.modifiers_for(["SEC", "docs"]) == {"security", "documentation"}


def test_load_label_rules_none_and_blank_mean_defaults() -> None:
    assert load_label_rules(None) == LabelRules.default()
    assert load_label_rules("  \n") == LabelRules.default()
    assert load_label_rules("{}") == LabelRules.default()
    assert load_label_rules('{"severity": {"low": ["meh"]}}').severity_for(["meh"]) == "low"


PREFIX = "Airflow Variable 'github_sync_label_rules' is not valid: "


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "invalid JSON (Expecting property name enclosed in double quotes at line 1 column 2)"),
        ("[]", "the value must be a JSON object (got array)"),
        ("null", "the value must be a JSON object (got null)"),
        ('"P0"', "the value must be a JSON object (got string)"),
        ('{"severities": {}}', "severities is not a known key (allowed: "),
        ('{"severity": []}', "severity must be an object (got array)"),
        (
            '{"severity": {"urgent": ["x"]}}',
            "severity.urgent is not a known severity (allowed: critical, high, medium, low)",
        ),
        ('{"severity": {"high": "p1"}}', "severity.high must be an array of strings (got string)"),
        ('{"severity": {"high": ["a", "b", 3]}}', "severity.high[2] is not a string (got number)"),
        ('{"severity": {"high": ["a", null]}}', "severity.high[1] is not a string (got null)"),
        ('{"severity": {"high": ["(unclosed"]}}', "severity.high[0] is not a valid regular expression: "),
        ('{"severity": {"low": [""]}}', "severity.low[0] is empty"),
        ('{"severity": {"low": ["' + "a" * 501 + '"]}}', "severity.low[0] is longer than 500 characters"),
        ('{"default_severity": "urgent"}', "default_severity 'urgent' is not a known severity"),
        ('{"default_severity": 2}', "default_severity must be a string (got number)"),
        ('{"in_progress": "wip"}', "in_progress must be an array of strings (got string)"),
        ('{"blocker": [true]}', "blocker[0] is not a string (got boolean)"),
        ('{"score_modifiers": {"perf": ["x"]}}', "score_modifiers.perf is not a known score modifier"),
        (
            '{"score_modifiers": {"security": [{"re": "x"}]}}',
            "score_modifiers.security[0] is not a string (got object)",
        ),
        ('{"$comment": 1}', "$comment must be a string (got number)"),
    ],
)
def test_invalid_override_names_variable_and_path(text: str, message: str) -> None:
    with pytest.raises(LabelRulesError) as info:
        load_label_rules(text)
    assert str(info.value).startswith(PREFIX + message), str(info.value)
    assert isinstance(info.value, ValueError)


def test_error_carries_path_and_custom_variable_name() -> None:
    with pytest.raises(LabelRulesError) as info:
        LabelRules.from_override('{"severity": {"high": ["ok", 7]}}', variable_name="team_b_rules")
    assert info.value.path == "severity.high[1]"
    assert (
        str(info.value)
        == "Airflow Variable 'team_b_rules' is not valid: severity.high[1] is not a string (got number)"
    )


def test_shipped_rules_file_is_complete() -> None:
    # Every severity has patterns, and every default pattern compiled (default() validated it).
    assert [sev for sev, patterns in RULES.severity if patterns] == list(SEVERITIES)
    assert all(patterns for _, patterns in RULES.score_modifiers)
    assert RULES.in_progress and RULES.blocker
