"""The ingest API's rules: a JSON body of one reading or a batch, validated whole, turned into reading documents.

All or nothing: when any item is invalid, the answer lists every field error of every item and nothing is
written, so a device never has to work out which half of its batch landed. A client-supplied `id` makes a retry
idempotent; without one the id is derived from the reading's content, so a retried identical post is too.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.readings.reading import (
    METRIC_PATTERN,
    SENSOR_ID_PATTERN,
    InvalidReading,
    Reading,
    epoch_ms,
    format_timestamp,
    parse_timestamp,
)

INGEST_SOURCE = "ingest-api"
READING_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
MAX_SOURCE_LENGTH = 64
_FIELDS = frozenset({"id", "sensor_id", "metric", "value", "unit", "timestamp", "source"})
_JSON_TYPES = ("application/json",)


@dataclass(frozen=True, slots=True)
class MetricRule:
    """What a metric's readings look like: its unit (and the spellings accepted for it) and plausible bounds."""

    unit: str
    low: float
    high: float
    aliases: frozenset[str] = frozenset()

    def canonical_unit(self, unit: str) -> str | None:
        return self.unit if unit == self.unit or unit in self.aliases else None


DEFAULT_METRICS: dict[str, MetricRule] = {
    "temperature": MetricRule("°C", -60.0, 150.0, frozenset({"C", "degC", "celsius"})),
    "humidity": MetricRule("%", 0.0, 100.0, frozenset({"percent", "%RH"})),
    "people_count": MetricRule("people", 0.0, 100_000.0),
    "occupancy": MetricRule("people", 0.0, 100_000.0),
}


class IngestSettingsError(ValueError):
    """INGEST_METRICS is malformed; the message says how."""


def parse_metric_rules(raw: str | None) -> dict[str, MetricRule]:
    """The metric catalogue: the defaults, with INGEST_METRICS (a JSON object of metric -> {"unit", "min", "max"})
    replacing or adding entries."""
    rules = dict(DEFAULT_METRICS)
    if raw is None or not raw.strip():
        return rules
    try:
        configured = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise IngestSettingsError("INGEST_METRICS is not valid JSON") from None
    if not isinstance(configured, dict):
        raise IngestSettingsError('INGEST_METRICS must be an object: {"metric": {"unit": ..., "min": ..., "max": ...}}')
    for metric, rule in configured.items():
        if not METRIC_PATTERN.fullmatch(metric):
            raise IngestSettingsError(f"INGEST_METRICS: {metric!r} is not a metric name")
        if not isinstance(rule, dict) or set(rule) - {"unit", "min", "max"} or "unit" not in rule:
            raise IngestSettingsError(f"INGEST_METRICS.{metric} must be an object with unit, min and max")
        unit, low, high = rule["unit"], rule.get("min", -math.inf), rule.get("max", math.inf)
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (low, high))
        if not isinstance(unit, str) or not 0 < len(unit) <= 16 or not numbers or not low <= high:
            raise IngestSettingsError(f"INGEST_METRICS.{metric}: unit must be a short string and min <= max")
        rules[metric] = MetricRule(unit, float(low), float(high))
    return rules


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_batch: int = 100
    max_body_bytes: int = 256 * 1024
    max_future: timedelta = timedelta(minutes=5)
    metrics: Mapping[str, MetricRule] = field(default_factory=lambda: dict(DEFAULT_METRICS))


@dataclass(frozen=True, slots=True)
class FieldError:
    index: int  # position in the batch (0 for a single reading)
    field: str  # the field at fault, or "" for the item as a whole
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


