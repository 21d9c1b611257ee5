"""The forwarder's metrics and run log lines against the Microshare stand-in: what an operator reads off
/api/metrics after known runs (a day of data for two buildings: 2 x 2 x 96 people-counter events)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from devhost.console import app_records_as_json
from devhost.standins.microshare.server import Fault
from shared.microshare.api import PEOPLE_COUNTER
from shared.microshare.client import MicroshareError
from shared.microshare.forwarder import ForwardingIncomplete
from shared.ops.metrics import PipelineMetrics
from shared.readings.dead_letters import DeadLetterBox
from shared.storage.ports import EventPublisher
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.events import SqliteEventHub
from tests.component.microshare_rig import T0, day_of_data, microshare_rig
from tests.component.test_forwarder import CrashingHub

END_OF_DAY = T0 + timedelta(days=1)
EVENTS = 2 * 2 * 96


def value(metrics: PipelineMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


@pytest.fixture
def run_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    with app_records_as_json(stream):
        yield stream


def runs(stream: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line.get("event") == "forwarder_run"]


def test_a_run_and_its_repeat_count_sent_events_and_duplicates_per_hub(
    database: SqliteDatabase, run_lines: io.StringIO
) -> None:
    metrics = PipelineMetrics()
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        forwarder = rig.forwarder(metrics=metrics)
        first = forwarder.run(PEOPLE_COUNTER, T0, END_OF_DAY)
        again = forwarder.run(PEOPLE_COUNTER, T0, END_OF_DAY)
    pc = {"rec_type": PEOPLE_COUNTER}
    assert value(metrics, "sensorpulse_forwarder_runs_total", outcome="ok", **pc) == 2
    assert value(metrics, "sensorpulse_forwarder_events_sent_total", hub="telemetry", **pc) == EVENTS
    assert value(metrics, "sensorpulse_forwarder_duplicates_skipped_total", hub="telemetry", **pc) == EVENTS
    assert value(metrics, "sensorpulse_forwarder_events_fetched_total", **pc) == 2 * EVENTS
    pages = value(metrics, "sensorpulse_forwarder_pages_fetched_total", **pc)
    assert pages == first.pages + again.pages > 0
    first_line, second_line = runs(run_lines)
    assert first_line["outcome"] == "ok" and first_line["recType"] == PEOPLE_COUNTER
    assert first_line["sent_total"] == EVENTS and first_line["duplicates_total"] == 0
    assert second_line["sent_total"] == 0 and second_line["duplicates_total"] == EVENTS


def test_a_hub_that_misses_events_makes_the_run_incomplete_then_ok(
    database: SqliteDatabase, run_lines: io.StringIO
) -> None:
    metrics = PipelineMetrics()
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        archive = CrashingHub(rig.hub)
        publishers: dict[str, EventPublisher] = {"telemetry": rig.hub, "archive": archive}
        with pytest.raises(ForwardingIncomplete):
            rig.forwarder(publishers, metrics=metrics).run(PEOPLE_COUNTER)
        archive.fail = False
        rig.clock.now += timedelta(minutes=15)
        rig.forwarder(publishers, metrics=metrics).run(PEOPLE_COUNTER)
    pc = {"rec_type": PEOPLE_COUNTER}
    assert value(metrics, "sensorpulse_forwarder_runs_total", outcome="incomplete", **pc) == 1
    assert value(metrics, "sensorpulse_forwarder_runs_total", outcome="ok", **pc) == 1
    assert value(metrics, "sensorpulse_forwarder_events_sent_total", hub="archive", **pc) == EVENTS
    assert value(metrics, "sensorpulse_forwarder_events_sent_total", hub="telemetry", **pc) == EVENTS
    incomplete, ok = runs(run_lines)
    assert incomplete["outcome"] == "incomplete" and incomplete["failed_hubs"] == "archive"
    assert ok["outcome"] == "ok" and ok["failed_hubs"] == ""


def test_a_microshare_outage_counts_a_failed_run(database: SqliteDatabase, run_lines: io.StringIO) -> None:
    metrics = PipelineMetrics()
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        rig.standin.inject(Fault("view", status=503, times=1000))
        with pytest.raises(MicroshareError):
            rig.forwarder(metrics=metrics, client=rig.client(attempts=1)).run(PEOPLE_COUNTER)
    assert value(metrics, "sensorpulse_forwarder_runs_total", outcome="failed", rec_type=PEOPLE_COUNTER) == 1
    (line,) = runs(run_lines)
    assert line["outcome"] == "failed" and line["level"] == "WARNING"


def test_backfill_windows_count_their_progress(database: SqliteDatabase) -> None:
    metrics = PipelineMetrics()
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        forwarder = rig.forwarder(metrics=metrics)
        for location in forwarder.locations():
            forwarder.forward_window(PEOPLE_COUNTER, location, T0, END_OF_DAY)
    pc = {"rec_type": PEOPLE_COUNTER}
    assert value(metrics, "sensorpulse_backfill_windows_total", outcome="ok", **pc) == 2
    assert value(metrics, "sensorpulse_backfill_events_sent_total", **pc) == EVENTS
    assert value(metrics, "sensorpulse_forwarder_runs_total", outcome="ok", **pc) == 0  # windows are not runs


def test_events_too_large_for_a_hub_show_in_the_dead_letter_metric_once_each(database: SqliteDatabase) -> None:
    metrics = PipelineMetrics()
    with microshare_rig(database, day_of_data(), END_OF_DAY) as rig:
        small = SqliteEventHub(database, max_event_bytes=100)  # no people-counter event fits
        forwarder = rig.forwarder({"telemetry": rig.hub, "archive": small}, metrics=metrics)
        forwarder.run(PEOPLE_COUNTER, T0, END_OF_DAY)
        forwarder.run(PEOPLE_COUNTER, T0, END_OF_DAY)  # recorded as delivered: not parked again
        parked = DeadLetterBox(rig.state).list("eventhub:archive")
    assert len(parked) == EVENTS
    too_large = {"source": "eventhub:archive", "reason": "event larger than the hub accepts"}
    assert value(metrics, "sensorpulse_dead_letters_total", **too_large) == EVENTS
    assert metrics.totals().dead_letters == EVENTS
