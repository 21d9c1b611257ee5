"""The one set of reading rules: the ingest API and the triggers give the same message for the same bad field,
and differ only where a named policy says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.app import ingest_limits
from shared.readings.reading import Reading
from shared.readings.rules import (
    DEFAULT_METRICS,
    TRIGGER_POLICY,
    MetricRule,
    ReadingPolicy,
    Violation,
    check_reading,
    metric_catalogue,
)
from shared.settings import Settings, SettingsError, parse_metric_bounds

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
INGEST = ReadingPolicy.ingest_api(DEFAULT_METRICS, timedelta(minutes=5), WEEK)
# The clock's own rules aside: with a horizon no timestamp reaches and no age limit, the two policies differ only
# where named.
INGEST_WITHOUT_HORIZON = ReadingPolicy.ingest_api(DEFAULT_METRICS, timedelta.max - timedelta(days=1), None)


def doc(**changes: Any) -> dict[str, Any]:
    reading: dict[str, Any] = {
        "id": "r-1",
        "sensor_id": "boiler-7",
        "metric": "temperature",
        "value": 21.5,
        "unit": "°C",
        "timestamp": "2026-03-01T11:59:00Z",
        "source": "gateway-3",
    }
    reading.update(changes)
    return {k: v for k, v in reading.items() if v is not ...}


def ingest(item: object) -> Reading | list[Violation]:
    return check_reading(item, INGEST, "ingest-api", NOW)


def trigger(item: object) -> Reading | list[Violation]:
    return check_reading(item, TRIGGER_POLICY, "eventhub-telemetry")


def violations(checked: Reading | list[Violation]) -> list[Violation]:
    assert isinstance(checked, list), checked
    return checked


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
field_values: dict[str, st.SearchStrategy[object]] = {
    "id": st.sampled_from(["r-1", "", "a/b", "r 1", "é", "x" * 129, "x" * 128]) | json_scalars,
    "sensor_id": st.sampled_from(["s-1", "", "a\nb", "<x>", "x" * 65]) | json_scalars,
    "metric": st.sampled_from([*DEFAULT_METRICS, "pressure", "Temp", ""]) | json_scalars,
    "value": st.sampled_from([21.5, 0, -61, 151, 1e400, 100_001]) | json_scalars,
    "unit": st.sampled_from(["°C", "C", "%", "people", "°F", "", "h" * 17]) | json_scalars,
    "timestamp": st.sampled_from(["2026-03-01T11:59:00Z", "2026-03-01T11:59:00", "soon", "", "9" * 41]) | json_scalars,
    "source": st.sampled_from(["gateway-3", "", "tab\there", "s" * 65]) | json_scalars,
}
reading_like = st.fixed_dictionaries({}, optional=field_values)


def _alike(found: list[Violation], *, drop: set[str]) -> list[Violation]:
    return [violation for violation in found if violation.field not in drop]


@given(reading_like)
def test_both_paths_give_the_same_message_for_every_field_no_policy_sets_apart(item: dict[str, Any]) -> None:
    from_ingest = check_reading(item, INGEST_WITHOUT_HORIZON, "ingest-api", NOW)
    from_trigger = trigger(item)
    # The named differences: the ingest API refuses a bad source where a trigger replaces it; it derives a
    # missing id where a trigger requires one; it refuses an unknown metric, and with it judges no unit.
    drop = {"source"}
    if item.get("id") is None:
        drop.add("id")
    metric = item.get("metric")
    if isinstance(metric, str) and metric and metric not in DEFAULT_METRICS:
        drop |= {"metric", "unit"}
    ingest_found = [] if isinstance(from_ingest, Reading) else from_ingest
    trigger_found = [] if isinstance(from_trigger, Reading) else from_trigger
    assert _alike(ingest_found, drop=drop) == _alike(trigger_found, drop=drop)


@given(reading_like)
def test_a_trigger_reason_is_the_first_violation_after_its_fields_name(item: dict[str, Any]) -> None:
    checked = trigger(item)
    if isinstance(checked, list):
        first = checked[0]
        assert first.reason == f"{first.field} {first.message}"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"id": "a b"}, "id", "must be 1-128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"),
        ({"sensor_id": None}, "sensor_id", "is required"),
        ({"metric": "Temp"}, "metric", "must be 1-32 lower-case letters, digits or '_', starting with a letter"),
        ({"value": "21.5"}, "value", "must be a finite number"),
        ({"value": -61}, "value", "must be between -60 and 150 °C"),
        ({"unit": "K"}, "unit", "must be '°C' for temperature"),
        (
            {"timestamp": "2026-03-01 11:59"},
            "timestamp",
            "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-01T12:00:00Z",
        ),
    ],
)
def test_one_bad_field_is_one_message_on_both_paths(changes: dict[str, Any], field: str, message: str) -> None:
    assert violations(ingest(doc(**changes))) == [Violation(field, message)]
    assert violations(trigger(doc(**changes))) == [Violation(field, message)]


def test_the_whole_item_has_one_rule_too() -> None:
    assert violations(ingest([1])) == violations(trigger([1])) == [Violation("", "must be a JSON object")]
    assert Violation("", "must be a JSON object").reason == "reading must be a JSON object"


# --- the named policies ------------------------------------------------------------------------------


def test_a_metric_outside_the_catalogue_is_refused_by_the_ingest_api_and_kept_by_a_trigger() -> None:
    item = doc(metric="pressure", value=1013.0, unit="hPa")
    assert violations(ingest(item)) == [
        Violation("metric", "must be one of humidity, occupancy, people_count, temperature")
    ]
    kept = trigger(item)
    assert isinstance(kept, Reading) and (kept.metric, kept.unit) == ("pressure", "hPa")


def test_other_fields_are_refused_by_the_ingest_api_and_ignored_by_a_trigger() -> None:
    item = doc(ttl=60, _ts=1, temprature=3)
    assert violations(ingest(item)) == [
        Violation(name, "is not a reading field") for name in ("_ts", "temprature", "ttl")
    ]
    assert isinstance(trigger(item), Reading)


def test_a_missing_id_is_derived_by_the_ingest_api_and_required_by_a_trigger() -> None:
    derived = ingest(doc(id=...))
    assert isinstance(derived, Reading) and derived.id.startswith("r-")
    assert violations(trigger(doc(id=...))) == [Violation("id", "is required")]


def test_a_bad_source_is_refused_by_the_ingest_api_and_replaced_by_a_trigger() -> None:
    assert violations(ingest(doc(source=""))) == [Violation("source", "must be 1-64 printable characters")]
    replaced = trigger(doc(source=""))
    assert isinstance(replaced, Reading) and replaced.source == "eventhub-telemetry"


def test_only_a_path_with_a_clock_judges_how_far_ahead_a_timestamp_is() -> None:
    ahead = doc(timestamp="2026-03-01T12:05:01Z")
    assert violations(ingest(ahead)) == [Violation("timestamp", "must be at most 300 s ahead of the clock")]
    assert isinstance(check_reading(doc(timestamp="2026-03-01T12:05:00Z"), INGEST, "ingest-api", NOW), Reading)
    assert isinstance(trigger(ahead), Reading)


AGE_RULE = "must be at most 604800 s old"


def test_a_reading_exactly_the_max_age_old_is_taken_and_one_millisecond_older_is_refused() -> None:
    week_ago = NOW - WEEK
    assert isinstance(ingest(doc(timestamp=week_ago.isoformat())), Reading)
    too_old = doc(timestamp=(week_ago - timedelta(milliseconds=1)).isoformat())
    assert violations(ingest(too_old)) == [Violation("timestamp", AGE_RULE)]


def test_a_reading_from_1970_is_refused_on_every_path_that_limits_the_age() -> None:
    from_1970 = doc(timestamp="1970-01-01T00:00:00Z")
    entered = NOW  # a trigger judges by the moment the document entered the pipeline
    assert violations(ingest(from_1970)) == [Violation("timestamp", AGE_RULE)]
    refused = check_reading(from_1970, ReadingPolicy.trigger(DEFAULT_METRICS, WEEK), "cosmos-readings", entered)
    assert violations(refused)[0].reason == f"timestamp {AGE_RULE}"


def test_without_a_max_age_an_old_reading_is_taken() -> None:
    from_1970 = doc(timestamp="1970-01-01T00:00:00Z")
    no_limit = ReadingPolicy.ingest_api(DEFAULT_METRICS, timedelta(minutes=5), None)
    assert isinstance(check_reading(from_1970, no_limit, "ingest-api", NOW), Reading)
    assert isinstance(check_reading(from_1970, TRIGGER_POLICY, "cosmos-readings", NOW), Reading)


def test_a_trigger_judges_the_age_by_the_moment_it_is_given_not_by_the_clock() -> None:
    policy = ReadingPolicy.trigger(DEFAULT_METRICS, WEEK)
    reading = doc(timestamp="2026-03-01T11:59:00Z")
    # Entered the pipeline a minute after it was taken: summarised, however late the delivery is processed.
    assert isinstance(check_reading(reading, policy, "cosmos-readings", NOW), Reading)
    # Entered eight days after it was taken: refused, on the first delivery and on every redelivery alike.
    late = check_reading(reading, policy, "cosmos-readings", NOW + timedelta(days=8))
    assert violations(late) == [Violation("timestamp", AGE_RULE)]
    # Nothing to judge by: the age is not judged.
    assert isinstance(check_reading(doc(timestamp="1970-01-01T00:00:00Z"), policy, "cosmos-readings"), Reading)


def test_the_configured_catalogue_is_the_rules_of_both_paths() -> None:
    catalogue = metric_catalogue(parse_metric_bounds('{"temperature": {"unit": "K", "min": 0, "max": 400}}'))
    for policy in (ReadingPolicy.ingest_api(catalogue, timedelta(minutes=5), WEEK), ReadingPolicy.trigger(catalogue)):
        assert violations(check_reading(doc(), policy, "x", NOW)) == [Violation("unit", "must be 'K' for temperature")]
        accepted = check_reading(doc(unit="K", value=293.0), policy, "x", NOW)
        assert isinstance(accepted, Reading) and accepted.unit == "K"


def test_a_catalogue_name_must_be_a_metric_name() -> None:
    with pytest.raises(ValueError, match="metric name"):
        ReadingPolicy.trigger({"Bad Name": MetricRule("x", 0.0, 1.0)})


@given(st.sampled_from(sorted(DEFAULT_METRICS)), st.floats(allow_nan=False, allow_infinity=False))
def test_a_known_metrics_value_is_kept_exactly_when_within_its_bounds(metric: str, value: float) -> None:
    rule = DEFAULT_METRICS[metric]
    checked = trigger(doc(metric=metric, value=value, unit=...))
    if rule.low <= value <= rule.high:
        assert isinstance(checked, Reading) and (checked.value, checked.unit) == (value, rule.unit)
    else:
        assert violations(checked) == [Violation("value", rule.bounds_message())]


@pytest.mark.parametrize(
    ("env", "max_age"),
    [
        ({}, WEEK),  # as long as a reading lives
        ({"READING_TTL_SECONDS": "86400"}, timedelta(days=1)),
        ({"READING_TTL_SECONDS": "0"}, None),  # readings kept forever: no limit
        ({"READING_MAX_AGE_SECONDS": "0"}, None),
        ({"READING_TTL_SECONDS": "0", "READING_MAX_AGE_SECONDS": "3600"}, timedelta(hours=1)),
    ],
)
def test_the_max_age_setting_defaults_to_the_readings_time_to_live(env: dict[str, str], max_age: timedelta) -> None:
    settings = Settings.from_env(env)
    assert settings.reading_max_age == max_age
    assert ingest_limits(settings).max_age == max_age


@pytest.mark.parametrize("raw", ["-1", "315360001", "a week"])
def test_a_max_age_out_of_range_stops_start_up_naming_the_setting(raw: str) -> None:
    with pytest.raises(SettingsError, match="READING_MAX_AGE_SECONDS"):
        Settings.from_env({"READING_MAX_AGE_SECONDS": raw})
