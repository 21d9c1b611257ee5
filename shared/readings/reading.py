"""Readings: the one shape every source (simulator, devices, Event Hubs) is turned into; its rules are in
shared.readings.rules."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


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
    share their second, which is formatted once instead of building a datetime each time."""
    seconds, millis = divmod(ms, 1000)
    return f"{_format_epoch_second(seconds)}.{millis:03d}Z"


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, the one format the pipeline writes."""
    if moment.tzinfo is not UTC:  # parse_timestamp's are UTC already
        moment = moment.astimezone(UTC)
    # What isoformat(timespec="milliseconds") writes, in about half its time (a bulk import formats every row's);
    # %-formatting is faster here than an f-string's seven format specs.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond // 1000,
    )


def parse_timestamp(value: object) -> datetime:
    """An ISO 8601 time with an offset, in UTC (a reading's timestamp has its own rule in shared.readings.rules)."""
    if not isinstance(value, str) or not value:
        raise InvalidReading("timestamp must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidReading("timestamp is not ISO 8601") from None
    if parsed.tzinfo is None:
        raise InvalidReading("timestamp has no UTC offset")
    return parsed.astimezone(UTC)
