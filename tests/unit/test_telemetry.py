"""Routing the telemetry hub's events: readings pass through, people counters become readings, snapshots are
skipped, and each event's device is sighted once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from shared.intake.devices import Sighting
from shared.intake.telemetry import route_events
from shared.microshare.api import HOURLY_SNAPSHOT, PEOPLE_COUNTER

SOURCE = "eventhub-telemetry"
ENQUEUED = datetime(2025, 6, 9, 10, 16, tzinfo=UTC)
RECEIVED = datetime(2025, 6, 9, 10, 17, tzinfo=UTC)


def hub_event(body: Any, device: str | None = None, enqueued: datetime | None = ENQUEUED) -> func.EventHubEvent:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    metadata = {"connection-device-id": device} if device else None
    return func.EventHubEvent(body=raw, enqueued_time=enqueued, iothub_metadata=metadata)


def counter(device_id: str = "pc-0001", **extra: Any) -> dict[str, Any]:
    return {
        "recType": PEOPLE_COUNTER,
        "record": f"rec-{device_id}",
        "time": "2025-06-09T10:15:00.000Z",
        "current": 4,
        "device": {"id": device_id},
        "_location_tags": ["Building A", "Floor 2"],
        **extra,
    }


SENSOR = {"id": "r1", "sensor_id": "s1", "metric": "temperature", "value": 21.0, "timestamp": "2025-06-09T10:00:00Z"}


def test_each_kind_of_item_goes_its_own_way() -> None:
    snapshot = {"recType": HOURLY_SNAPSHOT, "location": "Building A", "objs": []}
    events = [
        hub_event(SENSOR, device="thermo-7"),
        hub_event([SENSOR, 5]),
        hub_event(counter()),
        hub_event(snapshot),
        hub_event(b"not json", device="thermo-8"),
        hub_event(counter("pc-0002", time="soon")),
        hub_event({"recType": "something.else", "x": 1}),
    ]

    batch = route_events(events, SOURCE, RECEIVED)

    assert batch.items[:3] == [SENSOR, SENSOR, 5]
    people = batch.items[3]
    assert isinstance(people, dict)
    assert (people["sensor_id"], people["metric"], people["value"]) == ("Building-A.Floor-2", "people_count", 4.0)
    assert batch.items[4] == {"recType": "something.else", "x": 1}
    assert len(batch.items) == 5
    assert (batch.people_counter, batch.snapshots_skipped) == (1, 1)
    assert [(letter.source, letter.reason) for letter in batch.rejected] == [
        (SOURCE, "event body is not JSON"),
        (SOURCE, "people-counter time must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-01T12:00:00Z"),
    ]
    # Devices are sighted even when their event is unusable: they delivered it.
    assert batch.sightings == [
        Sighting("thermo-7", "iothub", ENQUEUED),
        Sighting("pc-0001", "microshare", ENQUEUED),
        Sighting("thermo-8", "iothub", ENQUEUED),
        Sighting("pc-0002", "microshare", ENQUEUED),
    ]


def test_iothub_names_the_device_before_the_body_does_and_now_stands_in_for_a_missing_enqueued_time() -> None:
    batch = route_events([hub_event(counter("pc-0009"), device="gateway-1", enqueued=None)], SOURCE, RECEIVED)

    assert batch.sightings == [Sighting("gateway-1", "iothub", RECEIVED)]


def test_a_device_id_that_is_not_a_usable_string_is_not_sighted() -> None:
    bodies = [counter(device=None), counter(device={"id": 17}), counter(device={"id": ""}), counter(device="pc")]

    batch = route_events([hub_event(body) for body in bodies], SOURCE, RECEIVED)

    assert batch.sightings == []
    assert batch.people_counter == 4  # the readings are fine without a device
