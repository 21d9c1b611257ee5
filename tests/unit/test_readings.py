"""A trigger document's reading: every way it can be unusable gives the broken rule as its reason."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.readings.reading import InvalidReading, format_epoch_ms, format_timestamp
from shared.readings.rules import parse_reading


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


SENSOR_ID_RULE = "must be 1-64 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"
TIMESTAMP_RULE = "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-01T12:00:00Z"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": _DROP}, "id is required"),
        ({"sensor_id": _DROP}, "sensor_id is required"),
        ({"metric": _DROP}, "metric is required"),
        ({"value": _DROP}, "value is required"),
        ({"timestamp": _DROP}, "timestamp is required"),
        ({"id": None}, "id is required"),
        ({"value": None}, "value is required"),
        ({"sensor_id": 42}, f"sensor_id {SENSOR_ID_RULE}"),
        ({"value": "hot"}, "value must be a finite number"),
        ({"value": True}, "value must be a finite number"),
        ({"value": float("nan")}, "value must be a finite number"),
        ({"value": float("inf")}, "value must be a finite number"),
        ({"value": 150.5}, "value must be between -60 and 150 °C"),
        ({"metric": "humidity", "value": -0.1}, "value must be between 0 and 100 %"),
        ({"unit": "°F"}, "unit must be '°C' for temperature"),
        ({"unit": ""}, "unit must be '°C' for temperature"),
        ({"metric": "pressure", "unit": "h" * 17}, "unit must be a string of at most 16 characters"),
        ({"timestamp": "yesterday"}, f"timestamp {TIMESTAMP_RULE}"),
        ({"timestamp": "2026-03-01T12:00:00"}, f"timestamp {TIMESTAMP_RULE}"),
        ({"timestamp": 1700000000}, f"timestamp {TIMESTAMP_RULE}"),
        ({"sensor_id": "<script>"}, f"sensor_id {SENSOR_ID_RULE}"),
        ({"id": "a/b"}, "id must be 1-128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"),
        ({"id": "r 1"}, "id must be 1-128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"),
        ({"metric": "Temp!"}, "metric must be 1-32 lower-case letters, digits or '_', starting with a letter"),
        # The first rule broken, in the reading's field order, is the reason.
        ({"sensor_id": "", "value": "hot", "timestamp": "soon"}, f"sensor_id {SENSOR_ID_RULE}"),
    ],
)
def test_bad_readings_say_why(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidReading) as raised:
        parse_reading(_doc(**changes))
    assert raised.value.reason == reason


def test_non_object_is_rejected() -> None:
    with pytest.raises(InvalidReading) as raised:
        parse_reading(["not", "an", "object"])
    assert raised.value.reason == "reading must be a JSON object"


def test_a_trigger_keeps_an_unknown_metric_with_its_own_unit_and_ignores_other_fields() -> None:
    reading = parse_reading(_doc(metric="pressure", value=1013.2, unit="hPa", ttl=60, _ts=1), default_source="hub")
    assert (reading.metric, reading.value, reading.unit) == ("pressure", 1013.2, "hPa")
    assert parse_reading(_doc(metric="pressure")).unit == ""


def test_an_accepted_spelling_of_a_unit_is_stored_as_the_metrics_unit() -> None:
    assert parse_reading(_doc(unit="degC")).unit == "°C"


@pytest.mark.parametrize("source", ["", "x" * 65, "tab\there", 7])
def test_a_trigger_replaces_an_unusable_source_with_its_own_name(source: object) -> None:
    assert parse_reading(_doc(source=source), default_source="eventhub-telemetry").source == "eventhub-telemetry"


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
