"""The ingest API's validation: what a device may post, and the reasons it hears when it may not."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.app import ingest_limits
from shared.intake.ingest import IngestLimits, IngestRejected, check_content_type, decode_body, validate_batch
from shared.readings.rules import DEFAULT_METRICS
from shared.settings import Settings, SettingsError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIMITS = IngestLimits()


def item(**overrides: Any) -> dict[str, Any]:
    reading: dict[str, Any] = {
        "sensor_id": "boiler-7",
        "metric": "temperature",
        "value": 21.5,
        "unit": "°C",
        "timestamp": "2026-03-01T11:59:00Z",
    }
    reading.update(overrides)
    return {k: v for k, v in reading.items() if v is not ...}


def rejected(items: list[object]) -> IngestRejected:
    with pytest.raises(IngestRejected) as caught:
        validate_batch(items, LIMITS, lambda: NOW)
    return caught.value


def fields(error: IngestRejected) -> list[tuple[int, str]]:
    return [(e.index, e.field) for e in error.errors]


def test_a_valid_reading_becomes_a_reading_with_its_canonical_unit_and_utc_time() -> None:
    (reading,) = validate_batch([item(unit="C", timestamp="2026-03-01T12:59:00+01:00")], LIMITS, lambda: NOW)
    assert (reading.sensor_id, reading.metric, reading.value, reading.unit) == ("boiler-7", "temperature", 21.5, "°C")
    assert reading.timestamp == datetime(2026, 3, 1, 11, 59, tzinfo=UTC)
    assert reading.source == "ingest-api"


def test_a_missing_unit_takes_the_metrics_unit_and_a_client_id_is_kept() -> None:
    (reading,) = validate_batch([item(unit=..., id="dev-1:0001")], LIMITS, lambda: NOW)
    assert (reading.unit, reading.id) == ("°C", "dev-1:0001")


def test_without_a_client_id_the_id_comes_from_the_content_so_a_retry_writes_the_same_document() -> None:
    first = validate_batch([item(), item(value=22.0)], LIMITS, lambda: NOW)
    again = validate_batch([item(), item(value=22.0)], LIMITS, lambda: NOW + timedelta(seconds=30))
    assert [r.id for r in first] == [r.id for r in again]
    assert first[0].id != first[1].id
    # Pinned: a device retrying across a deployment must rewrite the document its first post wrote.
    assert first[0].id == "r-33acb1bdc0063f9d854645d381273c"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"sensor_id": ...}, "sensor_id"),
        ({"sensor_id": ""}, "sensor_id"),
        ({"sensor_id": "x" * 65}, "sensor_id"),
        ({"sensor_id": "boiler-7\n"}, "sensor_id"),
        ({"sensor_id": "../etc/passwd"}, "sensor_id"),
        ({"sensor_id": "<script>"}, "sensor_id"),
        ({"sensor_id": "kessel-ü"}, "sensor_id"),
        ({"sensor_id": 7}, "sensor_id"),
        ({"metric": "pressure"}, "metric"),
        ({"metric": None}, "metric"),
        ({"unit": "°F"}, "unit"),
        ({"unit": 3}, "unit"),
        ({"value": "21.5"}, "value"),
        ({"value": True}, "value"),
        ({"value": None}, "value"),
        ({"value": 151.0}, "value"),
        ({"value": -61}, "value"),
        ({"value": 1e400}, "value"),
        ({"timestamp": ...}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "2026-03-01T11:59:00"}, "timestamp"),
        ({"timestamp": "2026-03-01T12:06:00Z"}, "timestamp"),
        ({"timestamp": 1772366340}, "timestamp"),
        ({"source": ""}, "source"),
        ({"source": "s" * 65}, "source"),
        ({"source": "bad\x00source"}, "source"),
        ({"id": "a/b"}, "id"),
        ({"id": ""}, "id"),
        ({"id": 12}, "id"),
        ({"temprature": 3}, "temprature"),
    ],
)
def test_each_bad_field_is_named(overrides: dict[str, Any], field: str) -> None:
    error = rejected([item(**overrides)])
    assert error.status == 400
    assert fields(error) == [(0, field)]
    assert "nothing was written" in error.message


def test_every_bad_item_of_a_batch_is_reported_and_none_is_accepted() -> None:
    error = rejected([item(), item(value="hot"), item(value=3), item(sensor_id="", timestamp="soon"), "not an object"])
    assert fields(error) == [(1, "value"), (3, "sensor_id"), (3, "timestamp"), (4, "")]
    assert error.message == "3 of 5 readings are invalid; nothing was written"
    body = error.to_json()
    assert body["errors"][0] == {"index": 1, "field": "value", "message": "must be a finite number"}


def test_the_messages_name_what_is_allowed() -> None:
    error = rejected([item(metric="pressure"), item(unit="°F", value=200.0, timestamp="2026-03-01T12:06:00Z")])
    assert [(e.index, e.field, e.message) for e in error.errors] == [
        (0, "metric", "must be one of humidity, occupancy, people_count, temperature"),
        (1, "value", "must be between -60 and 150 °C"),
        (1, "unit", "must be '°C' for temperature"),
        (1, "timestamp", "must be at most 300 s ahead of the clock"),
    ]


def test_a_null_optional_field_is_an_absent_one() -> None:
    (reading,) = validate_batch([item(id=None, unit=None, source=None)], LIMITS, lambda: NOW)
    assert (reading.id[:2], reading.unit, reading.source) == ("r-", "°C", "ingest-api")


def test_one_id_for_two_different_readings_is_refused_but_the_same_reading_twice_is_not() -> None:
    error = rejected([item(id="r-1"), item(id="r-1", value=30.0)])
    assert fields(error) == [(1, "id")]
    twice = validate_batch([item(), item()], LIMITS, lambda: NOW)
    assert twice[0] == twice[1]


def test_one_id_on_two_sensors_is_two_readings() -> None:
    readings = validate_batch([item(id="r-1"), item(id="r-1", sensor_id="boiler-8", value=30.0)], LIMITS, lambda: NOW)
    assert [(r.sensor_id, r.id, r.value) for r in readings] == [("boiler-7", "r-1", 21.5), ("boiler-8", "r-1", 30.0)]


def test_repeated_ids_are_compared_with_their_own_first_item_after_an_invalid_one() -> None:
    # Items are counted from the batch, readings only from its valid items: the two must not be confused.
    error = rejected([item(value="hot"), item(id="r-1"), item(id="r-2"), item(id="r-1"), item(id="r-2", value=9.0)])
    assert fields(error) == [(0, "value"), (4, "id")]
    assert error.errors[1].message == "repeats the id of item 2 with different content"


def test_a_timestamp_up_to_the_allowed_skew_ahead_is_accepted() -> None:
    validate_batch([item(timestamp="2026-03-01T12:04:59Z")], LIMITS, lambda: NOW)


@pytest.mark.parametrize(
    ("body", "status", "phrase"),
    [
        (b"", 400, "not valid JSON"),
        (b"{", 400, "not valid JSON"),
        (b"\xff\xfe{}", 400, "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, 400, "not valid JSON"),
        (b"42", 400, "reading object or an array"),
        (b"[]", 400, "empty"),
        (json.dumps([item()] * 101).encode(), 400, "at most 100"),
        (b" " * (256 * 1024 + 1), 413, "larger than"),
    ],
)
def test_bodies_that_are_not_a_batch_are_refused_with_the_reason(body: bytes, status: int, phrase: str) -> None:
    with pytest.raises(IngestRejected) as caught:
        decode_body(body, LIMITS)
    assert caught.value.status == status
    assert phrase in caught.value.message


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/x-www-form-urlencoded", "json"])
def test_a_body_that_is_not_declared_json_is_415(content_type: str | None) -> None:
    with pytest.raises(IngestRejected) as caught:
        check_content_type(content_type)
    assert caught.value.status == 415


def test_json_with_a_charset_is_json() -> None:
    check_content_type("Application/JSON; charset=utf-8")


def ingest_limits_from_env(env: dict[str, str]) -> IngestLimits:
    """The ingest API's limits as the composition root builds them from these settings."""
    return ingest_limits(Settings.from_env(env))


