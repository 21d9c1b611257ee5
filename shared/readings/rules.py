"""The rules of a reading: one set for every path a reading takes, one message per rule.

The paths: the ingest API (POST /api/readings) and a bulk import's rows (by the ingest API's policy), the
triggers (the change feed of `readings` and the telemetry Event Hub, both through the summariser, occupancy
readings made from Microshare events among them) and the simulator, whose readings satisfy these rules by
construction (its tests prove it).

A broken rule is a Violation(field, message); the message reads after the field's name. The ingest API answers
with every violation of every item, as {index, field, message}; a trigger dead-letters a document with its first
violation, "<field> <message>", as the reason (e.g. "value must be a finite number"). Fields are checked in the
order of the reading's shape: id, sensor_id, metric, value, unit, timestamp, source. null counts as absent.

    rule             message
    object           reading must be a JSON object
    field            <name> is not a reading field                (a policy: the ingest API only)
    required         <field> is required                          id, sensor_id, metric, value, timestamp
    id               must be 1-128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit
    sensor_id        must be 1-64 letters, digits, '-', '_', '.' or ':', starting with a letter or digit
    metric name      must be 1-32 lower-case letters, digits or '_', starting with a letter
    metric known     must be one of <the catalogue>                (a policy: the ingest API only)
    value            must be a finite number                      (not a bool: a True reading is a bug upstream)
    value bounds     must be between <low> and <high> <unit>      a metric in the catalogue
    unit             must be '<unit>' for <metric>                a metric in the catalogue: its unit or an
                                                                  accepted spelling, stored as its unit
    free unit        must be a string of at most 16 characters   a metric not in the catalogue
    timestamp        must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-01T12:00:00Z
    timestamp ahead  must be at most <n> s ahead of the clock     (a policy: where there is a clock)
    timestamp age    must be at most <n> s old                    (a policy: READING_MAX_AGE_SECONDS)
    source           must be 1-64 printable characters
    summarised id    was already summarised with other content    (the triggers: an id in its series' window)

Where the paths differ it is a policy of this one set (ReadingPolicy.ingest_api, ReadingPolicy.trigger), never a
rule of their own:
- metric: the ingest API refuses a metric that is not in the catalogue (the defaults and INGEST_METRICS); a
  trigger checks an unknown metric's name only, because devices on the hub may send metrics this deployment does
  not list. A metric that is in the catalogue has its unit and bounds checked on every path.
- other fields: the ingest API refuses them, so a misspelt field is not silently dropped; a trigger document
  carries more (Cosmos DB's system fields, `ttl`, a device's own) and they are ignored.
- id: the ingest API derives a missing id from the content, so a retried post rewrites the same document; a
  trigger document must carry one, since its id is what makes a redelivery harmless.
- source: the ingest API refuses a bad one, so a device hears of it; a trigger replaces it with its own name:
  the summaries do not keep it, and a reading is not worth losing over it.
- timestamp ahead: the ingest API judges it by its clock when the reading arrives (INGEST_MAX_FUTURE_SECONDS); a
  trigger does not, as a redelivered document would then be judged by another clock than the first delivery.
- timestamp age: every path refuses a reading older than READING_MAX_AGE_SECONDS (None: no limit), so a reading
  from 1970 never stretches a series' window. The ingest API (and a bulk import's row) judges it by its clock
  when the reading arrives; a trigger by the moment the document entered the pipeline (a change-feed document's
  `_ts`, an event's enqueued time), never by its own clock, so a redelivery is judged exactly as the first
  delivery was.
- summarised id: a trigger knows only the (timestamp, id, value) of the latest readings of each series, its
  window; a document whose id is in that window with another timestamp or value is refused (the same content is
  a redelivery, and changes nothing). Beyond the window nothing can be told. The ingest API refuses the same id
  with other content against the stored reading instead (shared.intake.reading_writer).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from shared.readings.reading import InvalidReading, Reading, epoch_ms, parse_timestamp

# Patterns take fullmatch: `$` would admit a trailing newline.
READING_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
SENSOR_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
METRIC_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
SENSOR_ID_MAX_LENGTH = 64
UNIT_MAX_LENGTH = 16
SOURCE_MAX_LENGTH = 64
TIMESTAMP_MAX_LENGTH = 40  # the longest usual form, 2026-01-01T12:00:00.123456+01:00, is 32
READING_FIELDS = frozenset({"id", "sensor_id", "metric", "value", "unit", "timestamp", "source"})

OBJECT_MESSAGE = "must be a JSON object"
FIELD_MESSAGE = "is not a reading field"
REQUIRED_MESSAGE = "is required"
ID_MESSAGE = "must be 1-128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"
SENSOR_ID_MESSAGE = "must be 1-64 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"
METRIC_MESSAGE = "must be 1-32 lower-case letters, digits or '_', starting with a letter"
VALUE_MESSAGE = "must be a finite number"
FREE_UNIT_MESSAGE = f"must be a string of at most {UNIT_MAX_LENGTH} characters"
TIMESTAMP_MESSAGE = "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-01T12:00:00Z"
SOURCE_MESSAGE = f"must be 1-{SOURCE_MAX_LENGTH} printable characters"
SUMMARISED_ID_MESSAGE = "was already summarised with other content"
_MAX_OTHER_FIELDS_REPORTED = 5
_NUMBER_TYPES = (int, float)  # a tuple: `int | float` would build a union object on every check


class Violation(NamedTuple):
    """A broken rule: the field at fault ("" for the item as a whole) and the rule's message."""

    field: str
    message: str

    @property
    def reason(self) -> str:
        """The dead letter's reason: the message after the field's name."""
        return f"{self.field or 'reading'} {self.message}"


