"""The state port's contract, run against every adapter (see conftest.py)."""

from __future__ import annotations

import pytest

from shared.storage.ports import ConcurrencyConflict, Entity, EntityWrite
from tests.contract.conftest import Subject


def test_state_get_and_upsert(state: Subject, table: str) -> None:
    assert state.store.get(table, "p", "r") is None

    first = state.store.upsert(table, "p", "r", {"n": 1})
    second = state.store.upsert(table, "p", "r", {"n": 2, "label": "two", "ok": True, "ratio": 0.5})

    stored = state.store.get(table, "p", "r")
    assert stored is not None
    assert stored.properties == {"n": 2, "label": "two", "ok": True, "ratio": 0.5}
    assert stored.etag == second.etag != first.etag
    assert state.store.get(f"{table}x", "p", "r") is None


def test_long_text_properties_round_trip(state: Subject, table: str) -> None:
    text = "[" + ",".join(f'[1714557600{n:03d},"sensor-0001-{n:06d}",{n}.25]' for n in range(300)) + "]"
    state.store.upsert(table, "p", "r", {"entries": text, "unit": "°C"})

    stored = state.store.get(table, "p", "r")

    assert stored is not None
    assert stored.properties["entries"] == text
    assert stored.properties["unit"] == "°C"


def test_write_without_etag_inserts_only_if_absent(state: Subject, table: str) -> None:
    created = state.store.write(table, EntityWrite("p", "r", {"owner": "first"}))

    with pytest.raises(ConcurrencyConflict):
        state.store.write(table, EntityWrite("p", "r", {"owner": "second"}))

    stored = state.store.get(table, "p", "r")
    assert stored is not None
    assert stored.properties == {"owner": "first"}
    assert stored.etag == created.etag


def test_write_with_etag_succeeds_only_on_the_current_etag(state: Subject, table: str) -> None:
    original = state.store.upsert(table, "p", "r", {"v": 1})
    updated = state.store.write(table, EntityWrite("p", "r", {"v": 2}, original.etag))
    assert updated.etag != original.etag

    with pytest.raises(ConcurrencyConflict):
        state.store.write(table, EntityWrite("p", "r", {"v": 3}, original.etag))  # stale: Table Storage's 412

    stored = state.store.get(table, "p", "r")
    assert stored is not None
    assert stored.properties == {"v": 2}
    assert stored.etag == updated.etag

    with pytest.raises(ConcurrencyConflict):
        state.store.write(table, EntityWrite("p", "absent", {"v": 1}, updated.etag))  # If-Match on a missing entity
    assert state.store.get(table, "p", "absent") is None


def test_write_many_reports_each_result_on_its_own(state: Subject, table: str) -> None:
    a = state.store.upsert(table, "p", "a", {"v": 1})
    state.store.upsert(table, "q", "b", {"v": 1})

    results = state.store.write_many(
        table,
        [
            EntityWrite("p", "a", {"v": 2}, a.etag),
            EntityWrite("q", "b", {"v": 2}, 'W/"stale"'),
            EntityWrite("r", "c", {"v": 2}),
        ],
    )

    assert isinstance(results[0], Entity)
    assert isinstance(results[1], ConcurrencyConflict)
    assert isinstance(results[2], Entity)
    by_key = {e.row_key: e.properties["v"] for e in state.store.query(table)}
    assert by_key == {"a": 2, "b": 1, "c": 2}
    stored_a = state.store.get(table, "p", "a")
    assert stored_a is not None
    assert stored_a.etag == results[0].etag


def test_write_many_of_many_series_keeps_the_order_of_its_results(state: Subject, table: str) -> None:
    changes = [EntityWrite(f"sensor-{n:03d}", "temperature", {"n": n}) for n in range(60)]

    results = state.store.write_many(table, changes)

    assert [r.partition_key for r in results if isinstance(r, Entity)] == [c.partition_key for c in changes]
    again = state.store.write_many(
        table,
        [
            EntityWrite(c.partition_key, c.row_key, {"n": -1}, r.etag if n % 2 else 'W/"stale"')
            for n, (c, r) in enumerate(zip(changes, results, strict=True))
            if isinstance(r, Entity)
        ],
    )
    assert [isinstance(r, ConcurrencyConflict) for r in again] == [n % 2 == 0 for n in range(60)]


def test_write_many_lets_one_of_two_writes_to_one_entity_win(state: Subject, table: str) -> None:
    a = state.store.upsert(table, "p", "a", {"v": 1})

    # Two updates from the same read, and two inserts of one new entity; the writes are independent, so
    # which of a pair lands first is the adapter's, but the other must find the entity changed.
    results = state.store.write_many(
        table,
        [
            EntityWrite("p", "a", {"v": 2}, a.etag),
            EntityWrite("p", "a", {"v": 3}, a.etag),
            EntityWrite("p", "new", {"v": 2}),
            EntityWrite("p", "new", {"v": 3}),
            EntityWrite("p", "b", {"v": 4}),
        ],
    )

    won = [r for r in results if isinstance(r, Entity)]
    assert [isinstance(r, Entity) for r in results[:4]].count(True) == 2
    assert isinstance(results[0], Entity) != isinstance(results[1], Entity)
    assert isinstance(results[2], Entity) != isinstance(results[3], Entity)
    stored = {e.row_key: (e.properties["v"], e.etag) for e in state.store.query(table, "p")}
    assert stored == {e.row_key: (e.properties["v"], e.etag) for e in won}
    assert stored["b"][0] == 4


def test_query_one_partition_or_the_whole_table_and_delete(state: Subject, table: str) -> None:
    state.store.upsert(table, "p2", "x", {"v": 1})
    state.store.upsert(table, "p1", "b", {"v": 2})
    state.store.upsert(table, "p1", "a", {"v": 3})
    state.store.upsert(f"{table}y", "p1", "z", {"v": 4})

    assert [(e.partition_key, e.row_key) for e in state.store.query(table, "p1")] == [("p1", "a"), ("p1", "b")]
    assert [(e.partition_key, e.row_key) for e in state.store.query(table)] == [("p1", "a"), ("p1", "b"), ("p2", "x")]
    assert state.store.query(table, "nobody") == []

    state.store.delete(table, "p1", "a")
    state.store.delete(table, "p1", "never-existed")  # deleting nothing is not an error

    assert state.store.get(table, "p1", "a") is None
    assert [(e.partition_key, e.row_key) for e in state.store.query(table)] == [("p1", "b"), ("p2", "x")]
    assert [e.row_key for e in state.store.query(f"{table}y")] == ["z"]
