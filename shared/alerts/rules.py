"""Alert rules: what an operator asks to be told about, checked field by field.

A rule matches series by metric and a sensor-id pattern (`*` and `?` as in a shell) and is either a threshold on
a summary's avg, min or max that must hold for a number of consecutive summaries or for a duration, with its own
clear level (hysteresis), or a silence: no reading for a duration.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RULE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
RULE_NAME_MESSAGE = "a rule name is 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit"
SENSOR_PATTERN = re.compile(r"[A-Za-z0-9_.:*?-]{1,64}")
METRIC_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")

THRESHOLD = "threshold"
SILENCE = "silence"
FIELDS = ("avg", "min", "max")
OPERATORS = (">", ">=", "<", "<=")
SEVERITIES = ("critical", "warning", "info")
MAX_FOR_SUMMARIES = 1000
MAX_THRESHOLD_SECONDS = 86_400
MIN_SILENCE_SECONDS, MAX_SILENCE_SECONDS = 30, 7 * 86_400
MAX_DESCRIPTION = 500
_COMMON = frozenset({"kind", "metric", "sensors", "severity", "description"})
_THRESHOLD_FIELDS = _COMMON | {"field", "op", "value", "clear", "for_summaries", "for_seconds"}
_SILENCE_FIELDS = _COMMON | {"for_seconds"}


class RuleError(ValueError):
    """A rule that cannot be kept; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    kind: str  # THRESHOLD or SILENCE
    metric: str
    sensors: str  # a shell-style pattern of sensor ids
    severity: str
    description: str
    for_seconds: int | None  # threshold: how long it must hold (or None); silence: how long without a reading
    field: str = "avg"  # threshold only, from here on
    op: str = ">"
    value: float = 0.0
    clear: float = 0.0  # the level it must pass back over to resolve
    for_summaries: int | None = None

    def matches(self, sensor_id: str, metric: str) -> bool:
        return metric == self.metric and sensor_matches(self.sensors, sensor_id)

    def breached(self, observed: float) -> bool:
        """Whether an observed value is past the threshold."""
        return _compare(self.op, observed, self.value)

    def cleared(self, observed: float) -> bool:
        """Whether a firing threshold resolves: the value is back past its clear level (not just the threshold)."""
        return not _compare(self.op, observed, self.clear)

    def to_json(self) -> dict[str, Any]:
        """The rule as the API shows it and as it is stored."""
        body: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "metric": self.metric,
            "sensors": self.sensors,
            "severity": self.severity,
            "description": self.description,
        }
        if self.kind == SILENCE:
            body["for_seconds"] = self.for_seconds
            return body
        body.update(field=self.field, op=self.op, value=self.value, clear=self.clear)
        if self.for_seconds is not None:
            body["for_seconds"] = self.for_seconds
        else:
            body["for_summaries"] = self.for_summaries
        return body

    def condition(self) -> str:
        """One line for people: `avg > 30 (clears at 28) for 3 summaries`, `no reading for 600 s`."""
        if self.kind == SILENCE:
            return f"no reading for {self.for_seconds} s"
        lasting = f"{self.for_seconds} s" if self.for_seconds is not None else f"{self.for_summaries} summaries"
        clears = f" (clears at {_number(self.clear)})" if self.clear != self.value else ""
        return f"{self.field} {self.op} {_number(self.value)}{clears} for {lasting}"


def _compare(op: str, left: float, right: float) -> bool:
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "<":
        return left < right
    return left <= right


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


_PATTERNS: dict[str, re.Pattern[str]] = {}


def sensor_matches(pattern: str, sensor_id: str) -> bool:
    """Shell-style matching of a sensor id, with the common shapes (`*`, `prefix*`, an exact id) done without a
    regular expression."""
    if pattern == "*":
        return True
    wild = pattern.find("*"), pattern.find("?")
    if wild == (-1, -1):
        return pattern == sensor_id
    if wild[1] == -1 and wild[0] == len(pattern) - 1:
        return sensor_id.startswith(pattern[:-1])
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = re.compile(fnmatch.translate(pattern))
    return compiled.fullmatch(sensor_id) is not None


def check_rule_name(name: str) -> str:
    if not RULE_NAME_PATTERN.fullmatch(name):
        raise RuleError("name", RULE_NAME_MESSAGE)
    return name