class BrokenRule(ValueError):
    """One field's value breaks a rule; `message` is that rule's, to be read after the field's name."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class MetricRule:
    """What a metric's readings look like: its unit (and the spellings accepted for it) and plausible bounds."""

    unit: str
    low: float
    high: float
    aliases: frozenset[str] = frozenset()

    def canonical_unit(self, unit: str) -> str | None:
        return self.unit if unit == self.unit or unit in self.aliases else None

    def unit_message(self, metric: str) -> str:
        return f"must be {self.unit!r} for {metric}"

    def bounds_message(self) -> str:
        return f"must be between {self.low:g} and {self.high:g} {self.unit}"


DEFAULT_METRICS: dict[str, MetricRule] = {
    "temperature": MetricRule("°C", -60.0, 150.0, frozenset({"C", "degC", "celsius"})),
    "humidity": MetricRule("%", 0.0, 100.0, frozenset({"percent", "%RH"})),
    "people_count": MetricRule("people", 0.0, 100_000.0),
    "occupancy": MetricRule("people", 0.0, 100_000.0),
}


class IngestSettingsError(ValueError):
    """INGEST_METRICS is malformed; the message says how."""


def metric_catalogue(configured: Mapping[str, tuple[str, float, float]]) -> dict[str, MetricRule]:
    """The metric catalogue: the defaults, with INGEST_METRICS' (unit, min, max) per metric replacing or adding
    entries; a name that is not a metric name, or a unit too long for a reading, is refused."""
    rules = dict(DEFAULT_METRICS)
    for metric, (unit, low, high) in configured.items():
        if not METRIC_PATTERN.fullmatch(metric):
            raise IngestSettingsError(f"INGEST_METRICS: {metric!r} is not a metric name")
        if len(unit) > UNIT_MAX_LENGTH:
            raise IngestSettingsError(f"INGEST_METRICS.{metric}: unit must be a short string and min <= max")
        rules[metric] = MetricRule(unit, low, high)
    return rules


