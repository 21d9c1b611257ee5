"""Storage faults lose nothing: with 429s, 503s, timeouts and 412s on 5 % of storage calls, some before the
call reaches storage and some after it wrote, the pipeline ends with the same summaries and windows as a
fault-free run over the same readings."""

from __future__ import annotations

import json
import math
import os
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import zip_longest
from pathlib import Path
from typing import Any, TypeVar

import pytest

from shared.alerts.rules import parse_rule
from shared.alerts.store import AlertStore
from shared.readings.dead_letters import DeadLetterBox
from shared.readings.reading import format_timestamp
from shared.readings.summariser import Summariser, summary_from_state
from shared.readings.window import summary_id
from shared.settings import Settings
from shared.storage.azure.cosmos_documents import CosmosStorageError
from shared.storage.azure.table_state import TableStorageError
from shared.storage.names import PARTITION_KEY_PATHS, READINGS, SUMMARIES, WINDOWS_TABLE
from shared.storage.ports import (
    ConcurrencyConflict,
    Document,
    Entity,
    EntityWrite,
    OutboundEvent,
    StorageError,
    public_fields,
)
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.state import SqliteStateStore
from tests.component.pipeline_rig import Backend, Delivery, PipelineState, app_specs, run_pipeline
from tests.faults import FaultInjector, FaultKind, FaultyDocumentStore, FaultyStateStore, Phase
from tests.true_windows import true_window

T = TypeVar("T")
# Recent, as a live stream's readings are: judged as of the moment they are written, they are well within
# READING_MAX_AGE_SECONDS (a week by default).
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
STREAM_SEED = 20250609
SENSORS = tuple(f"sensor-{n:02d}" for n in range(20))  # readings written to `readings`
READINGS_PER_SENSOR = 200
DEVICES = tuple(f"thermo-{n}" for n in range(6))  # readings sent as telemetry events
READINGS_PER_DEVICE = 60
LATE_SHARE, DUPLICATE_SHARE, MAX_LATE = 0.1, 0.03, 400  # arrivals: late by up to MAX_LATE places, or twice
# A round's events fit in one batch per partition even when failed publishes sent them several times, so
# faults never change how events are batched, nor the summaries written per batch.
MAX_EVENTS_PER_ROUND = 20
RESTART_EVERY = 12  # rounds; a restart drops the app's caches and resumes from the stored lease/checkpoints
MIN_FAULTS = 10  # of each kind per run, and as many writes that landed yet were reported failed


@dataclass(frozen=True, slots=True)
class Stream:
    deliveries: list[Delivery]
    readings: list[dict[str, Any]]  # every valid reading once: what the windows must end up made of


