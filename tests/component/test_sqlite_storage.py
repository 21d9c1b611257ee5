"""What only the embedded SQLite adapters promise (feed order by LSN, threads, checkpoints, the embedded hub);
the cases every adapter shares are in tests/contract."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shared.storage.names import PARTITION_KEY_PATHS, READINGS
from shared.storage.ports import Document, EntityWrite, OutboundEvent
from shared.storage.sqlite.database import PAGE_SIZE, SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.events import SqliteEventHub
from shared.storage.sqlite.state import SqliteStateStore

TABLE = "things"
HUB = "telemetry"


@pytest.fixture
def documents(database: SqliteDatabase) -> SqliteDocumentStore:
    return SqliteDocumentStore(database, PARTITION_KEY_PATHS)


@pytest.fixture
def state(database: SqliteDatabase) -> SqliteStateStore:
    return SqliteStateStore(database)


@pytest.fixture
def hub(database: SqliteDatabase) -> SqliteEventHub:
    return SqliteEventHub(database)


def _reading(doc_id: str, sensor: str = "s1", timestamp: str = "2024-05-01T10:00:00.000Z", **extra: Any) -> Document:
    return {"id": doc_id, "sensor_id": sensor, "metric": "temperature", "timestamp": timestamp, **extra}


def _user_fields(document: Document) -> Document:
    return {k: v for k, v in document.items() if not k.startswith("_")}


def _whole_feed(documents: SqliteDocumentStore, container: str, page: int = 1000) -> list[Document]:
    seen: list[Document] = []
    continuation: str | None = None
    while True:
        batch = documents.read_changes(container, continuation, page)
        if not batch.documents:
            return seen
        seen.extend(batch.documents)
        continuation = batch.continuation


# --- documents ---------------------------------------------------------------------------------------


def test_upsert_then_read_returns_the_document_with_system_fields(documents: SqliteDocumentStore) -> None:
    doc = _reading("r1", value=21.5)
    documents.upsert_many(READINGS, [doc])

    stored = documents.read(READINGS, "s1", "r1")

    assert stored is not None
    assert _user_fields(stored) == doc
    assert isinstance(stored["_lsn"], int)
    assert isinstance(stored["_etag"], str)
    assert documents.read(READINGS, "s1", "missing") is None
    assert documents.read(READINGS, "other-sensor", "r1") is None  # the partition key is part of the address


def test_change_feed_from_the_start_and_resuming_after_a_continuation(documents: SqliteDocumentStore) -> None:
    documents.upsert_many(READINGS, [_reading("a"), _reading("b", sensor="s2")])
    documents.upsert_many(READINGS, [_reading("c")])

    first = documents.read_changes(READINGS, None, 100)
    assert [d["id"] for d in first.documents] == ["a", "b", "c"]
    assert first.continuation is not None

    nothing_new = documents.read_changes(READINGS, first.continuation, 100)
    assert nothing_new.documents == []
    assert nothing_new.continuation == first.continuation

    documents.upsert_many(READINGS, [_reading("d"), _reading("a", value=99.0)])  # "a" is replaced
    later = documents.read_changes(READINGS, first.continuation, 100)
    assert [d["id"] for d in later.documents] == ["d", "a"]
    assert later.documents[1]["value"] == 99.0
    # A replaced document is in the feed once, at its new position.
    assert [d["id"] for d in documents.read_changes(READINGS, None, 100).documents] == ["b", "c", "d", "a"]


def test_change_feed_respects_max_items(documents: SqliteDocumentStore) -> None:
    documents.upsert_many(READINGS, [_reading(f"r{n:02d}") for n in range(7)])

    pages: list[list[str]] = []
    continuation: str | None = None
    for _ in range(5):
        batch = documents.read_changes(READINGS, continuation, 3)
        pages.append([d["id"] for d in batch.documents])
        continuation = batch.continuation

    assert pages == [["r00", "r01", "r02"], ["r03", "r04", "r05"], ["r06"], [], []]


def test_expired_documents_are_not_returned(documents: SqliteDocumentStore) -> None:
    documents.upsert_many(READINGS, [_reading("short", ttl=1), _reading("kept", ttl=3600), _reading("forever")])
    assert {d["id"] for d in _whole_feed(documents, READINGS)} == {"short", "kept", "forever"}

    time.sleep(1.1)

    assert {d["id"] for d in _whole_feed(documents, READINGS)} == {"kept", "forever"}
    assert documents.read(READINGS, "s1", "short") is None
    assert documents.read(READINGS, "s1", "kept") is not None
    assert {d["id"] for d in documents.latest(READINGS, "s1", "timestamp", 10)} == {"kept", "forever"}


def test_end_of_feed_skips_everything_written_before(documents: SqliteDocumentStore) -> None:
    assert documents.read_changes(READINGS, documents.end_of_feed(READINGS), 100).documents == []

    documents.upsert_many(READINGS, [_reading("old-1"), _reading("old-2")])
    now = documents.end_of_feed(READINGS)
    assert documents.read_changes(READINGS, now, 100).documents == []

    documents.upsert_many(READINGS, [_reading("new"), _reading("old-1", value=5.0)])
    assert [d["id"] for d in documents.read_changes(READINGS, now, 100).documents] == ["new", "old-1"]


# --- event hub ---------------------------------------------------------------------------------------


def _all_events(hub: SqliteEventHub) -> dict[int, list[bytes]]:
    return {p: [e.body for e in hub.receive(HUB, p, None, 1000)] for p in range(hub.partitions)}


def test_events_with_one_partition_key_stay_in_one_partition_in_order(hub: SqliteEventHub) -> None:
    for batch in range(3):
        hub.publish(
            HUB,
            [OutboundEvent(f"{key}-{batch}-{n}".encode(), partition_key=key) for n in range(4) for key in ("a", "b")],
        )

    events = _all_events(hub)
    for key in ("a", "b"):
        holding = [p for p, bodies in events.items() if any(b.startswith(f"{key}-".encode()) for b in bodies)]
        assert len(holding) == 1
        own = [b for b in events[holding[0]] if b.startswith(f"{key}-".encode())]
        assert own == [f"{key}-{batch}-{n}".encode() for batch in range(3) for n in range(4)]
    assert sum(len(bodies) for bodies in events.values()) == 24


def test_events_keep_key_and_properties_and_get_increasing_sequence_numbers(hub: SqliteEventHub) -> None:
    hub.publish(HUB, [OutboundEvent(b"one", "k", {"kind": "reading"}), OutboundEvent(b"two", "k")])
    partition = next(p for p in range(hub.partitions) if hub.receive(HUB, p, None, 10))

    received = hub.receive(HUB, partition, None, 10)

    assert [(e.body, e.partition_key, e.properties) for e in received] == [
        (b"one", "k", {"kind": "reading"}),
        (b"two", "k", {}),
    ]
    assert received[0].sequence_number < received[1].sequence_number


def test_events_without_key_are_spread_over_partitions(hub: SqliteEventHub) -> None:
    hub.publish(HUB, [OutboundEvent(f"e{n}".encode()) for n in range(hub.partitions * 2)])

    assert all(len(bodies) == 2 for bodies in _all_events(hub).values())


def test_an_event_over_the_size_limit_is_returned_as_too_large_and_not_stored(database: SqliteDatabase) -> None:
    small_hub = SqliteEventHub(database, max_event_bytes=100)
    fits = OutboundEvent(b"x" * 90, "k", {"kind": "r"})  # 90 + 5 bytes
    big_body = OutboundEvent(b"x" * 101, "k")
    big_properties = OutboundEvent(b"x" * 90, "k", {"note": "y" * 10})  # 90 + 14 bytes

    outcome = small_hub.publish(HUB, [big_body, fits, big_properties])

    assert outcome.sent == 1
    assert outcome.too_large == [big_body, big_properties]
    assert outcome.too_large[0] is big_body
    stored = [e.body for p in range(small_hub.partitions) for e in small_hub.receive(HUB, p, None, 10)]
    assert stored == [fits.body]
    assert small_hub.publish(HUB, [big_body]).sent == 0


def test_receive_after_a_sequence_number_and_max_events(hub: SqliteEventHub) -> None:
    hub.publish(HUB, [OutboundEvent(f"e{n}".encode(), partition_key="k") for n in range(5)])
    partition = next(p for p in range(hub.partitions) if hub.receive(HUB, p, None, 10))
    first_two = hub.receive(HUB, partition, None, 2)

    rest = hub.receive(HUB, partition, first_two[-1].sequence_number, 100)

    assert [e.body for e in first_two] == [b"e0", b"e1"]
    assert [e.body for e in rest] == [b"e2", b"e3", b"e4"]
    assert hub.receive(HUB, partition, rest[-1].sequence_number, 100) == []
    assert hub.receive("another-hub", partition, None, 100) == []


def test_checkpoints_are_independent_per_consumer_group_and_partition(hub: SqliteEventHub) -> None:
    assert hub.checkpoint(HUB, "$Default", 0) is None

    hub.set_checkpoint(HUB, "$Default", 0, 10)
    hub.set_checkpoint(HUB, "dashboard", 0, 3)
    hub.set_checkpoint(HUB, "$Default", 1, 7)
    hub.set_checkpoint(HUB, "$Default", 0, 12)  # moves forward

    assert hub.checkpoint(HUB, "$Default", 0) == 12
    assert hub.checkpoint(HUB, "dashboard", 0) == 3
    assert hub.checkpoint(HUB, "$Default", 1) == 7
    assert hub.checkpoint(HUB, "dashboard", 1) is None
    assert hub.checkpoint("another-hub", "$Default", 0) is None


# --- state -------------------------------------------------------------------------------------------------


def test_every_page_of_entities_is_a_seek_on_the_key_index(database: SqliteDatabase, state: SqliteStateStore) -> None:
    """A page costs the same wherever it starts, so the dashboard can page through 10,000+ series: the page
    query seeks the unique (tbl, pk, rk) index and sorts nothing, on the first page and after a continuation."""
    state.write_many(TABLE, [EntityWrite(f"sensor-{n:03d}", "temperature", {}) for n in range(30)])
    statements: list[str] = []
    with database.connection() as conn:  # the pool hands this connection to the thread's next call
        conn.set_trace_callback(statements.append)
    try:
        first = state.query_page(TABLE, 10)
        state.query_page(TABLE, 10, first.continuation)
    finally:
        with database.connection() as conn:
            conn.set_trace_callback(None)

    selects = [sql for sql in statements if sql.startswith("SELECT")]
    assert len(selects) == 2, statements
    with database.connection() as conn:
        plans = [[row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")] for sql in selects]
    for plan in plans:
        assert len(plan) == 1, plan  # no second step: no temporary B-tree for the ORDER BY
        assert plan[0].startswith("SEARCH entities USING ") and "INDEX" in plan[0], plan
    assert "(tbl=?)" in plans[0][0]
    assert "(tbl=? AND (pk,rk)>(?,?))" in plans[1][0]


# --- threads -----------------------------------------------------------------------------------------


def test_concurrent_upserts_from_threads_are_all_in_the_change_feed_once(documents: SqliteDocumentStore) -> None:
    threads, per_thread = 8, 200
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            start.wait()
            for n in range(per_thread):
                documents.upsert_many(READINGS, [_reading(f"w{worker}-{n:03d}", sensor=f"s{worker % 3}")])
        except BaseException as error:  # reported below: an exception in a thread would otherwise vanish
            errors.append(error)

    workers = [threading.Thread(target=write, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    expected = {f"w{w}-{n:03d}" for w in range(threads) for n in range(per_thread)}
    assert documents.count(READINGS) == len(expected)

    feed = _whole_feed(documents, READINGS, page=97)
    ids = [d["id"] for d in feed]
    lsns = [d["_lsn"] for d in feed]
    assert len(ids) == len(expected)
    assert set(ids) == expected
    assert all(a < b for a, b in zip(lsns, lsns[1:], strict=False))
    # Each worker's own writes appear in the order it made them.
    for w in range(threads):
        own = [i for i in ids if i.startswith(f"w{w}-")]
        assert own == sorted(own)


def test_committed_pages_reach_the_database_file_without_any_writer_checkpointing(
    database: SqliteDatabase, documents: SqliteDocumentStore
) -> None:
    # Writers have automatic checkpoints off; only the background thread moves the WAL into the file.
    before = database.path.stat().st_size
    for batch in range(20):
        documents.upsert_many(READINGS, [_reading(f"r{batch}-{n}", sensor=f"s{n}", pad="x" * 2000) for n in range(50)])
    deadline = time.monotonic() + 10.0
    while database.path.stat().st_size < before + 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert database.path.stat().st_size >= before + 1_000_000  # about 2 MB were written
    with database.connection() as conn:
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)


def test_a_new_database_file_gets_the_large_pages(database: SqliteDatabase) -> None:
    with database.connection() as conn:
        assert conn.execute("PRAGMA page_size").fetchone() == (PAGE_SIZE,)


def test_a_database_file_made_with_small_pages_keeps_them_and_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as old:
        old.execute("PRAGMA page_size=4096")
        old.execute("PRAGMA journal_mode=WAL")
        old.execute("CREATE TABLE kept (n INTEGER)")
        old.execute("INSERT INTO kept VALUES (7)")
        old.commit()
    database = SqliteDatabase(path)
    try:
        SqliteDocumentStore(database, PARTITION_KEY_PATHS).upsert_many(READINGS, [_reading("r1")])
        with database.connection() as conn:
            assert conn.execute("PRAGMA page_size").fetchone() == (4096,)
            assert conn.execute("SELECT n FROM kept").fetchall() == [(7,)]
        assert SqliteDocumentStore(database, PARTITION_KEY_PATHS).read(READINGS, "s1", "r1") is not None
    finally:
        database.close()
