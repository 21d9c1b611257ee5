"""The sensor simulator: realistic, irregular readings with deterministic ids, safe to retry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.intake.simulator import MAX_C, MIN_C, SensorSimulator, emit_due, first_cursor, sensor_ids
from shared.readings.reading import epoch_ms
from shared.readings.rules import DEFAULT_METRICS, TRIGGER_POLICY, ReadingPolicy, check_reading
from shared.storage.names import PARTITION_KEY_PATHS, READINGS
from shared.storage.ports import ConcurrencyConflict, Entity, EntityWrite, StorageError
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.state import SqliteStateStore

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_sensor_ids_are_zero_padded_and_sort_naturally() -> None:
    assert sensor_ids(3) == ["sensor-01", "sensor-02", "sensor-03"]
    assert sensor_ids(120)[-1] == "sensor-120"
    assert sensor_ids(0) == []


def test_emissions_are_irregular_in_range_and_stamped_with_their_own_moment() -> None:
    cursor = first_cursor("sensor-01", epoch_ms(START))
    readings, after = emit_due(cursor, epoch_ms(START + timedelta(minutes=1)))
    stamps = [r.timestamp for r in readings]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    assert len(readings) >= 6
    assert all(1.0 <= gap <= 10.0 for gap in gaps)
    assert len(set(gaps)) > 1
    assert stamps[0] == START  # not the invocation time
    assert all(MIN_C <= r.value <= MAX_C for r in readings)
    assert after.next_ms > epoch_ms(START + timedelta(minutes=1))


@settings(max_examples=50, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=1200),
    start_ms=st.integers(min_value=0, max_value=4_102_444_800_000),  # 1970 to 2100
    elapsed_ms=st.integers(min_value=0, max_value=3 * 3_600_000),
)
def test_simulated_readings_satisfy_the_reading_rules_of_every_path(count: int, start_ms: int, elapsed_ms: int) -> None:
    """As written to `readings` (with its ttl), the change feed trigger takes each; as posted, so would the API."""
    sensor_id = sensor_ids(count)[-1]
    readings, _ = emit_due(first_cursor(sensor_id, start_ms), start_ms + elapsed_ms)
    ingest = ReadingPolicy.ingest_api(DEFAULT_METRICS, timedelta(0), timedelta(days=7))
    for reading in readings:
        assert check_reading(reading.to_document(ttl_seconds=604_800), TRIGGER_POLICY, "cosmos-readings") == reading
        assert check_reading(reading.to_document(), ingest, "ingest-api", reading.timestamp) == reading


def test_same_cursor_gives_the_same_readings() -> None:
    cursor = first_cursor("sensor-02", epoch_ms(START))
    now = epoch_ms(START + timedelta(seconds=40))
    assert emit_due(cursor, now) == emit_due(cursor, now)
    other = first_cursor("sensor-03", epoch_ms(START))
    assert {r.id for r in emit_due(cursor, now)[0]}.isdisjoint(r.id for r in emit_due(other, now)[0])


def test_long_stop_resumes_near_now_without_replaying_the_backlog() -> None:
    cursor = first_cursor("sensor-01", epoch_ms(START))
    readings, _ = emit_due(cursor, epoch_ms(START + timedelta(hours=3)))
    assert len(readings) <= 60
    assert readings[0].timestamp >= START + timedelta(hours=3) - timedelta(minutes=2)


class _FailingCursorWrites(SqliteStateStore):
    """A state store whose cursor write fails once, as a lost connection would, after readings were written."""

    def __init__(self, database: SqliteDatabase) -> None:
        super().__init__(database)
        self.fail_next = False

    def write_many(self, table: str, changes: Sequence[EntityWrite]) -> list[Entity | ConcurrencyConflict]:
        if self.fail_next:
            self.fail_next = False
            raise StorageError("connection reset")
        return super().write_many(table, changes)


def test_a_retried_invocation_rewrites_the_same_documents(tmp_path: Path) -> None:
    database = SqliteDatabase.in_directory(tmp_path)
    documents = SqliteDocumentStore(database, PARTITION_KEY_PATHS)
    state = _FailingCursorWrites(database)
    simulator = SensorSimulator(documents, state)
    sensors = sensor_ids(3)
    simulator.run(sensors, START)
    now = START + timedelta(seconds=30)
    state.fail_next = True
    with pytest.raises(StorageError):
        simulator.run(sensors, now)
    written_once = documents.count(READINGS)
    retried = simulator.run(sensors, now)  # the host's retry of the same invocation
    assert documents.count(READINGS) == written_once
    assert retried and all(documents.read(READINGS, r.sensor_id, r.id) is not None for r in retried)
    assert simulator.run(sensors, now) == []  # the cursors moved on: nothing is due twice


def test_readings_land_in_the_readings_container_by_sensor(tmp_path: Path) -> None:
    database = SqliteDatabase.in_directory(tmp_path)
    documents = SqliteDocumentStore(database, PARTITION_KEY_PATHS)
    simulator = SensorSimulator(documents, SqliteStateStore(database), reading_ttl_seconds=3600)
    simulator.run(sensor_ids(2), START)
    emitted = simulator.run(sensor_ids(2), START + timedelta(seconds=20))
    stored = documents.read(READINGS, emitted[0].sensor_id, emitted[0].id)
    assert stored is not None
    assert stored["metric"] == "temperature"
    assert stored["unit"] == "°C"
    assert stored["ttl"] == 3600
    assert stored["timestamp"].endswith("Z")