def series(name: str, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """A sensor's readings as the simulator makes them: 15-40 °C at irregular 1-10 s gaps."""
    moment, readings = T0, []
    for n in range(count):
        moment += timedelta(milliseconds=rng.randint(1_000, 10_000))
        readings.append(
            {
                "id": f"{name}-{n:04d}",
                "sensor_id": name,
                "metric": "temperature",
                "value": round(rng.uniform(15.0, 40.0), 2),
                "unit": "°C",
                "timestamp": format_timestamp(moment),
                "source": "simulator",
            }
        )
    return readings


def arrivals(items: Sequence[T], rng: random.Random) -> list[T]:
    """In order, except that some come late (up to MAX_LATE places) and some come twice."""
    slots: list[tuple[int, int, T]] = []
    for position, item in enumerate(items):
        late = rng.randint(1, MAX_LATE) if rng.random() < LATE_SHARE else 0
        slots.append((position + late, position, item))
        if rng.random() < DUPLICATE_SHARE:
            slots.append((position + rng.randint(1, MAX_LATE), position, item))
    slots.sort(key=lambda slot: (slot[0], slot[1]))
    return [item for _, _, item in slots]


def invalid_readings() -> list[dict[str, Any]]:
    """Documents the summariser must dead-letter, not stop on."""
    at = format_timestamp(T0 + timedelta(minutes=5))
    base = {"sensor_id": "sensor-03", "metric": "temperature", "unit": "°C", "timestamp": at}
    return [
        {**base, "id": "bad-value", "value": "warm"},
        {**base, "id": "bad-time", "value": 21.0, "timestamp": "2025-06-09T08:05:00"},
        {**base, "id": "no-value", "sensor_id": "sensor-11"},
        {**base, "id": "from-1970", "value": 21.0, "timestamp": "1970-01-01T00:00:00Z"},  # older than the max age
    ]


def telemetry_events(rng: random.Random) -> tuple[list[OutboundEvent], list[dict[str, Any]]]:
    """Each device's readings in events of one to three, keyed by device as IoT Hub routes them, plus one
    body that is not JSON; and the readings they carry."""
    timed: list[tuple[str, OutboundEvent]] = []
    carried: list[dict[str, Any]] = []
    for device in DEVICES:
        routed = {"iothub-connection-device-id": device}
        readings = series(device, READINGS_PER_DEVICE, rng)
        carried += readings
        start = 0
        while start < len(readings):
            group = readings[start : start + rng.randint(1, 3)]
            start += len(group)
            body = json.dumps(group[0] if len(group) == 1 else group).encode()
            timed.append((group[0]["timestamp"], OutboundEvent(body, partition_key=device, properties=routed)))
    junk = OutboundEvent(b"<reading>21.5</reading>", partition_key=DEVICES[0], properties={"x": "y"})
    timed.append((format_timestamp(T0 + timedelta(minutes=3)), junk))
    timed.sort(key=lambda pair: pair[0])
    return arrivals([event for _, event in timed], rng), carried


def build_stream(seed: int) -> Stream:
    rng = random.Random(seed)
    readings = sorted(
        (r for sensor in SENSORS for r in series(sensor, READINGS_PER_SENSOR, rng)),
        key=lambda r: (r["timestamp"], r["id"]),
    )
    documents = arrivals(readings, rng)
    for bad in invalid_readings():
        documents.insert(rng.randrange(len(documents)), bad)
    chunks: list[list[dict[str, Any]]] = []
    while documents:
        # Mostly small rounds; now and then a burst larger than one change-feed batch (500).
        size = 650 if rng.random() < 0.08 else rng.randint(10, 90)
        chunks.append(documents[:size])
        documents = documents[size:]
    events, carried = telemetry_events(rng)
    per_round = math.ceil(len(events) / len(chunks))
    assert per_round <= MAX_EVENTS_PER_ROUND
    event_rounds = [events[i : i + per_round] for i in range(0, len(events), per_round)]
    deliveries = [Delivery(list(r or []), list(e or [])) for r, e in zip_longest(chunks, event_rounds)]
    return Stream(deliveries, readings + carried)


@pytest.fixture(scope="module")
def stream() -> Stream:
    return build_stream(STREAM_SEED)


def without_computed_at(summary: Document) -> Document:
    return {k: v for k, v in summary.items() if k != "computed_at"}


def comparable(state: PipelineState) -> tuple[dict[str, Document], dict[tuple[str, str], dict[str, Any]]]:
    """Summaries and window states with the one field that may differ between runs (the clock) left out."""
    summaries = {sid: without_computed_at(s) for sid, s in state.summaries.items()}
    windows = {key: {**w, "latest": without_computed_at(w["latest"])} for key, w in state.windows.items()}
    return summaries, windows


def assert_no_reading_lost(state: PipelineState, readings: list[dict[str, Any]], size: int) -> None:
    """Each series' window holds exactly its newest `size` readings, and its newest summary says so."""
    by_series: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for reading in readings:
        by_series[(reading["sensor_id"], reading["metric"])].append(reading)
    assert state.windows.keys() == by_series.keys()
    for (sensor, metric), own in by_series.items():
        window = true_window(own, size)
        stats = window.stats()
        assert stats is not None
        kept = state.windows[(sensor, metric)]
        assert [tuple(entry) for entry in kept["entries"]] == window.entries, f"{sensor}: readings lost"
        newest = state.summaries[summary_id(sensor, metric, stats.newest_id)]
        assert public_fields(newest) == kept["latest"]  # the dashboard lists the summary that was written
        assert (newest["count"], newest["min"], newest["max"]) == (stats.count, stats.min, stats.max)
        assert newest["avg"] == pytest.approx(stats.avg)


def assert_one_summary_per_window(state: PipelineState) -> None:
    windows = Counter((s["sensor_id"], s["metric"], s["newest_reading_id"]) for s in state.summaries.values())
    assert max(windows.values()) == 1, "two summaries of one window"
    for sid, summary in state.summaries.items():
        assert sid == summary_id(summary["sensor_id"], summary["metric"], summary["newest_reading_id"])


def with_alerts(backend: Backend) -> None:
    """A threshold rule the stream's 15-40 °C readings cross back and forth (set up past any fault)."""
    rule = {"kind": "threshold", "metric": "temperature", "op": ">", "value": 32, "clear": 26, "for_summaries": 2}
    AlertStore(SqliteStateStore(backend.database)).put_rule(parse_rule("hot", rule), "2025-01-01T00:00:00.000Z")


@pytest.mark.usefixtures("app_on_temp_store")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_storage_faults_lose_no_reading_and_change_no_summary(tmp_path: Path, stream: Stream, seed: int) -> None:
    size = Settings.from_env(os.environ).window_size
    fault_free_backend = Backend.embedded(tmp_path / "fault-free")
    with_alerts(fault_free_backend)
    fault_free = run_pipeline(fault_free_backend, stream.deliveries, RESTART_EVERY)
    faults = FaultInjector(seed)
    faulty_backend = Backend.embedded(tmp_path / "faulty", faults)
    with_alerts(faulty_backend)

    faulty = run_pipeline(faulty_backend, stream.deliveries, RESTART_EVERY)

    # The faults really happened, and the app's own retry policy answered the invocations they failed.
    kinds = faults.by_kind()
    assert all(kinds[kind] >= MIN_FAULTS for kind in FaultKind), kinds
    assert faults.written_then_failed() >= MIN_FAULTS, faults.injected
    assert fault_free.retry_delays == []
    policy = app_specs()["summarise_readings"].retry
    assert policy is not None
    assert faulty.retry_delays
    assert set(faulty.retry_delays) <= {policy.delay_before(n).total_seconds() for n in range(1, 32)}

    assert faulty.state.readings == fault_free.state.readings
    summaries, windows = comparable(faulty.state)
    expected_summaries, expected_windows = comparable(fault_free.state)
    assert summaries.keys() == expected_summaries.keys(), "summaries missing or extra"
    assert summaries == expected_summaries
    assert windows == expected_windows
    assert faulty.state.dead_letters == fault_free.state.dead_letters
    assert len(fault_free.state.dead_letters) == len(invalid_readings()) + 1  # and the one event that is not JSON
    assert "timestamp must be at most 604800 s old" in fault_free.state.dead_letters.values()  # the 1970 reading
    assert_one_summary_per_window(faulty.state)
    for run in (fault_free, faulty):
        assert_no_reading_lost(run.state, stream.readings, size)

    # Devices count deliveries, and a retried batch is delivered again: never fewer sightings, never lost ones.
    assert {d: s.source for d, s in faulty.state.devices.items()} == {
        d: s.source for d, s in fault_free.state.devices.items()
    }
    assert all(faulty.state.devices[d].count >= s.count for d, s in fault_free.state.devices.items())

    # The alert rule's transitions: the same ones, each notified once, whatever failed in between.
    assert len(fault_free.state.alert_notifications) >= 10
    assert faulty.state.alert_notifications == fault_free.state.alert_notifications


# --- the wrappers do what the test above relies on ----------------------------------------------------


def test_a_fault_after_the_call_leaves_the_write_in_place_and_still_reports_it(tmp_path: Path) -> None:
    database = SqliteDatabase.in_directory(tmp_path)
    inner = SqliteDocumentStore(database, PARTITION_KEY_PATHS)
    faults = FaultInjector(seed=5, rate=1.0)
    documents = FaultyDocumentStore(inner, faults)
    outcomes: set[tuple[Phase, bool]] = set()
    for n in range(60):
        doc_id = f"r{n}"
        with pytest.raises(CosmosStorageError, match=r"upsert on 'readings' failed \(status (429|503|408|None)\)"):
            documents.upsert_many(READINGS, [{"id": doc_id, "sensor_id": "s1", "value": n}])
        (fault,) = faults.injected
        faults.injected.clear()
        outcomes.add((fault.phase, inner.read(READINGS, "s1", doc_id) is not None))
    assert outcomes == {(Phase.BEFORE, False), (Phase.AFTER, True)}
    database.close()


def test_a_412_means_another_writer_moved_the_etag_first(tmp_path: Path) -> None:
    database = SqliteDatabase.in_directory(tmp_path)
    inner = SqliteStateStore(database)
    state = FaultyStateStore(inner, FaultInjector(seed=9, rate=0.5))
    stored = inner.upsert(WINDOWS_TABLE, "s1", "temperature", {"entries": "[]"})
    conflicts = 0
    for _ in range(20):
        etag = stored.etag
        try:
            (result,) = state.write_many(WINDOWS_TABLE, [EntityWrite("s1", "temperature", {"entries": "[1]"}, etag)])
        except TableStorageError:
            continue
        current = inner.get(WINDOWS_TABLE, "s1", "temperature")
        assert current is not None
        if isinstance(result, ConcurrencyConflict):
            conflicts += 1
            assert current.etag != etag  # the other writer got there first
        else:
            assert current.etag == result.etag
        stored = current
    assert conflicts >= 2
    database.close()


# --- what the faults above found, pinned down ---------------------------------------------------------


def test_a_bad_reading_sent_again_after_a_lost_answer_is_parked_once(tmp_path: Path) -> None:
    """A client whose upsert landed but timed out sends it again; the change feed then delivers the same
    document a second time, with new system fields (_lsn, _ts, _etag). It is still one dead letter."""
    database = SqliteDatabase.in_directory(tmp_path)
    documents, state = SqliteDocumentStore(database, PARTITION_KEY_PATHS), SqliteStateStore(database)
    summariser = Summariser(documents, state, window_size=5)
    (bad, *_) = invalid_readings()
    continuation = None
    for _ in range(2):
        documents.upsert_many(READINGS, [bad])
        changes = documents.read_changes(READINGS, continuation, 100)
        continuation = changes.continuation
        summariser.apply(changes.documents, source="cosmos-readings")

    letters = DeadLetterBox(state).list()
    assert [letter["reason"] for letter in letters] == ["value must be a finite number"]
    assert "_lsn" not in letters[0]["item"]
    database.close()


class _AnswerLostOnce(SqliteStateStore):
    """A state store whose write_many, once armed, lands and then fails, as a timeout on the response does."""

    armed = False

    def write_many(self, table: str, changes: Sequence[EntityWrite]) -> list[Entity | ConcurrencyConflict]:
        written = super().write_many(table, changes)
        if self.armed:
            self.armed = False
            raise StorageError("Table Storage write on 'windows' failed (status None): ServiceResponseTimeoutError")
        return written


@pytest.mark.parametrize("same_process", [True, False])
def test_a_late_reading_whose_state_write_answer_was_lost_still_updates_its_summary(
    tmp_path: Path, same_process: bool
) -> None:
    """A late reading joins a full window without changing its newest reading, so the new summary has the id of
    the old one. If the state write lands but its answer is lost, the retry must still write the new summary,
    though a summary with that id exists already."""
    database = SqliteDatabase.in_directory(tmp_path)
    documents, state = SqliteDocumentStore(database, PARTITION_KEY_PATHS), SqliteStateStore(database)
    flaky = _AnswerLostOnce(database)
    first = Summariser(documents, flaky, window_size=3)
    readings = series("sensor-01", 4, random.Random(1))
    first.apply(readings, source="cosmos-readings")
    late = {**readings[2], "id": "sensor-01-late", "value": 99.0}  # between the two newest: joins the window

    flaky.armed = True
    with pytest.raises(StorageError):
        first.apply([late], source="cosmos-readings")
    retry = first if same_process else Summariser(documents, state, window_size=3)
    retry.apply([late], source="cosmos-readings")  # the trigger delivers the batch again

    entity = state.get(WINDOWS_TABLE, "sensor-01", "temperature")
    assert entity is not None
    latest = summary_from_state("sensor-01", "temperature", entity.properties)
    assert latest is not None
    assert latest["max"] == 99.0
    stored = documents.read(SUMMARIES, "sensor-01", latest["id"])
    assert stored is not None
    assert {k: v for k, v in stored.items() if not k.startswith("_")} == latest
    database.close()
