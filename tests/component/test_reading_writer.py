"""The reading writer on a real embedded store: a reading is written once, a stored one is never replaced, and the
same reading again changes nothing; all or nothing for the ingest API, write what can be for a bulk import."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shared.intake.reading_writer import ReadingWriter
from shared.readings.reading import Reading
from shared.storage.names import PARTITION_KEY_PATHS, READINGS
from shared.storage.ports import Document
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
TTL = 3600


def reading(reading_id: str, value: float = 21.5, sensor_id: str = "boiler-7", **changes: Any) -> Reading:
    base = Reading(reading_id, sensor_id, "temperature", value, "°C", NOW, "gateway-1")
    return replace(base, **changes)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    database = SqliteDatabase.in_directory(tmp_path)
    yield SqliteDocumentStore(database, PARTITION_KEY_PATHS)
    database.close()


def stored(store: SqliteDocumentStore, reading_id: str, sensor_id: str = "boiler-7") -> Document:
    document = store.read(READINGS, sensor_id, reading_id)
    assert document is not None
    return document


def test_new_readings_are_written_with_their_time_to_live(store: SqliteDocumentStore) -> None:
    outcome = ReadingWriter(store, TTL).write([reading("r-1"), reading("r-2", 22.0)], all_or_nothing=True)

    assert (outcome.written, outcome.unchanged, outcome.conflicts) == (2, 0, [])
    assert stored(store, "r-2")["value"] == 22.0 and stored(store, "r-2")["ttl"] == TTL


def test_the_same_reading_again_is_unchanged_and_not_rewritten(store: SqliteDocumentStore) -> None:
    writer = ReadingWriter(store, TTL)
    writer.write([reading("r-1")], all_or_nothing=True)
    feed_end = store.end_of_feed(READINGS)
    # The same instant spelt in another offset, and another source: the same reading.
    again = reading("r-1", timestamp=NOW.astimezone(timezone(timedelta(hours=2))), source="gateway-2")

    outcome = writer.write([again], all_or_nothing=True)

    assert (outcome.written, outcome.unchanged, outcome.conflicts) == (0, 1, [])
    assert stored(store, "r-1")["source"] == "gateway-1"  # the stored source is kept
    assert store.read_changes(READINGS, feed_end, 10).documents == []  # nothing written, so nothing to summarise


@pytest.mark.parametrize(
    "other",
    [
        {"value": 25.0},
        {"timestamp": NOW + timedelta(milliseconds=1)},
        {"metric": "humidity", "unit": "%"},
        {"unit": "K"},
    ],
)
def test_other_content_under_a_stored_id_refuses_the_whole_batch(
    store: SqliteDocumentStore, other: dict[str, Any]
) -> None:
    writer = ReadingWriter(store, TTL)
    writer.write([reading("r-1")], all_or_nothing=True)
    changed = reading("r-1", **other)

    outcome = writer.write([reading("r-2"), changed, reading("r-1", sensor_id="boiler-8")], all_or_nothing=True)

    assert outcome.conflicts == [changed]
    assert outcome.written == 0
    assert stored(store, "r-1")["value"] == 21.5 and stored(store, "r-1")["metric"] == "temperature"
    assert store.read(READINGS, "boiler-7", "r-2") is None  # all or nothing
    assert store.read(READINGS, "boiler-8", "r-1") is None


def test_an_import_writes_the_others_and_returns_the_conflicts_in_order(store: SqliteDocumentStore) -> None:
    writer = ReadingWriter(store, TTL)
    writer.write([reading("r-1"), reading("r-3")], all_or_nothing=True)
    batch = [reading("r-3", 30.0), reading("r-2"), reading("r-1", 10.0), reading("r-1", sensor_id="boiler-8")]

    outcome = writer.write([*batch, reading("r-4")], all_or_nothing=False)

    assert outcome.conflicts == [batch[0], batch[2]]
    assert (outcome.written, outcome.unchanged) == (3, 0)
    assert stored(store, "r-3")["value"] == 21.5 and stored(store, "r-1")["value"] == 21.5
    assert stored(store, "r-1", "boiler-8")["value"] == 21.5  # the same id on another sensor is another reading
    assert stored(store, "r-4")["value"] == 21.5


def test_one_id_twice_in_a_call_is_written_once_or_is_a_conflict(store: SqliteDocumentStore) -> None:
    outcome = ReadingWriter(store, TTL).write(
        [reading("r-1"), reading("r-1"), reading("r-1", 99.0)], all_or_nothing=False
    )

    assert (outcome.written, outcome.unchanged, [r.value for r in outcome.conflicts]) == (1, 1, [99.0])
    assert stored(store, "r-1")["value"] == 21.5


class _AnotherWriterBetween:
    """The embedded store, where another request stores `sneaked` between the writer's read and its write."""

    def __init__(self, inner: SqliteDocumentStore, sneaked: Mapping[str, Any]) -> None:
        self.inner = inner
        self.sneaked = sneaked

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        found = self.inner.read_many(container, keys)
        self.inner.upsert_many(container, [self.sneaked])
        return found


def test_a_conflict_written_by_another_request_meanwhile_is_still_found_and_never_overwritten(
    store: SqliteDocumentStore,
) -> None:
    theirs = reading("r-1", 30.0)
    racing = _AnotherWriterBetween(store, theirs.to_document(TTL))
    mine = [reading("r-1", 20.0), reading("r-2")]

    outcome = ReadingWriter(racing, TTL).write(mine, all_or_nothing=True)

    assert outcome.conflicts == [mine[0]]
    assert stored(store, "r-1")["value"] == 30.0  # theirs stays
    assert outcome.written == 1 and stored(store, "r-2")["value"] == 21.5  # the race: the other one was written