def test_ingest_metrics_adds_metrics_and_replaces_bounds() -> None:
    rules = ingest_limits_from_env(
        {"INGEST_METRICS": '{"pressure": {"unit": "hPa", "min": 800, "max": 1100}, "humidity": {"unit": "%"}}'}
    ).metrics
    assert rules["pressure"].unit == "hPa" and rules["pressure"].high == 1100.0
    assert rules["humidity"].high == math.inf
    assert rules["temperature"] == DEFAULT_METRICS["temperature"]


@pytest.mark.parametrize(
    "raw",
    ["{", "[]", '{"Bad Name": {"unit": "x"}}', '{"p": {"min": 1}}', '{"p": {"unit": "x", "min": 2, "max": 1}}'],
)
def test_a_malformed_ingest_metrics_stops_start_up_naming_the_setting(raw: str) -> None:
    with pytest.raises(SettingsError, match="INGEST_METRICS"):
        ingest_limits_from_env({"INGEST_METRICS": raw})


def test_ingest_limits_come_from_settings() -> None:
    limits = ingest_limits_from_env(
        {"INGEST_MAX_BATCH": "10", "INGEST_MAX_BODY_BYTES": "4096", "INGEST_MAX_FUTURE_SECONDS": "0"}
    )
    assert (limits.max_batch, limits.max_body_bytes, limits.max_future) == (10, 4096, timedelta(0))
    with pytest.raises(SettingsError, match="INGEST_MAX_BATCH"):
        ingest_limits_from_env({"INGEST_MAX_BATCH": "0"})


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_any_json_value_as_an_item_is_accepted_or_refused_with_reasons_never_an_exception(value: object) -> None:
    try:
        validate_batch([value], LIMITS, lambda: NOW)
    except IngestRejected as refused:
        assert refused.status == 400 and refused.errors