def parse_rule(name: str, body: object) -> AlertRule:
    """A rule from its name (the URL's) and the JSON body of `PUT /api/alerts/rules/{name}`; RuleError names the
    first field that is wrong."""
    check_rule_name(name)
    if not isinstance(body, Mapping):
        raise RuleError("body", "must be a JSON object")
    if "name" in body and body["name"] != name:
        raise RuleError("name", "differs from the name in the URL")
    kind = body.get("kind")
    if kind not in (THRESHOLD, SILENCE):
        raise RuleError("kind", f"must be '{THRESHOLD}' or '{SILENCE}'")
    allowed = (_THRESHOLD_FIELDS if kind == THRESHOLD else _SILENCE_FIELDS) | {"name"}
    for key in body:
        if key not in allowed:
            raise RuleError(str(key)[:64], f"is not a field of a {kind} rule")
    metric = body.get("metric")
    if not isinstance(metric, str) or not METRIC_PATTERN.fullmatch(metric):
        raise RuleError("metric", "must be a metric name (lower-case letters, digits and '_', e.g. temperature)")
    sensors = body.get("sensors", "*")
    if not isinstance(sensors, str) or not SENSOR_PATTERN.fullmatch(sensors):
        raise RuleError("sensors", "must be a sensor id or a pattern with * and ? (1-64 characters)")
    severity = body.get("severity", "warning")
    if severity not in SEVERITIES:
        raise RuleError("severity", f"must be one of {', '.join(SEVERITIES)}")
    description = body.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise RuleError("description", f"must be text of at most {MAX_DESCRIPTION} characters")
    if kind == SILENCE:
        seconds = _whole(body, "for_seconds", MIN_SILENCE_SECONDS, MAX_SILENCE_SECONDS, required=True)
        return AlertRule(name, SILENCE, metric, sensors, severity, description, seconds)
    field = body.get("field", "avg")
    if field not in FIELDS:
        raise RuleError("field", f"must be one of {', '.join(FIELDS)}")
    op = body.get("op")
    if op not in OPERATORS:
        raise RuleError("op", f"must be one of {', '.join(OPERATORS)}")
    value = _finite(body, "value", required=True)
    assert value is not None  # required
    given_clear = _finite(body, "clear", required=False)
    clear = value if given_clear is None else given_clear
    if op in (">", ">=") and clear > value:
        raise RuleError("clear", f"must be at most value for '{op}': the alert clears below where it fires")
    if op in ("<", "<=") and clear < value:
        raise RuleError("clear", f"must be at least value for '{op}': the alert clears above where it fires")
    if "for_summaries" in body and "for_seconds" in body:
        raise RuleError("for_seconds", "give for_summaries or for_seconds, not both")
    seconds = _whole(body, "for_seconds", 0, MAX_THRESHOLD_SECONDS, required=False)
    summaries = None if seconds is not None else _whole(body, "for_summaries", 1, MAX_FOR_SUMMARIES, required=False)
    if seconds is None and summaries is None:
        summaries = 1
    return AlertRule(
        name, THRESHOLD, metric, sensors, severity, description, seconds, field, op, value, clear, summaries
    )


def _whole(body: Mapping[str, Any], key: str, low: int, high: int, *, required: bool) -> int | None:
    raw = body.get(key)
    if raw is None:
        if required:
            raise RuleError(key, "is required")
        return None
    if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
        raise RuleError(key, f"must be a whole number from {low} to {high}")
    return raw


def _finite(body: Mapping[str, Any], key: str, *, required: bool) -> float | None:
    raw = body.get(key)
    if raw is None:
        if required:
            raise RuleError(key, "is required")
        return None
    if not isinstance(raw, int | float) or isinstance(raw, bool) or not math.isfinite(raw):
        raise RuleError(key, "must be a finite number")
    return float(raw)


def rule_from_stored(name: str, properties: Mapping[str, Any]) -> AlertRule:
    """A stored rule (it was checked when it was put)."""
    return parse_rule(name, {k: v for k, v in properties.items() if k in _THRESHOLD_FIELDS})


# `make run` starts with these so a new user sees an alert fire: the simulated rooms wander around 27.5 °C, so
# one of them is soon above 28 °C on average for half a minute; a sensor that stops (e.g. after a restart with a
# smaller SENSOR_COUNT) is reported silent after two minutes.
DEMO_RULES = (
    parse_rule(
        "demo-warm-room",
        {
            "kind": THRESHOLD,
            "metric": "temperature",
            "sensors": "sensor-*",
            "field": "avg",
            "op": ">",
            "value": 28.5,
            "clear": 28.0,
            "for_seconds": 30,
            "severity": "warning",
            "description": "A simulated room is warm: its average over the window is above 28.5 °C.",
        },
    ),
    parse_rule(
        "demo-sensor-silent",
        {
            "kind": SILENCE,
            "metric": "temperature",
            "sensors": "sensor-*",
            "for_seconds": 120,
            "severity": "critical",
            "description": "A sensor has sent no reading for two minutes.",
        },
    ),
)