@dataclass(frozen=True, slots=True)
class ReadingPolicy:
    """How one path applies the rules; the module's docstring says why each path chose what it did."""

    metrics: Mapping[str, MetricRule]  # the catalogue
    unknown_metrics_refused: bool
    other_fields_refused: bool
    missing_id_derived: bool
    bad_source_replaced: bool
    max_future: timedelta | None  # how far ahead of the clock a timestamp may be; None: not judged
    max_age: timedelta | None  # how far behind the moment of judging a timestamp may be; None: not judged

    def __post_init__(self) -> None:
        # check_reading trusts a catalogue name to be a metric name; INGEST_METRICS is checked as it is parsed.
        if not all(isinstance(name, str) and METRIC_PATTERN.fullmatch(name) for name in self.metrics):
            raise ValueError("every metric of the catalogue must be a metric name")

    @classmethod
    def ingest_api(
        cls, metrics: Mapping[str, MetricRule], max_future: timedelta, max_age: timedelta | None
    ) -> ReadingPolicy:
        """The ingest API's policy, and a bulk import's: a row is checked exactly as a posted reading."""
        return cls(metrics, True, True, True, False, max_future, max_age)

    @classmethod
    def trigger(
        cls, metrics: Mapping[str, MetricRule] = DEFAULT_METRICS, max_age: timedelta | None = None
    ) -> ReadingPolicy:
        return cls(metrics, False, False, False, True, None, max_age)

    def unknown_metric_message(self) -> str:
        return f"must be one of {', '.join(sorted(self.metrics))}"

    def ahead_message(self) -> str:
        seconds = 0 if self.max_future is None else int(self.max_future.total_seconds())
        return f"must be at most {seconds} s ahead of the clock"

    def age_message(self) -> str:
        seconds = 0 if self.max_age is None else int(self.max_age.total_seconds())
        return f"must be at most {seconds} s old"


TRIGGER_POLICY = ReadingPolicy.trigger()


def check_id(raw: object) -> str:
    if isinstance(raw, str) and READING_ID_PATTERN.fullmatch(raw):
        return raw
    raise BrokenRule(REQUIRED_MESSAGE if raw is None else ID_MESSAGE)


def check_sensor_id(raw: object) -> str:
    if isinstance(raw, str) and SENSOR_ID_PATTERN.fullmatch(raw):
        return raw
    raise BrokenRule(REQUIRED_MESSAGE if raw is None else SENSOR_ID_MESSAGE)


def check_metric_name(raw: object) -> str:
    if isinstance(raw, str) and METRIC_PATTERN.fullmatch(raw):
        return raw
    raise BrokenRule(REQUIRED_MESSAGE if raw is None else METRIC_MESSAGE)


def check_value(raw: object, rule: MetricRule | None) -> float:
    """A finite number, within the bounds of its metric when the catalogue has it."""
    if isinstance(raw, bool) or not isinstance(raw, _NUMBER_TYPES):
        raise BrokenRule(REQUIRED_MESSAGE if raw is None else VALUE_MESSAGE)
    number = float(raw)
    if not math.isfinite(number):
        raise BrokenRule(VALUE_MESSAGE)
    if rule is not None and not rule.low <= number <= rule.high:
        raise BrokenRule(rule.bounds_message())
    return number


def check_unit(raw: object, metric: str, rule: MetricRule | None) -> str:
    """The unit to store: a catalogued metric's own (an absent or accepted spelling becomes it), else as sent."""
    if rule is None:
        if raw is None:
            return ""
        if isinstance(raw, str) and len(raw) <= UNIT_MAX_LENGTH:
            return raw
        raise BrokenRule(FREE_UNIT_MESSAGE)
    if raw is None or raw == rule.unit or (isinstance(raw, str) and raw in rule.aliases):
        return rule.unit
    raise BrokenRule(rule.unit_message(metric))


def check_timestamp(raw: object) -> datetime:
    """The moment in UTC."""
    if raw is None:
        raise BrokenRule(REQUIRED_MESSAGE)
    if isinstance(raw, str) and len(raw) > TIMESTAMP_MAX_LENGTH:
        raise BrokenRule(TIMESTAMP_MESSAGE)
    try:
        return parse_timestamp(raw)
    except InvalidReading:
        raise BrokenRule(TIMESTAMP_MESSAGE) from None


def check_source(raw: object) -> str:
    if isinstance(raw, str) and 0 < len(raw) <= SOURCE_MAX_LENGTH and raw.isprintable():
        return raw
    raise BrokenRule(SOURCE_MESSAGE)


def content_id(sensor_id: str, metric: str, timestamp: datetime, value: float) -> str:
    """The id of a reading posted without one: the same content always gets the same id."""
    key = f"{sensor_id}\x1f{metric}\x1f{epoch_ms(timestamp)}\x1f{value!r}"
    return "r-" + hashlib.sha256(key.encode()).hexdigest()[:30]