class IngestRejected(Exception):
    """The request cannot be accepted; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, errors: tuple[FieldError, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.errors:
            body["errors"] = [error.to_json() for error in self.errors]
        return body


def check_content_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in _JSON_TYPES:
        raise IngestRejected(415, "Content-Type must be application/json")


def decode_body(body: bytes, limits: IngestLimits) -> list[object]:
    """The items of a body: one JSON object, or an array of at most max_batch of them."""
    if len(body) > limits.max_body_bytes:
        raise IngestRejected(413, f"the body is larger than {limits.max_body_bytes} bytes")
    try:
        document = orjson.loads(body)  # refuses invalid UTF-8, and nesting deeper than 1024 levels
    except orjson.JSONDecodeError as bad:
        raise IngestRejected(400, f"the body is not valid JSON: {bad.msg}") from None
    if isinstance(document, dict):
        return [document]
    if not isinstance(document, list):
        raise IngestRejected(400, "the body must be a reading object or an array of readings")
    if not document:
        raise IngestRejected(400, "the batch is empty")
    if len(document) > limits.max_batch:
        raise IngestRejected(400, f"a batch holds at most {limits.max_batch} readings, not {len(document)}")
    return document


def _content_id(sensor_id: str, metric: str, timestamp: datetime, value: float) -> str:
    key = f"{sensor_id}\x1f{metric}\x1f{epoch_ms(timestamp)}\x1f{value!r}"
    return "r-" + hashlib.sha256(key.encode()).hexdigest()[:30]


def _timestamp(raw: object, now: datetime, limits: IngestLimits) -> datetime:
    if isinstance(raw, str) and len(raw) > 40:
        raise ValueError("is too long for an ISO 8601 date and time")
    try:
        moment = parse_timestamp(raw)
    except InvalidReading as bad:
        raise ValueError(f"{bad.reason}, e.g. 2026-01-01T12:00:00Z") from None
    if moment > now + limits.max_future:
        raise ValueError(f"is more than {int(limits.max_future.total_seconds())} s in the future")
    return moment


def _check_item(index: int, item: object, now: datetime, limits: IngestLimits) -> tuple[Reading, list[FieldError]]:
    errors: list[FieldError] = []

    def fail(name: str, message: str) -> None:
        errors.append(FieldError(index, name, message))

    placeholder = Reading("", "", "", 0.0, "", now, INGEST_SOURCE)
    if not isinstance(item, dict):
        fail("", "must be a JSON object")
        return placeholder, errors
    for unknown in sorted(set(item) - _FIELDS)[:5]:
        fail(str(unknown)[:40], "is not a reading field")

    sensor_id = item.get("sensor_id")
    if not isinstance(sensor_id, str) or not SENSOR_ID_PATTERN.fullmatch(sensor_id):
        fail("sensor_id", "must be 1-64 letters, digits, '-', '_', '.' or ':', starting with a letter or digit")
    metric = item.get("metric")
    rule = limits.metrics.get(metric) if isinstance(metric, str) else None
    if rule is None:
        fail("metric", f"must be one of {', '.join(sorted(limits.metrics))}")
    unit = item.get("unit")
    canonical = rule.unit if rule is not None else ""
    if unit is not None and rule is not None:
        known = rule.canonical_unit(unit) if isinstance(unit, str) else None
        if known is None:
            fail("unit", f"must be {rule.unit!r} for {metric}")
        else:
            canonical = known
    value = item.get("value")
    number = 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail("value", "must be a number")
    elif not math.isfinite(number := float(value)):
        fail("value", "must be finite")
    elif rule is not None and not rule.low <= number <= rule.high:
        fail("value", f"must be between {rule.low:g} and {rule.high:g} {rule.unit}")
    moment = now
    try:
        moment = _timestamp(item.get("timestamp"), now, limits)
    except ValueError as bad:
        fail("timestamp", str(bad))
    source = item.get("source", INGEST_SOURCE)
    if not isinstance(source, str) or not 0 < len(source) <= MAX_SOURCE_LENGTH or not source.isprintable():
        fail("source", f"must be 1-{MAX_SOURCE_LENGTH} printable characters")
    reading_id = item.get("id")
    if reading_id is not None and (not isinstance(reading_id, str) or not READING_ID_PATTERN.fullmatch(reading_id)):
        fail("id", "must be 1-128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit")
    if errors:
        return placeholder, errors
    assert isinstance(sensor_id, str) and isinstance(metric, str) and isinstance(source, str)
    if reading_id is None:
        reading_id = _content_id(sensor_id, metric, moment, number)
    return Reading(reading_id, sensor_id, metric, number, canonical, moment, source), errors


MAX_ERRORS_REPORTED = 100


def validate_batch(
    items: list[object], limits: IngestLimits, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> list[Reading]:
    """One reading per item, in order, or IngestRejected(400) listing the field errors (the first 100) of every
    item. Identical items (same id and content) are allowed; the writer writes them once."""
    now = clock()
    readings: list[Reading] = []
    errors: list[FieldError] = []
    first_of_id: dict[str, tuple[int, Reading]] = {}
    for index, item in enumerate(items):
        reading, item_errors = _check_item(index, item, now, limits)
        errors.extend(item_errors)
        if item_errors:
            continue
        earlier, first = first_of_id.setdefault(reading.id, (index, reading))
        if first != reading:
            # The same reading twice is harmless (written once); one id for two different readings is not.
            errors.append(FieldError(index, "id", f"repeats the id of item {earlier} with different content"))
        readings.append(reading)
    if errors:
        bad = len({error.index for error in errors})
        message = f"{bad} of {len(items)} readings {'is' if bad == 1 else 'are'} invalid; nothing was written"
        raise IngestRejected(400, message, tuple(errors[:MAX_ERRORS_REPORTED]))
    return readings


def accepted_body(readings: list[Reading]) -> dict[str, Any]:
    return {
        "count": len(readings),
        "ids": [reading.id for reading in readings],
        "received_at": format_timestamp(datetime.now(UTC)),
    }
