"""The telemetry hub's events sorted for the summariser: sensor readings pass through, Microshare
people-counter records become occupancy readings, hourly snapshots are skipped, and every event that names
its device is a sighting for the device registry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shared.intake.devices import Sighting
from shared.intake.event_bodies import decode_body
from shared.intake.occupancy import reading_or_dead_letter
from shared.microshare.api import HOURLY_SNAPSHOT, PEOPLE_COUNTER
from shared.readings.dead_letters import DeadLetter

IOTHUB_DEVICE_ID = "connection-device-id"  # IoT Hub's system property, without its "iothub-" prefix
MAX_DEVICE_ID_LENGTH = 1024


class ReceivedEvent(Protocol):
    """What the router needs of an event: azure.functions.EventHubEvent has it."""

    def get_body(self) -> bytes: ...

    @property
    def enqueued_time(self) -> datetime | None: ...

    @property
    def iothub_metadata(self) -> Mapping[str, str] | None: ...


@dataclass(slots=True)
class TelemetryBatch:
    items: list[object] = field(default_factory=list)  # reading documents for the summariser, unvalidated
    entered_at: list[datetime] = field(default_factory=list)  # per item: its event's enqueued time
    rejected: list[DeadLetter] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)
    people_counter: int = 0  # people-counter records that became readings
    snapshots_skipped: int = 0


def _device_id(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_DEVICE_ID_LENGTH:
        return value
    return None


def _microshare_device_id(record: Mapping[str, Any]) -> str | None:
    device = record.get("device")
    return _device_id(device.get("id")) if isinstance(device, Mapping) else None


def _route_item(batch: TelemetryBatch, item: object, source: str, entered_at: datetime, device_sighted: bool) -> None:
    """Sort one decoded item of an event enqueued at `entered_at`; `device_sighted`: by IoT Hub's device id."""
    rec_type = item.get("recType") if isinstance(item, Mapping) else None
    if not isinstance(item, Mapping) or rec_type not in (PEOPLE_COUNTER, HOURLY_SNAPSHOT):
        batch.items.append(item)  # a sensor reading, or junk the summariser dead-letters with its reason
        batch.entered_at.append(entered_at)
        return
    if rec_type == HOURLY_SNAPSHOT:
        batch.snapshots_skipped += 1  # a whole API answer of hourly totals: not a reading
        return
    microshare_id = _microshare_device_id(item)
    if not device_sighted and microshare_id is not None:
        batch.sightings.append(Sighting(microshare_id, "microshare", entered_at))
    reading = reading_or_dead_letter(item, source)
    if isinstance(reading, DeadLetter):
        batch.rejected.append(reading)
    else:
        batch.items.append(reading)
        batch.entered_at.append(entered_at)
        batch.people_counter += 1


def route_events(events: Sequence[ReceivedEvent], source: str, received_at: datetime) -> TelemetryBatch:
    """Decode each body once and sort its items; an event without an enqueued time was seen at `received_at`.
    Each item keeps the moment its event entered the hub, which its age is judged by (the same on a redelivery).

    An event's device is sighted whether or not its body was usable: the device delivered it. IoT Hub's
    connection device id names it; without one, a people-counter record's own device id does."""
    batch = TelemetryBatch()
    for event in events:
        seen_at = event.enqueued_time or received_at
        iothub_id = _device_id((event.iothub_metadata or {}).get(IOTHUB_DEVICE_ID))
        if iothub_id is not None:
            batch.sightings.append(Sighting(iothub_id, "iothub", seen_at))
        decoded = decode_body(event.get_body(), source)
        if isinstance(decoded, DeadLetter):
            batch.rejected.append(decoded)
            continue
        for item in decoded:
            _route_item(batch, item, source, seen_at, iothub_id is not None)
    return batch