def _noted(broken: list[Violation] | None, field: str, message: str) -> list[Violation]:
    # The list is made on the first violation only: a valid reading, the common case, allocates none.
    if broken is None:
        return [Violation(field, message)]
    broken.append(Violation(field, message))
    return broken


def _other_fields(item: Mapping[Any, Any]) -> list[Violation] | None:
    if READING_FIELDS.issuperset(item):  # the common case, without building a set
        return None
    other = item.keys() - READING_FIELDS
    names = sorted(str(name)[:40] for name in other)[:_MAX_OTHER_FIELDS_REPORTED]
    return [Violation(name, FIELD_MESSAGE) for name in names]


def check_reading(
    item: object, policy: ReadingPolicy, default_source: str, now: datetime | None = None
) -> Reading | list[Violation]:
    """The reading an item holds, or every rule it breaks, in field order. `now` is the moment the item is judged
    at (None: neither its age nor how far ahead it is is judged): the clock's time on the ingest API, the moment
    the document entered the pipeline on a trigger. A missing or replaced source is `default_source`."""
    if type(item) is not dict and not isinstance(item, Mapping):  # a dict skips the slower ABC check
        return [Violation("", OBJECT_MESSAGE)]
    broken = _other_fields(item) if policy.other_fields_refused else None

    reading_id = item.get("id")
    if reading_id is not None or not policy.missing_id_derived:
        try:
            reading_id = check_id(reading_id)
        except BrokenRule as bad:
            broken = _noted(broken, "id", bad.message)
    try:
        sensor_id = check_sensor_id(item.get("sensor_id"))
    except BrokenRule as bad:
        broken = _noted(broken, "sensor_id", bad.message)

    raw_metric = item.get("metric")
    metric: str = raw_metric if isinstance(raw_metric, str) else ""
    # A catalogue name is a metric name (see ReadingPolicy), so a known metric needs no pattern match.
    rule = policy.metrics.get(metric)
    metric_usable = rule is not None
    if rule is None:
        try:
            metric = check_metric_name(raw_metric)
        except BrokenRule as bad:
            broken = _noted(broken, "metric", bad.message)
        else:
            metric_usable = not policy.unknown_metrics_refused
            if not metric_usable:
                broken = _noted(broken, "metric", policy.unknown_metric_message())
    try:
        value = check_value(item.get("value"), rule)
    except BrokenRule as bad:
        broken = _noted(broken, "value", bad.message)
    if metric_usable:  # a unit means nothing without its metric
        try:
            unit = check_unit(item.get("unit"), metric, rule)
        except BrokenRule as bad:
            broken = _noted(broken, "unit", bad.message)
    try:
        timestamp = check_timestamp(item.get("timestamp"))
        # Differences, not `now + max_future`: that sum may pass datetime.max, a timedelta never overflows here.
        if now is not None:
            if policy.max_future is not None and timestamp - now > policy.max_future:
                broken = _noted(broken, "timestamp", policy.ahead_message())
            elif policy.max_age is not None and now - timestamp > policy.max_age:
                broken = _noted(broken, "timestamp", policy.age_message())
    except BrokenRule as bad:
        broken = _noted(broken, "timestamp", bad.message)

    source = item.get("source")
    if source is None:
        source = default_source
    else:
        try:
            source = check_source(source)
        except BrokenRule as bad:
            if policy.bad_source_replaced:
                source = default_source
            else:
                broken = _noted(broken, "source", bad.message)

    if broken is not None:
        return broken
    if reading_id is None:
        reading_id = content_id(sensor_id, metric, timestamp, value)
    return Reading(reading_id, sensor_id, metric, value, unit, timestamp, source)


def parse_reading(doc: object, default_source: str = "unknown", policy: ReadingPolicy = TRIGGER_POLICY) -> Reading:
    """A trigger document's reading; raises InvalidReading with the first violation as the reason."""
    checked = check_reading(doc, policy, default_source)
    if isinstance(checked, list):
        raise InvalidReading(checked[0].reason)
    return checked
