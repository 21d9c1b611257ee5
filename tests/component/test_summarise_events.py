"""The Event Hub trigger called as the host calls it: sensor readings and Microshare people counters in one
batch become summaries, devices are recorded, and what cannot be used is dead-lettered with its reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import azure.functions as func
import pytest

from shared.app import services
from shared.microshare.api import HOURLY_SNAPSHOT, PEOPLE_COUNTER
from shared.readings.dead_letters import DeadLetterBox
from shared.storage.names import SUMMARIES
from tests.component.app_functions import app_functions, as_the_host_calls

EventsHandler = Callable[[list[func.EventHubEvent]], None]
T0 = datetime(2025, 6, 9, 10, 0, tzinfo=UTC)
ENQUEUED = datetime(2025, 6, 9, 10, 30, tzinfo=UTC)
LOCATION = ["Building A", "Floor 2", "Zone 3", "Spot 1"]
SERIES = "Building-A.Floor-2.Zone-3.Spot-1"


@pytest.fixture
def summarise_events() -> EventsHandler:
    return cast(EventsHandler, as_the_host_calls(app_functions()["summarise_events"]))


def hub_event(body: Any, device: str | None = None, minute: int = 0) -> func.EventHubEvent:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    return func.EventHubEvent(
        body=raw,
        enqueued_time=ENQUEUED + timedelta(minutes=minute),
        iothub_metadata={"connection-device-id": device} if device else None,
    )


def sensor_reading(second: int, value: float) -> dict[str, Any]:
    return {
        "id": f"thermo-1-{second}",
        "sensor_id": "thermo-1",
        "metric": "temperature",
        "value": value,
        "unit": "°C",
        "timestamp": (T0 + timedelta(seconds=second)).isoformat(),
    }


def people_counter(record: str, quarter: int, current: Any, device_id: str = "pc-0001") -> dict[str, Any]:
    return {
        "recType": PEOPLE_COUNTER,
        "record": record,
        "time": (T0 + timedelta(minutes=15 * quarter)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "change": {"in": 3, "out": 1, "count": 2, "traffic": 4},
        "daily_total": {"in": 40, "out": 31, "count": 9, "traffic": 71},
        "current": current,
        "device": {"id": device_id, "battery": 3.6, "alerts": []},
        "meta": {"device": LOCATION, "iot": {"rssi": -81, "snr": 7.5, "fport": 20}},
        "_location_tags": LOCATION,
    }


def snapshot() -> dict[str, Any]:
    return {
        "recType": HOURLY_SNAPSHOT,
        "location": "Building A",
        "from": "2025-06-09T10:00:00.000Z",
        "to": "2025-06-09T11:00:00.000Z",
        "meta": {"totalCount": 1},
        "objs": [{"data": {"location": "Building A", "line": [{"time": "2025-06-09T10:00:00.000Z", "current": 42}]}}],
    }


def latest_summary(sensor_id: str, metric: str) -> dict[str, Any]:
    found = services().stores.documents.latest(SUMMARIES, sensor_id, "window_end", 1, {"metric": metric})
    assert found, f"no summary of {sensor_id}/{metric}"
    return found[0]


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_mixed_batch_summarises_sensors_and_locations_and_parks_the_rest(summarise_events: EventsHandler) -> None:
    events = [
        hub_event(sensor_reading(0, 21.0), device="thermo-1", minute=0),
        hub_event([sensor_reading(1, 23.0), sensor_reading(2, 22.0)], device="thermo-1", minute=1),
        hub_event(people_counter("rec-1", 1, 12), minute=2),
        hub_event(people_counter("rec-2", 2, {"count": 15}), minute=3),
        hub_event(people_counter("rec-3", 3, 9, device_id="pc-0002"), minute=4),
        hub_event(snapshot(), minute=5),
        hub_event(b"<html>not json</html>", device="thermo-9", minute=6),
        hub_event(people_counter("rec-4", 4, "many"), minute=7),
    ]

    summarise_events(events)

    temperature = latest_summary("thermo-1", "temperature")
    assert (temperature["count"], temperature["min"], temperature["max"]) == (3, 21.0, 23.0)
    occupancy = latest_summary(SERIES, "people_count")
    assert occupancy["unit"] == "people"
    assert (occupancy["count"], occupancy["min"], occupancy["max"], occupancy["avg"]) == (3, 9.0, 15.0, 12.0)
    assert occupancy["window_end"] == "2025-06-09T10:45:00.000Z"

    devices = {d.device_id: d for d in services().devices.list()}
    assert {name: (d.source, d.count) for name, d in devices.items()} == {
        "thermo-1": ("iothub", 2),
        "thermo-9": ("iothub", 1),
        "pc-0001": ("microshare", 3),  # its bad record was delivered too
        "pc-0002": ("microshare", 1),
    }
    assert devices["pc-0001"].first_seen == ENQUEUED + timedelta(minutes=2)
    assert devices["pc-0001"].last_seen == ENQUEUED + timedelta(minutes=7)

    letters = DeadLetterBox(services().stores.state).list("eventhub-telemetry")
    assert sorted(letter["reason"] for letter in letters) == [
        "event body is not JSON",
        "people-counter current count must be a finite number",
    ]
    assert not any(HOURLY_SNAPSHOT in letter["item"] for letter in letters)  # skipped, not dead-lettered


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_redelivered_people_counter_batch_changes_no_summary(summarise_events: EventsHandler) -> None:
    batch = [hub_event(people_counter(f"rec-{q}", q, 10 + q), minute=q) for q in range(4)]
    summarise_events(batch)
    first = latest_summary(SERIES, "people_count")

    summarise_events([hub_event(people_counter("rec-2", 2, 12), minute=9)])  # a redelivered event

    assert latest_summary(SERIES, "people_count") == first
    assert first["count"] == 4
