"""People-counter events as occupancy readings: one series per location, or a dead letter with its reason."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.intake.occupancy import location_sensor_id, reading_or_dead_letter
from shared.microshare.api import PEOPLE_COUNTER
from shared.readings.dead_letters import DeadLetter
from shared.readings.rules import SENSOR_ID_PATTERN, parse_reading

SOURCE = "eventhub-telemetry"
TIMESTAMP_RULE = "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-01T12:00:00Z"
TAGS = ["Building A", "Floor 2", "Zone 3", "Spot 1"]


def event(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "recType": PEOPLE_COUNTER,
        "record": "6650f0c2a1b2c3d4e5f60718",
        "time": "2025-06-09T10:15:00.000Z",
        "change": {"in": 3, "out": 1, "count": 2, "traffic": 4},
        "daily_total": {"in": 40, "out": 31, "count": 9, "traffic": 71},
        "current": 12,
        "device": {"id": "pc-0001", "battery": 3.6, "alerts": []},
        "meta": {"device": list(TAGS), "iot": {"rssi": -81, "snr": 7.5, "fport": 20}},
        "_location_tags": list(TAGS),
    }
    for key, value in changes.items():
        if value is DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


DROP = object()


def reading(body: dict[str, Any]) -> dict[str, Any]:
    result = reading_or_dead_letter(body, SOURCE)
    assert isinstance(result, dict), result
    return result


def test_a_people_counter_event_becomes_a_valid_people_count_reading() -> None:
    doc = reading(event())

    assert doc["sensor_id"] == "Building-A.Floor-2.Zone-3.Spot-1"
    assert (doc["metric"], doc["unit"], doc["value"], doc["source"]) == ("people_count", "people", 12.0, "microshare")
    assert doc["timestamp"] == "2025-06-09T10:15:00.000Z"
    parsed = parse_reading(doc)  # what the summariser will do with it
    assert (parsed.sensor_id, parsed.value, parsed.unit) == (doc["sensor_id"], 12.0, "people")


def test_the_time_is_normalised_to_utc() -> None:
    assert reading(event(time="2025-06-09T12:15:00.250+02:00"))["timestamp"] == "2025-06-09T10:15:00.250Z"


def test_current_may_be_an_object_with_a_count_or_a_float() -> None:
    assert reading(event(current={"count": 7}))["value"] == 7.0
    assert reading(event(current=3.5))["value"] == 3.5
    assert reading(event(current=0))["value"] == 0.0


def test_without_location_tags_the_device_meta_names_the_location() -> None:
    assert reading(event(_location_tags=DROP))["sensor_id"] == "Building-A.Floor-2.Zone-3.Spot-1"
    assert reading(event(_location_tags=[]))["sensor_id"] == "Building-A.Floor-2.Zone-3.Spot-1"
    assert reading(event(_location_tags=["Other", "Place"]))["sensor_id"] == "Other.Place"


@pytest.mark.parametrize(
    ("tags", "sensor_id"),
    [
        (["Building A"], "Building-A"),
        (["  Building   A  ", "Floor\t2"], "Building-A.Floor-2"),
        (["Bâtiment Été", "Étage 1"], "Batiment-Ete.Etage-1"),
        (["Zone 3/North", "Room #4?"], "Zone-3North.Room-4"),
        (["HQ", "", "!!!", "Desk_7"], "HQ.Desk_7"),  # parts with nothing left are dropped
        (["-leading", "trailing-"], "leading.trailing"),
        (["a - b"], "a-b"),
    ],
)
def test_location_tags_are_slugged_to_a_valid_sensor_id(tags: list[str], sensor_id: str) -> None:
    assert location_sensor_id(tags) == sensor_id
    assert SENSOR_ID_PATTERN.fullmatch(sensor_id)


def test_long_locations_are_shortened_with_a_digest_and_never_collide() -> None:
    base = ["Headquarters Building North Wing", "Floor 12 East", "Conference Zone"]
    first = location_sensor_id([*base, "Room 1"])
    second = location_sensor_id([*base, "Room 2"])

    for sensor_id in (first, second):
        assert len(sensor_id) <= 64
        assert SENSOR_ID_PATTERN.fullmatch(sensor_id)
        assert sensor_id.startswith("Headquarters-Building-North-Wing.Floor-12")
    assert first != second
    assert location_sensor_id([*base, "Room 1"]) == first  # deterministic
    # A shortened id carries a ':' that no slug has, so it cannot equal any location's full id.
    assert ":" in first
    assert all(":" not in location_sensor_id([part]) for part in ["a:b", "x::y"])


def test_a_location_of_exactly_64_characters_is_kept_whole() -> None:
    tag = "A" * 64
    assert location_sensor_id([tag]) == tag
    assert location_sensor_id([tag + "B"]) != location_sensor_id([tag + "C"])


def test_the_reading_id_comes_from_the_record_so_a_redelivery_rewrites_the_same_reading() -> None:
    first = reading(event())
    again = reading(copy.deepcopy(event()))
    other_record = reading(event(record="6650f0c2a1b2c3d4e5f60719"))
    same_record_new_count = reading(event(current=13))

    assert first["id"] == again["id"]
    assert first["id"] != other_record["id"]
    assert same_record_new_count["id"] == first["id"]  # the record names the reading, not its content
    assert parse_reading(first).id == first["id"]


def test_without_a_record_id_the_body_names_the_reading() -> None:
    without = reading(event(record=DROP))
    reordered = reading(dict(reversed(list(event(record=DROP).items()))))
    changed = reading(event(record=DROP, current=13))

    assert without["id"] == reordered["id"]  # key order does not matter
    assert without["id"] != changed["id"]
    assert without["id"] != reading(event())["id"]
    assert reading(event(record=""))["id"] == reading(event(record=""))["id"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"time": DROP}, "people-counter time is required"),
        ({"time": None}, "people-counter time is required"),
        ({"time": ""}, f"people-counter time {TIMESTAMP_RULE}"),
        ({"time": 1749464100}, f"people-counter time {TIMESTAMP_RULE}"),
        ({"time": "yesterday"}, f"people-counter time {TIMESTAMP_RULE}"),
        ({"time": "2025-06-09T10:15:00"}, f"people-counter time {TIMESTAMP_RULE}"),
        ({"_location_tags": DROP, "meta": {}}, "people-counter event has no location tags"),
        ({"_location_tags": DROP, "meta": DROP}, "people-counter event has no location tags"),
        ({"_location_tags": DROP, "meta": "Building A"}, "people-counter event has no location tags"),
        ({"_location_tags": "Building A"}, "people-counter location tags are not a list of strings"),
        ({"_location_tags": ["Building A", 2]}, "people-counter location tags are not a list of strings"),
        ({"_location_tags": ["!!!", "  "]}, "people-counter location tags have no letters or digits"),
        ({"current": DROP}, "people-counter current count is required"),
        ({"current": None}, "people-counter current count is required"),
        ({"current": {"in": 3}}, "people-counter current count is required"),
        ({"current": "12"}, "people-counter current count must be a finite number"),
        ({"current": True}, "people-counter current count must be a finite number"),
        ({"current": {"count": False}}, "people-counter current count must be a finite number"),
        ({"current": [12]}, "people-counter current count must be a finite number"),
        ({"current": float("nan")}, "people-counter current count must be a finite number"),
        ({"current": float("inf")}, "people-counter current count must be a finite number"),
    ],
)
def test_an_unusable_event_is_a_dead_letter_with_its_reason(changes: dict[str, Any], reason: str) -> None:
    body = event(**changes)

    result = reading_or_dead_letter(body, SOURCE)

    assert isinstance(result, DeadLetter)
    assert (result.source, result.reason) == (SOURCE, reason)
    assert result.item == body
