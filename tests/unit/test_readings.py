"""Reading validation: every way a document can be unusable gives a short, specific reason."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.readings.reading import InvalidReading, format_epoch_ms, format_timestamp, parse_reading


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
        ({"id": None}, "missing field: id"),
        ({"value": None}, "missing field: value"),
        ({"sensor_id": 42}, "sensor_id must be a string"),
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))  # years 1 to 9999
def test_epoch_milliseconds_format_like_any_other_timestamp(ms: int) -> None:
    assert format_epoch_ms(ms) == format_timestamp(_EPOCH + timedelta(milliseconds=ms))


def test_epoch_milliseconds_of_one_second_keep_their_own_milliseconds() -> None:
    assert [format_epoch_ms(ms) for ms in (1_000, 1_001, 1_999, -1)] == [
        "1970-01-01T00:00:01.000Z",
        "1970-01-01T00:00:01.001Z",
        "1970-01-01T00:00:01.999Z",
        "1969-12-31T23:59:59.999Z",
    ]
