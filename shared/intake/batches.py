"""The summariser's two triggers as use-cases: a change-feed batch of reading documents, and an Event Hub batch
of telemetry events (routed, summarised, its devices recorded), each ending in the batch's one log line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from shared.intake.devices import DeviceRegistry
from shared.intake.telemetry import ReceivedEvent, route_events
from shared.ops.log_context import log_fields
from shared.ops.metrics import PipelineMetrics
from shared.readings.summariser import BatchOutcome, Summariser

READINGS_SOURCE = "cosmos-readings"
EVENTS_SOURCE = "eventhub-telemetry"


class SequencedEvent(ReceivedEvent, Protocol):
    """An event as the Event Hubs trigger hands it: with its sequence number on the hub."""

    @property
    def sequence_number(self) -> int | None: ...


class BatchIntake:
    """Batches from the change feed of `readings` and from the telemetry hub `hub` into the summariser."""

    def __init__(self, summariser: Summariser, devices: DeviceRegistry, metrics: PipelineMetrics, hub: str) -> None:
        self._summariser = summariser
        self._devices = devices
        self._metrics = metrics
        self.hub = hub

    def summarise_documents(self, documents: Sequence[object], received_at: datetime) -> BatchOutcome:
        """A change-feed batch of reading documents; invalid ones are dead-lettered, the rest summarised. Each is
        judged as of its `_ts` (when it was written: the same on every redelivery), or `received_at` without one."""
        outcome = self._summariser.apply(
            documents, source=READINGS_SOURCE, entered_at=written_at(documents, received_at)
        )
        outcome.log(READINGS_SOURCE, trigger="cosmos")
        return outcome

    def summarise_events(self, events: Sequence[SequencedEvent], received_at: datetime) -> BatchOutcome:
        """An Event Hub batch: readings and people-counter records summarised, devices recorded."""
        with log_fields(hub=self.hub):
            self._metrics.events_processed.labels(self.hub).inc(len(events))
            batch = route_events(events, source=EVENTS_SOURCE, received_at=received_at)
            outcome = self._summariser.apply(
                batch.items, source=EVENTS_SOURCE, rejected=batch.rejected, entered_at=batch.entered_at
            )
            # After the summaries: a failure here retries the batch, and re-summarising it changes nothing.
            devices = self._devices.record(batch.sightings)
            self._metrics.devices_seen(sighting.device_id for sighting in batch.sightings)
            outcome.log(
                EVENTS_SOURCE,
                trigger="eventhub",
                hub=self.hub,
                events=len(events),
                people_counter=batch.people_counter,
                snapshots_skipped=batch.snapshots_skipped,
                devices=devices,
                **_sequence_numbers(events),
            )
            return outcome


_LATEST_TS = 253_402_300_799  # 9999-12-31T23:59:59Z: the last second a datetime holds


def written_at(documents: Sequence[object], received_at: datetime) -> list[datetime]:
    """When each change-feed document was written: its `_ts` (epoch seconds, set by Cosmos DB and by the embedded
    store, never by a client), or `received_at` for one without a usable `_ts`."""
    moments: dict[int | float, datetime] = {}  # a batch's documents share a few seconds: each converted once
    written: list[datetime] = []
    for document in documents:
        ts = document.get("_ts") if isinstance(document, Mapping) else None
        if isinstance(ts, bool) or not isinstance(ts, int | float) or not 0 <= ts <= _LATEST_TS:  # (NaN fails too)
            written.append(received_at)
            continue
        moment = moments.get(ts)
        if moment is None:
            moment = moments[ts] = datetime.fromtimestamp(ts, UTC)
        written.append(moment)
    return written


def _sequence_numbers(events: Sequence[SequencedEvent]) -> dict[str, int]:
    """The batch's first and last event (by sequence number), to find them on the hub."""
    numbers = [event.sequence_number for event in events if isinstance(event.sequence_number, int)]
    return {"first_sequence_number": min(numbers), "last_sequence_number": max(numbers)} if numbers else {}
