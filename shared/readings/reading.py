"""Readings: the one shape every source (simulator, devices, Event Hubs) is turned into."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

SENSOR_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")  # use fullmatch: `$` would admit a trailing newline
METRIC_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_ID_LENGTH = 128
_FORBIDDEN_ID_CHARS = re.compile(r"[/\\?#\x00-\x1f\x7f]")

DEFAULT_UNITS: dict[str, str] = {
    "temperature": "°C",
    "humidity": "%",
    "people_count": "people",
    "occupancy": "people",
}


class InvalidReading(ValueError):
    """A document that cannot be summarised; `reason` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Reading:
    id: str
    sensor_id: str
    metric: str
    value: float
    unit: str
    timestamp: datetime
    source: str

    @property
    def timestamp_ms(self) -> int:
        return epoch_ms(self.timestamp)

    def to_document(self, ttl_seconds: int | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "sensor_id": self.sensor_id,
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "timestamp": format_timestamp(self.timestamp),
            "source": self.source,
        }
        if ttl_seconds:
            doc["ttl"] = ttl_seconds
        return doc


def epoch_ms(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1000))


def from_epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


_EPOCH = datetime(1970, 1, 1)


@functools.lru_cache(maxsize=4096)
def _format_epoch_second(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).isoformat(timespec="seconds")


def format_epoch_ms(ms: int) -> str:
    """format_timestamp of an epoch-milliseconds instant. Every summary formats two; readings close in time
    share their second, which is formatted once (building a datetime each time was 8% of summarising)."""
    seconds, millis = divmod(ms, 1000)
    return f"{_format_epoch_second(seconds)}.{millis:03d}Z"


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, the one format the pipeline writes."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_timestamp(value: object) -> datetime:
    if not isinstance(value, str) or not value:
        raise InvalidReading("timestamp must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidReading("timestamp is not ISO 8601") from None
    if parsed.tzinfo is None:
        raise InvalidReading("timestamp has no UTC offset")
    return parsed.astimezone(UTC)


def _require(doc: Mapping[str, Any], field: str) -> object:
    value = doc.get(field)
    if value is None:
        raise InvalidReading(f"missing field: {field}")
    return value


def _require_str(doc: Mapping[str, Any], field: str) -> str:
    value = _require(doc, field)
    if not isinstance(value, str):
        raise InvalidReading(f"{field} must be a string")
    return value


def parse_value(value: object) -> float:
    # bool is an int subclass; a True temperature is a bug upstream, not 1.0 °C.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidReading("value is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidReading("value is not finite")
    return number


def parse_reading(doc: object, default_source: str = "unknown") -> Reading:
    """Validate one raw document; raises InvalidReading with the first reason found."""
    if not isinstance(doc, Mapping):
        raise InvalidReading("reading is not a JSON object")
    reading_id = _require_str(doc, "id")
    if not reading_id or len(reading_id) > MAX_ID_LENGTH or _FORBIDDEN_ID_CHARS.search(reading_id):
        raise InvalidReading("id is empty, too long or has forbidden characters")
    sensor_id = _require_str(doc, "sensor_id")
    if not SENSOR_ID_PATTERN.fullmatch(sensor_id):
        raise InvalidReading("sensor_id does not match the allowed pattern")
    metric = _require_str(doc, "metric")
    if not METRIC_PATTERN.fullmatch(metric):
        raise InvalidReading("metric does not match the allowed pattern")
    value = parse_value(_require(doc, "value"))
    timestamp = parse_timestamp(_require(doc, "timestamp"))
    unit = doc.get("unit")
    if unit is None:
        unit = DEFAULT_UNITS.get(metric, "")
    elif not isinstance(unit, str) or len(unit) > 16:
        raise InvalidReading("unit must be a short string")
    source = doc.get("source")
    if not isinstance(source, str) or not source:
        source = default_source
    return Reading(
        id=reading_id,
        sensor_id=sensor_id,
        metric=metric,
        value=value,
        unit=unit,
        timestamp=timestamp,
        source=source[:64],
    )
