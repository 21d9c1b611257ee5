"""Alert rules: what a PUT may say, and the field a bad one is refused for."""

from __future__ import annotations

import fnmatch
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.alerts.rulebook import RuleBook
from shared.alerts.rules import (
    DEMO_RULES,
    FIELDS,
    OPERATORS,
    SILENCE,
    THRESHOLD,
    AlertRule,
    RuleError,
    parse_rule,
    rule_from_stored,
    sensor_matches,
)
from shared.alerts.series_rules import SeriesRules
from shared.alerts.store import AlertStore

THRESHOLD_BODY: dict[str, Any] = {
    "kind": "threshold",
    "metric": "temperature",
    "sensors": "lab-?-*",
    "field": "max",
    "op": ">=",
    "value": 30,
    "clear": 28.5,
    "for_seconds": 300,
    "severity": "critical",
    "description": "Above 30 °C for 5 minutes",
}


def test_a_threshold_rule_keeps_what_it_was_given_and_matches_by_metric_and_pattern() -> None:
    rule = parse_rule("lab-hot", THRESHOLD_BODY)

    assert rule.kind == THRESHOLD and rule.field == "max" and rule.op == ">=" and rule.clear == 28.5
    assert rule.matches("lab-1-east", "temperature")
    assert not rule.matches("lab-12-east", "temperature")  # ? is one character
    assert not rule.matches("lab-1-east", "humidity")
    assert rule.condition() == "max >= 30 (clears at 28.5) for 300 s"
    assert rule_from_stored(rule.name, rule.to_json()) == rule


def test_defaults_one_summary_the_clear_level_at_the_threshold_and_every_sensor() -> None:
    rule = parse_rule("any", {"kind": "threshold", "metric": "humidity", "op": "<", "value": 20})

    assert (rule.sensors, rule.field, rule.for_summaries, rule.for_seconds) == ("*", "avg", 1, None)
    assert rule.clear == 20 and rule.severity == "warning"
    assert rule.breached(19.9) and not rule.cleared(19.9) and rule.cleared(20)


def test_a_silence_rule_needs_only_its_duration() -> None:
    rule = parse_rule("quiet", {"kind": "silence", "metric": "people_count", "for_seconds": 900})

    assert rule.kind == SILENCE and rule.for_seconds == 900
    assert rule.to_json() == {
        "name": "quiet",
        "kind": "silence",
        "metric": "people_count",
        "sensors": "*",
        "severity": "warning",
        "description": "",
        "for_seconds": 900,
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "sometimes"}, "kind"),
        ({"metric": "Temperature!"}, "metric"),
        ({"sensors": "a/b"}, "sensors"),
        ({"field": "median"}, "field"),
        ({"op": "=="}, "op"),
        ({"value": "30"}, "value"),
        ({"value": float("nan")}, "value"),
        ({"value": True}, "value"),
        ({"clear": 31}, "clear"),  # above a '>=' threshold: it would resolve while still firing
        ({"for_seconds": -1}, "for_seconds"),
        ({"for_seconds": 10**9}, "for_seconds"),
        ({"for_summaries": 3}, "for_seconds"),  # both given
        ({"severity": "page"}, "severity"),
        ({"description": "x" * 501}, "description"),
        ({"colour": "red"}, "colour"),
        ({"name": "another"}, "name"),
    ],
)
def test_a_bad_threshold_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as refused:
        parse_rule("lab-hot", {**THRESHOLD_BODY, **change})
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "threshold", "metric": "temperature", "value": 1}, "op"),
        ({"kind": "threshold", "metric": "temperature", "op": ">"}, "value"),
        ({"kind": "threshold", "metric": "temperature", "op": "<", "value": 5, "clear": 4}, "clear"),
        ({"kind": "threshold", "metric": "temperature", "op": ">", "value": 5, "for_summaries": 0}, "for_summaries"),
        ({"kind": "silence", "metric": "temperature"}, "for_seconds"),
        ({"kind": "silence", "metric": "temperature", "for_seconds": 5}, "for_seconds"),
        ({"kind": "silence", "metric": "temperature", "for_seconds": 60, "op": ">"}, "op"),
        ({"metric": "temperature"}, "kind"),
        ([], "body"),
        ("threshold", "body"),
    ],
)
def test_a_bad_body_names_its_field(body: object, field: str) -> None:
    with pytest.raises(RuleError) as refused:
        parse_rule("r", body)
    assert refused.value.field == field


@pytest.mark.parametrize("name", ["", "-lead", "a b", "a/b", "x" * 64, "ü"])
def test_a_bad_rule_name_is_refused(name: str) -> None:
    with pytest.raises(RuleError) as refused:
        parse_rule(name, {"kind": "silence", "metric": "temperature", "for_seconds": 60})
    assert refused.value.field == "name"


def test_the_demo_rules_are_one_of_each_kind_on_the_simulated_sensors() -> None:
    assert sorted(rule.kind for rule in DEMO_RULES) == [SILENCE, THRESHOLD]
    assert all(rule.matches("sensor-01", "temperature") for rule in DEMO_RULES)


_THRESHOLDS = st.lists(
    st.tuples(st.sampled_from(FIELDS), st.sampled_from(OPERATORS), st.integers(-5, 5)), min_size=0, max_size=25
)


@settings(max_examples=300, deadline=None)
@given(_THRESHOLDS, st.integers(-6, 6), st.integers(-6, 6), st.integers(-6, 6))
def test_the_series_index_finds_exactly_the_breached_rules(
    thresholds: list[tuple[str, str, int]], low: int, high: int, mean: int
) -> None:
    rules = tuple(
        parse_rule(f"r{n}", {"kind": "threshold", "metric": "m", "field": field, "op": op, "value": value})
        for n, (field, op, value) in enumerate(thresholds)
    )
    observed = {"min": float(low), "max": float(high), "avg": float(mean)}

    found = {rule.name for rule in SeriesRules(rules).breached(low, high, mean)}

    assert found == {rule.name for rule in rules if rule.breached(observed[rule.field])}


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet="ab-*?", min_size=1, max_size=6).filter(lambda p: p != ""),
    st.text(alphabet="ab-", min_size=1, max_size=6),
)
def test_sensor_patterns_match_as_the_shell_does(pattern: str, sensor_id: str) -> None:
    assert sensor_matches(pattern, sensor_id) == fnmatch.fnmatchcase(sensor_id, pattern)


class _Rules:
    """The one read RuleBook makes of the store."""

    def __init__(self, rules: list[AlertRule]) -> None:
        self._rules = rules

    def rules(self) -> list[AlertRule]:
        return self._rules


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.text(alphabet="ab-*?", min_size=1, max_size=5), st.sampled_from(["t", "h"])), max_size=12),
    st.text(alphabet="ab-", min_size=1, max_size=6),
    st.sampled_from(["t", "h"]),
)
def test_a_series_is_watched_by_exactly_the_threshold_rules_that_match_it(
    patterns: list[tuple[str, str]], sensor_id: str, metric: str
) -> None:
    rules = [
        parse_rule(f"r{n}", {"kind": "threshold", "metric": m, "sensors": p, "op": ">", "value": n})
        for n, (p, m) in enumerate(patterns)
    ]
    book = RuleBook(cast(AlertStore, _Rules(rules)))
    book.rules()

    watched = book.thresholds((sensor_id, metric)).rules

    assert [r.name for r in watched] == sorted(r.name for r in rules if r.matches(sensor_id, metric))
