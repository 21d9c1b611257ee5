"""Microshare forwarder: 100,000 records from the stand-in to the embedded hub; how full the Event Hubs batches
are; and whether the dedup records stay the same size over a simulated week of 15-minute runs.

Everything runs on this machine: the Microshare stand-in on a loopback port, SQLite in a temporary folder, and
azure-eventhub's own EventDataBatch (its size accounting, 1 MiB as on Standard) behind a producer that keeps
the batches instead of sending them."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.eventhub import EventDataBatch

from bench.common import log
from devhost.standins.microshare.dataset import MicroshareDataset
from devhost.standins.microshare.server import MicroshareStandIn
from shared.microshare.api import PEOPLE_COUNTER
from shared.microshare.client import MicroshareClient
from shared.microshare.forwarder import Forwarder
from shared.microshare.hub_fanout import HubFanout
from shared.storage.azure.events import AzureEventPublisher
from shared.storage.names import DELIVERIES_TABLE
from shared.storage.ports import MAX_EVENT_BYTES, OutboundEvent, PublishOutcome
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.events import SqliteEventHub
from shared.storage.sqlite.state import SqliteStateStore
from tests.component.microshare_rig import Clock, settings_for

T0 = datetime(2025, 6, 2, tzinfo=UTC)  # a Monday
LOCATIONS = tuple(f"Building {chr(ord('A') + n)}" for n in range(10))
DEVICES_PER_LOCATION = 10
INTERVALS = 1000  # 10 locations x 10 devices x 1,000 fifteen-minute intervals = 100,000 records
TARGET_SECONDS = 20.0
TARGET_FILL = 0.90


def throughput(folder: Path) -> tuple[dict[str, Any], list[OutboundEvent]]:
    end = T0 + timedelta(minutes=15 * INTERVALS)
    log(f"generating {len(LOCATIONS) * DEVICES_PER_LOCATION * INTERVALS:,} people-counter records")
    dataset = MicroshareDataset.synthetic(T0, end, locations=LOCATIONS, devices_per_location=DEVICES_PER_LOCATION)
    database = SqliteDatabase(folder / "throughput.db")
    state, hub = SqliteStateStore(database), SqliteEventHub(database)
    with MicroshareStandIn(dataset) as standin:
        settings = settings_for(standin, MICROSHARE_TIMEOUT_SECONDS="30")
        clock = Clock(end)
        client = MicroshareClient(settings, state, clock=clock)
        forwarder = Forwarder(client, HubFanout({"telemetry": hub}, state, clock=clock), state, settings, clock)
        log("forwarding them to the embedded hub")
        began = time.perf_counter()
        result = forwarder.run(PEOPLE_COUNTER, T0, end)
        seconds = time.perf_counter() - began
        client.close()
    events = [
        OutboundEvent(e.body, e.partition_key, e.properties)
        for partition in range(hub.partitions)
        for e in hub.receive("telemetry", partition, None, 10_000_000)
    ]
    figures = {
        "records": result.records,
        "pages": result.pages,
        "events_on_hub": len(events),
        "distinct_records_on_hub": len({json.loads(e.body)["record"] for e in events}),
        "seconds": round(seconds, 2),
        "records_per_second": round(result.records / seconds, 1),
    }
    database.close()
    return figures, events


class _KeptBatches:
    """A producer that builds the SDK's real batches and keeps them instead of sending."""

    def __init__(self) -> None:
        self.batches: list[EventDataBatch] = []

    def create_batch(self, *, partition_key: str | None = None) -> EventDataBatch:
        return EventDataBatch(max_size_in_bytes=MAX_EVENT_BYTES, partition_key=partition_key)

    def send_batch(self, event_data_batch: EventDataBatch) -> None:
        self.batches.append(event_data_batch)

    def close(self) -> None:
        pass


def batch_fill(events: Sequence[OutboundEvent]) -> dict[str, Any]:
    """Fill by bytes of every batch but the last of each partition key (the last holds what is left over)."""
    producer = _KeptBatches()
    outcome: PublishOutcome = AzureEventPublisher(lambda hub: producer).publish("telemetry", events)
    last_of_key: dict[object, int] = {}
    for index, batch in enumerate(producer.batches):
        last_of_key[batch._partition_key] = index  # noqa: SLF001 - the SDK keeps no public accessor
    full = [b for i, b in enumerate(producer.batches) if i not in set(last_of_key.values())]
    fills = [b.size_in_bytes / MAX_EVENT_BYTES for b in full]
    return {
        "events": outcome.sent,
        "batches": len(producer.batches),
        "full_batches_measured": len(fills),
        "fill_min": round(min(fills), 4) if fills else None,
        "fill_mean": round(sum(fills) / len(fills), 4) if fills else None,
    }


def week_of_runs(folder: Path) -> dict[str, Any]:
    """672 runs, one every 15 minutes, over a week of data from 3 buildings x 4 devices."""
    start = T0 + timedelta(days=30)
    dataset = MicroshareDataset.synthetic(start - timedelta(days=1), start + timedelta(days=7), devices_per_location=4)
    database = SqliteDatabase(folder / "week.db")
    state, hub = SqliteStateStore(database), SqliteEventHub(database)
    rows_per_day: list[int] = []
    sent = 0
    with MicroshareStandIn(dataset) as standin:
        settings = settings_for(standin, MICROSHARE_FIRST_RUN_LOOKBACK_HOURS="1", MICROSHARE_TIMEOUT_SECONDS="30")
        clock = Clock(start)
        client = MicroshareClient(settings, state, clock=clock)
        forwarder = Forwarder(client, HubFanout({"telemetry": hub}, state, clock=clock), state, settings, clock)
        log("a simulated week of 15-minute runs")
        for run in range(1, 7 * 96 + 1):
            clock.now = start + timedelta(minutes=15 * run)
            sent += forwarder.run(PEOPLE_COUNTER).hubs["telemetry"].sent
            if run % 96 == 0:
                rows_per_day.append(len(state.query(DELIVERIES_TABLE)))
        client.close()
    distinct = {
        json.loads(e.body)["record"]
        for partition in range(hub.partitions)
        for e in hub.receive("telemetry", partition, None, 10_000_000)
    }
    database.close()
    retention_days = settings.dedup_retention / timedelta(days=1)
    settled = rows_per_day[int(retention_days) :]  # once the retention has passed, the table stops growing
    flat = bool(settled) and max(settled) <= min(settled) * 1.05
    return {
        "runs": 7 * 96,
        "events_sent": sent,
        "distinct_records_sent": len(distinct),
        "dedup_rows_at_end_of_each_day": rows_per_day,
        "retention_hours": settings.dedup_retention / timedelta(hours=1),
        "flat_after_retention": flat,
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-forwarder-") as tmp:
        folder = Path(tmp)
        speed, events = throughput(folder)
        fill = batch_fill(events)
        week = week_of_runs(folder)
    meets = (
        speed["seconds"] <= TARGET_SECONDS
        and speed["distinct_records_on_hub"] == speed["records"] == speed["events_on_hub"]
        and fill["fill_min"] is not None
        and fill["fill_min"] >= TARGET_FILL
        and week["flat_after_retention"]
        and week["events_sent"] == week["distinct_records_sent"]
    )
    return {
        "bench": "forwarder",
        "throughput": speed,
        "batch_fill": fill,
        "week_of_runs": week,
        "target": {"seconds_max": TARGET_SECONDS, "batch_fill_min": TARGET_FILL, "dedup_state": "flat"},
        "meets_target": meets,
    }
