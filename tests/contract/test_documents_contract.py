"""The documents port's contract, run against every adapter (see conftest.py)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared.storage.names import READINGS, SUMMARIES
from shared.storage.ports import Document, StorageError
from tests.contract.conftest import Subject


def _reading(doc_id: str, sensor: str = "s1", timestamp: str = "2024-05-01T10:00:00.000Z", **extra: Any) -> Document:
    return {"id": doc_id, "sensor_id": sensor, "metric": "temperature", "timestamp": timestamp, **extra}


def _user_fields(document: Document) -> Document:
    return {k: v for k, v in document.items() if not k.startswith("_")}


def _whole_feed(subject: Subject, container: str, page: int = 1000) -> list[Document]:
    seen: list[Document] = []
    continuation: str | None = None
    while True:
        batch = subject.store.read_changes(container, continuation, page)
        if not batch.documents:
            return seen
        seen.extend(batch.documents)
        continuation = batch.continuation


def test_upsert_then_read_returns_the_document_with_system_fields(documents: Subject) -> None:
    doc = _reading("r1", value=21.5)
    documents.store.upsert_many(READINGS, [doc])

    stored = documents.store.read(READINGS, "s1", "r1")

    assert stored is not None
    assert _user_fields(stored) == doc
    assert isinstance(stored["_etag"], str)
    assert isinstance(stored["_ts"], int)


def test_reading_a_missing_document_gives_none(documents: Subject) -> None:
    documents.require("missing_read")
    documents.store.upsert_many(READINGS, [_reading("r1")])

    assert documents.store.read(READINGS, "s1", "missing") is None
    assert documents.store.read(READINGS, "other-sensor", "r1") is None  # the partition key is part of the address


def test_system_fields_given_by_the_caller_are_not_stored(documents: Subject) -> None:
    documents.store.upsert_many(READINGS, [{**_reading("r1"), "_etag": '"forged"', "_ts": 1}])

    stored = documents.store.read(READINGS, "s1", "r1")

    assert stored is not None
    assert stored["_etag"] != '"forged"'
    assert stored["_ts"] != 1


def test_upsert_of_the_same_id_replaces_the_document(documents: Subject) -> None:
    documents.store.upsert_many(READINGS, [_reading("r1", value=1.0)])
    documents.store.upsert_many(READINGS, [_reading("r1", value=2.0, note="replaced")])

    stored = documents.store.read(READINGS, "s1", "r1")

    assert stored is not None
    assert stored["value"] == 2.0
    assert stored["note"] == "replaced"
    assert documents.store.count(READINGS) == 1


def test_a_batch_of_many_documents_in_one_partition_and_across_partitions_is_all_stored(documents: Subject) -> None:
    batch = [_reading(f"a{n:03d}") for n in range(150)] + [_reading(f"b{n}", sensor=f"s{n}") for n in range(20)]
    documents.store.upsert_many(READINGS, batch)

    assert documents.store.count(READINGS) == 170
    assert documents.store.read(READINGS, "s1", "a149") is not None
    assert documents.store.read(READINGS, "s7", "b7") is not None


def test_latest_is_newest_first_within_one_partition_with_limit_and_filter(documents: Subject) -> None:
    docs = [
        _reading(f"r{minute}", timestamp=f"2024-05-01T10:{minute:02d}:00.000Z", metric=metric)
        for minute, metric in [(5, "temperature"), (1, "humidity"), (9, "temperature"), (3, "temperature")]
    ]
    # Newer than all of them, but in another partition: never returned for s1.
    docs.append(_reading("other", sensor="s2", timestamp="2024-05-01T11:00:00.000Z"))
    documents.store.upsert_many(READINGS, docs)

    everything = documents.store.latest(READINGS, "s1", "timestamp", 10)
    two = documents.store.latest(READINGS, "s1", "timestamp", 2)
    temperatures = documents.store.latest(READINGS, "s1", "timestamp", 10, equals={"metric": "temperature"})

    assert [d["id"] for d in everything] == ["r9", "r5", "r3", "r1"]
    assert [d["id"] for d in two] == ["r9", "r5"]
    assert [d["id"] for d in temperatures] == ["r9", "r5", "r3"]
    assert documents.store.latest(READINGS, "s1", "timestamp", 10, equals={"metric": "pressure"}) == []
    with pytest.raises(ValueError):
        documents.store.latest(READINGS, "s1", "timestamp') OR 1=1 --", 10)
    with pytest.raises(ValueError):
        documents.store.latest(READINGS, "s1", "timestamp", 10, equals={"metric = metric OR 1": "x"})


def test_latest_since_keeps_only_documents_at_or_after_the_bound(documents: Subject) -> None:
    documents.store.upsert_many(
        SUMMARIES,
        [
            {
                "id": f"w{minute}",
                "sensor_id": "s1",
                "metric": "temperature",
                "window_end": f"2024-05-01T10:{minute:02d}:00Z",
            }
            for minute in (1, 3, 5, 7, 9)
        ],
    )

    since = documents.store.latest(SUMMARIES, "s1", "window_end", 10, since="2024-05-01T10:05:00Z")
    limited = documents.store.latest(SUMMARIES, "s1", "window_end", 2, since="2024-05-01T10:02:00Z")

    assert [d["id"] for d in since] == ["w9", "w7", "w5"]  # the bound itself is included
    assert [d["id"] for d in limited] == ["w9", "w7"]  # the limit still takes the newest
    assert documents.store.latest(SUMMARIES, "s1", "window_end", 10, since="2024-05-01T11:00:00Z") == []


def _windows(subject: Subject, *minutes: int, metric: str = "temperature") -> None:
    subject.store.upsert_many(
        SUMMARIES,
        [
            {
                "id": f"{metric[0]}{minute}",
                "sensor_id": "s1",
                "metric": metric,
                "window_end": f"2024-05-01T10:{minute:02d}:00.000Z",
                "min": float(minute),
            }
            for minute in minutes
        ],
    )


def test_latest_between_since_and_until_keeps_both_bounds(documents: Subject) -> None:
    _windows(documents, 1, 3, 5, 7, 9)

    between = documents.store.latest(
        SUMMARIES, "s1", "window_end", 10, since="2024-05-01T10:03:00.000Z", until="2024-05-01T10:07:00.000Z"
    )
    limited = documents.store.latest(
        SUMMARIES, "s1", "window_end", 2, since="2024-05-01T10:01:00.000Z", until="2024-05-01T10:08:00.000Z"
    )

    assert [d["id"] for d in between] == ["t7", "t5", "t3"]  # both bounds included
    assert [d["id"] for d in limited] == ["t7", "t5"]  # the limit takes the newest within the bounds
    empty = documents.store.latest(
        SUMMARIES, "s1", "window_end", 10, since="2024-05-01T10:05:30.000Z", until="2024-05-01T10:06:30.000Z"
    )
    assert empty == []


def test_latest_until_alone_keeps_only_documents_at_or_before_the_bound(documents: Subject) -> None:
    _windows(documents, 1, 3, 5, 7, 9)

    until = documents.store.latest(SUMMARIES, "s1", "window_end", 10, until="2024-05-01T10:05:00.000Z")
    newest_two = documents.store.latest(SUMMARIES, "s1", "window_end", 2, until="2024-05-01T10:08:00.000Z")

    assert [d["id"] for d in until] == ["t5", "t3", "t1"]
    assert [d["id"] for d in newest_two] == ["t7", "t5"]
    assert documents.store.latest(SUMMARIES, "s1", "window_end", 10, until="2024-05-01T09:59:59.999Z") == []


def test_latest_until_with_equals_and_fields(documents: Subject) -> None:
    _windows(documents, 1, 3, 5, 7)
    _windows(documents, 2, 4, 6, metric="humidity")

    projected = documents.store.latest(
        SUMMARIES,
        "s1",
        "window_end",
        10,
        equals={"metric": "humidity"},
        since="2024-05-01T10:02:00.000Z",
        until="2024-05-01T10:04:00.000Z",
        fields=["window_end", "min"],
    )

    assert projected == [
        {"window_end": "2024-05-01T10:04:00.000Z", "min": 4.0},
        {"window_end": "2024-05-01T10:02:00.000Z", "min": 2.0},
    ]


def test_latest_with_fields_returns_only_those_fields(documents: Subject) -> None:
    documents.store.upsert_many(
        SUMMARIES,
        [
            {
                "id": "a",
                "sensor_id": "s1",
                "metric": "temperature",
                "window_end": "2024-05-01T10:00:00Z",
                "min": 1.5,
                "max": 3,
                "avg": 2.25,
                "readings": ["r1", "r2"],
            },
            {"id": "b", "sensor_id": "s1", "metric": "temperature", "window_end": "2024-05-01T10:01:00Z", "min": 2.0},
        ],
    )

    projected = documents.store.latest(
        SUMMARIES, "s1", "window_end", 10, equals={"metric": "temperature"}, fields=["window_end", "min", "max"]
    )

    assert projected == [
        {"window_end": "2024-05-01T10:01:00Z", "min": 2.0},  # a field the document lacks is left out
        {"window_end": "2024-05-01T10:00:00Z", "min": 1.5, "max": 3},
    ]
    with pytest.raises(ValueError):
        documents.store.latest(SUMMARIES, "s1", "window_end", 10, fields=["min) FROM x --"])


def test_documents_without_partition_key_or_id_are_refused(documents: Subject) -> None:
    with pytest.raises(StorageError):
        documents.store.upsert_many(READINGS, [{"id": "no-sensor", "value": 1.0}])
    with pytest.raises(StorageError):
        documents.store.upsert_many(READINGS, [{"id": "empty-sensor", "sensor_id": ""}])
    with pytest.raises(StorageError):
        documents.store.upsert_many(READINGS, [{"sensor_id": "s1"}])
    # A batch with one bad document writes nothing at all.
    with pytest.raises(StorageError):
        documents.store.upsert_many(READINGS, [_reading("good"), {"id": "bad"}])
    assert documents.store.count(READINGS) == 0


def test_change_feed_from_the_start_and_resuming_after_a_continuation(documents: Subject) -> None:
    documents.require("change_feed")
    documents.store.upsert_many(READINGS, [_reading("a"), _reading("b", sensor="s2")])
    documents.store.upsert_many(READINGS, [_reading("c")])

    first = documents.store.read_changes(READINGS, None, 100)
    assert sorted(d["id"] for d in first.documents) == ["a", "b", "c"]
    assert first.continuation is not None

    nothing_new = documents.store.read_changes(READINGS, first.continuation, 100)
    assert nothing_new.documents == []

    documents.store.upsert_many(READINGS, [_reading("d"), _reading("a", value=99.0)])  # "a" is replaced
    later = documents.store.read_changes(READINGS, nothing_new.continuation, 100)
    assert sorted(d["id"] for d in later.documents) == ["a", "d"]
    assert {d["id"]: d.get("value") for d in later.documents}["a"] == 99.0


def test_change_feed_respects_max_items(documents: Subject) -> None:
    documents.require("change_feed")
    documents.store.upsert_many(READINGS, [_reading(f"r{n:02d}") for n in range(7)])

    seen: list[str] = []
    continuation: str | None = None
    for _ in range(5):
        batch = documents.store.read_changes(READINGS, continuation, 3)
        assert len(batch.documents) <= 3
        seen += [d["id"] for d in batch.documents]
        continuation = batch.continuation

    assert seen == [f"r{n:02d}" for n in range(7)]  # one partition: in write order, each once


def test_change_feeds_of_containers_are_separate(documents: Subject) -> None:
    documents.require("change_feed")
    documents.store.upsert_many(READINGS, [_reading("r1")])
    documents.store.upsert_many(SUMMARIES, [_reading("s1-summary")])

    assert [d["id"] for d in _whole_feed(documents, READINGS)] == ["r1"]
    assert [d["id"] for d in _whole_feed(documents, SUMMARIES)] == ["s1-summary"]


def test_the_change_feed_gives_a_document_the_system_properties_a_point_read_gives(documents: Subject) -> None:
    documents.require("change_feed")
    documents.store.upsert_many(READINGS, [_reading("sys-1"), _reading("sys-2")])
    read = documents.store.read(READINGS, "s1", "sys-2")
    assert read is not None
    (fed,) = [d for d in documents.store.read_changes(READINGS, None, 100).documents if d["id"] == "sys-2"]
    assert {key: fed[key] for key in ("_lsn", "_ts", "_etag")} == {key: read[key] for key in ("_lsn", "_ts", "_etag")}


def test_end_of_feed_skips_everything_written_before(documents: Subject) -> None:
    documents.require("change_feed")
    documents.store.upsert_many(READINGS, [_reading("old-1"), _reading("old-2")])
    now = documents.store.end_of_feed(READINGS)
    assert documents.store.read_changes(READINGS, now, 100).documents == []

    documents.store.upsert_many(READINGS, [_reading("new"), _reading("old-1", value=5.0)])
    assert sorted(d["id"] for d in documents.store.read_changes(READINGS, now, 100).documents) == ["new", "old-1"]


def test_expired_documents_are_not_returned(documents: Subject) -> None:
    documents.require("ttl")
    documents.store.upsert_many(READINGS, [_reading("short", ttl=1), _reading("kept", ttl=3600), _reading("forever")])
    assert documents.store.read(READINGS, "s1", "short") is not None

    time.sleep(1.1)

    assert documents.store.read(READINGS, "s1", "short") is None
    assert documents.store.read(READINGS, "s1", "kept") is not None
    assert {d["id"] for d in documents.store.latest(READINGS, "s1", "timestamp", 10)} == {"kept", "forever"}


# --- read_many and insert_new: a reading is written once, and never replaced by insert_new ---------------


def test_read_many_answers_the_stored_documents_by_address_and_leaves_out_missing_ones(documents: Subject) -> None:
    documents.store.upsert_many(READINGS, [_reading("r1", value=1.0), _reading("r2"), _reading("r1", sensor="s2")])

    found = documents.store.read_many(READINGS, [("s1", "r1"), ("s2", "r1"), ("s1", "nope"), ("s3", "r2")])

    assert set(found) == {("s1", "r1"), ("s2", "r1")}  # the same id in two partitions is two documents
    assert _user_fields(found[("s1", "r1")]) == _reading("r1", value=1.0)
    assert found[("s2", "r1")]["sensor_id"] == "s2"
    assert isinstance(found[("s1", "r1")]["_etag"], str)
    assert documents.store.read_many(READINGS, []) == {}


def test_read_many_of_many_addresses_in_one_partition_and_across_partitions(documents: Subject) -> None:
    batch = [_reading(f"a{n:04d}") for n in range(1200)] + [_reading(f"b{n}", sensor=f"s{n}") for n in range(40)]
    documents.store.upsert_many(READINGS, batch)
    wanted = [("s1", f"a{n:04d}") for n in range(0, 1200, 2)] + [(f"s{n}", f"b{n}") for n in range(40)]

    found = documents.store.read_many(READINGS, [*wanted, ("s1", "b1"), ("s2", "a0001")])

    assert set(found) == set(wanted)
    assert all(found[key]["id"] == key[1] and found[key]["sensor_id"] == key[0] for key in wanted)


def test_insert_new_writes_what_is_new_and_answers_with_what_was_stored_unchanged(documents: Subject) -> None:
    documents.store.upsert_many(READINGS, [_reading("r1", value=1.0), _reading("r3", value=3.0)])

    found = documents.store.insert_new(
        READINGS, [_reading("r1", value=9.0), _reading("r2", value=2.0), _reading("r3", value=3.0)]
    )

    assert [(_user_fields(d)["id"], d["value"]) for d in found] == [("r1", 1.0), ("r3", 3.0)]  # in the order given
    assert all(isinstance(d["_etag"], str) for d in found)
    # _ts is when the document was written, in epoch seconds: the triggers judge a reading's age by it.
    written = documents.store.read(READINGS, "s1", "r2")
    assert written is not None and abs(written["_ts"] - time.time()) < 600
    stored = documents.store.read_many(READINGS, [("s1", "r1"), ("s1", "r2"), ("s1", "r3")])
    assert {key[1]: d["value"] for key, d in stored.items()} == {"r1": 1.0, "r2": 2.0, "r3": 3.0}
    assert documents.store.count(READINGS) == 3


def test_insert_new_of_a_large_batch_with_some_stored_writes_exactly_the_new_ones(documents: Subject) -> None:
    documents.store.upsert_many(
        READINGS, [_reading(f"r{n:04d}", sensor=f"s{n % 7}", value=-1.0) for n in range(0, 600, 3)]
    )
    batch = [_reading(f"r{n:04d}", sensor=f"s{n % 7}", value=float(n)) for n in range(600)]

    found = documents.store.insert_new(READINGS, batch)

    assert [d["id"] for d in found] == [f"r{n:04d}" for n in range(0, 600, 3)]
    assert {d["value"] for d in found} == {-1.0}
    assert documents.store.count(READINGS) == 600
    stored = documents.store.read_many(READINGS, [(f"s{n % 7}", f"r{n:04d}") for n in range(600)])
    assert all(stored[(f"s{n % 7}", f"r{n:04d}")]["value"] == (-1.0 if n % 3 == 0 else n) for n in range(600))


def test_insert_new_of_one_address_given_twice_writes_it_once(documents: Subject) -> None:
    found = documents.store.insert_new(READINGS, [_reading("r1", value=1.0), _reading("r1", value=2.0)])

    stored = documents.store.read(READINGS, "s1", "r1")
    assert stored is not None and stored["value"] in (1.0, 2.0)
    assert [d["value"] for d in found] == [stored["value"]]  # the other one is answered with what was stored
    assert documents.store.count(READINGS) == 1


def test_insert_new_refuses_a_batch_with_a_document_without_id_or_partition_key(documents: Subject) -> None:
    with pytest.raises(StorageError):
        documents.store.insert_new(READINGS, [_reading("good"), {"id": "no-sensor"}])
    with pytest.raises(StorageError):
        documents.store.insert_new(READINGS, [_reading("good"), {"sensor_id": "s1"}])
    assert documents.store.count(READINGS) == 0
    assert documents.store.insert_new(READINGS, []) == []


def test_two_writers_inserting_one_address_at_once_never_both_win(documents: Subject) -> None:
    for round_ in range(10):
        doc_id = f"race-{round_}"
        start = threading.Barrier(2)

        def insert(value: float, doc_id: str = doc_id, start: threading.Barrier = start) -> list[Document]:
            start.wait()
            found: list[Document] = documents.store.insert_new(READINGS, [_reading(doc_id, value=value)])
            return found

        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(insert, [1.0, 2.0]))

        stored = documents.store.read(READINGS, "s1", doc_id)
        assert stored is not None
        winners = [value for value, found in zip([1.0, 2.0], answers, strict=True) if not found]
        assert winners == [stored["value"]]  # exactly one wrote; the other was answered with its document
        (loser_answer,) = [found for found in answers if found]
        assert loser_answer[0]["value"] == stored["value"]


def test_insert_new_writes_a_change_and_a_found_document_writes_none(documents: Subject) -> None:
    documents.require("change_feed")
    documents.store.insert_new(READINGS, [_reading("r1", value=1.0)])
    after_first = documents.store.end_of_feed(READINGS)

    documents.store.insert_new(READINGS, [_reading("r1", value=5.0), _reading("r2")])

    assert [d["id"] for d in documents.store.read_changes(READINGS, after_first, 100).documents] == ["r2"]


def test_insert_new_takes_the_address_of_an_expired_document(documents: Subject) -> None:
    documents.require("ttl")
    documents.store.upsert_many(READINGS, [_reading("short", ttl=1, value=1.0)])
    time.sleep(1.1)

    assert documents.store.read_many(READINGS, [("s1", "short")]) == {}
    assert documents.store.insert_new(READINGS, [_reading("short", value=2.0)]) == []
    stored = documents.store.read(READINGS, "s1", "short")
    assert stored is not None and stored["value"] == 2.0
