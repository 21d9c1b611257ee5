"""Reading validation: every way a document can be unusable gives a short, specific reason."""

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.readings import InvalidReading, format_timestamp, parse_reading


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "r-1",
        "sensor_id": "sensor-01",
        "metric": "temperature",
        "value": 21.5,
        "timestamp": "2026-03-01T12:00:00.250Z",
    }
    for key, value in changes.items():
        if value is _DROP:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


_DROP = object()


def test_a_good_reading_is_normalised() -> None:
    reading = parse_reading(_doc(timestamp="2026-03-01T13:00:00.250+01:00"), default_source="test")
    assert reading.timestamp == datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
    assert reading.unit == "°C"
    assert reading.source == "test"
    assert reading.to_document()["timestamp"] == "2026-03-01T12:00:00.250Z"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": _DROP}, "missing field: id"),
        ({"sensor_id": _DROP}, "missing field: sensor_id"),
        ({"value": _DROP}, "missing field: value"),
        ({"timestamp": _DROP}, "missing field: timestamp"),
        ({"value": "hot"}, "value is not a number"),
        ({"value": True}, "value is not a number"),
        ({"value": float("nan")}, "value is not finite"),
        ({"value": float("inf")}, "value is not finite"),
        ({"timestamp": "yesterday"}, "timestamp is not ISO 8601"),
        ({"timestamp": "2026-03-01T12:00:00"}, "timestamp has no UTC offset"),
        ({"timestamp": 1700000000}, "timestamp must be an ISO 8601 string"),
        ({"sensor_id": "<script>"}, "sensor_id does not match"),
        ({"id": "a/b"}, "forbidden characters"),
        ({"metric": "Temp!"}, "metric does not match"),
    ],
)
def test_bad_readings_say_why(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidReading) as raised:
        parse_reading(_doc(**changes))
    assert reason in raised.value.reason


def test_non_object_is_rejected() -> None:
    with pytest.raises(InvalidReading, match="not a JSON object"):
        parse_reading(["not", "an", "object"])


def test_format_timestamp_is_utc_with_milliseconds() -> None:
    moment = datetime(2026, 3, 1, 12, 0, 0, 999999, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-03-01T12:00:00.999Z"
