"""The state port's contract, run against every adapter (see conftest.py)."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from shared.storage.ports import ConcurrencyConflict, Entity, EntityPage, EntityWrite, StateStore
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


def test_write_atomically_writes_all_or_nothing_in_one_partition(state: Subject, table: str) -> None:
    kept = state.store.upsert(table, "hub", "k1", {"v": 1})
    written = state.store.write_atomically(
        table, [EntityWrite("hub", "k1", {"v": 2}, kept.etag), EntityWrite("hub", "k2", {"v": 2})]
    )
    assert [e.row_key for e in written] == ["k1", "k2"]

    with pytest.raises(ConcurrencyConflict):  # k1's etag is stale now: nothing of this batch is written
        state.store.write_atomically(
            table, [EntityWrite("hub", "k3", {"v": 3}), EntityWrite("hub", "k1", {"v": 3}, kept.etag)]
        )
    assert state.store.get(table, "hub", "k3") is None
    assert {e.row_key: e.properties["v"] for e in state.store.query(table, "hub")} == {"k1": 2, "k2": 2}

    with pytest.raises(ValueError):
        state.store.write_atomically(table, [EntityWrite("a", "k", {}), EntityWrite("b", "k", {})])
    with pytest.raises(ValueError):
        state.store.write_atomically(table, [EntityWrite("hub", f"k{n}", {}) for n in range(101)])


def test_query_prefix_answers_one_row_key_range_of_one_partition(state: Subject, table: str) -> None:
    for row_key in ("s|a|1", "s|a|2", "s|b|1", "s}", "s{", "o|x", "s|"):
        state.store.upsert(table, "alerts", row_key, {"rk": row_key})
    state.store.upsert(table, "other", "s|a|9", {"rk": "elsewhere"})

    assert [e.row_key for e in state.store.query_prefix(table, "alerts", "s|a|")] == ["s|a|1", "s|a|2"]
    assert [e.row_key for e in state.store.query_prefix(table, "alerts", "s|")] == ["s|", "s|a|1", "s|a|2", "s|b|1"]
    assert state.store.query_prefix(table, "alerts", "s|c|") == []
    assert [e.properties["rk"] for e in state.store.query_prefix(table, "other", "s|")] == ["elsewhere"]
    assert all(e.etag for e in state.store.query_prefix(table, "alerts", "o|"))
    with pytest.raises(ValueError):
        state.store.query_prefix(table, "alerts", "")


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


# --- paged queries -------------------------------------------------------------------------------------------

Key = tuple[str, str]


def all_pages(store: StateStore, table: str, limit: int, entities: int) -> list[EntityPage]:
    """Every page of a table of `entities` entities, following the continuations to the end; fails once there
    are far more pages than the entities need (a store whose continuation starts over would page forever)."""
    pages = [store.query_page(table, limit)]
    while pages[-1].continuation is not None:
        assert len(pages) <= 3 * (entities // limit + 1), "paging did not end"
        pages.append(store.query_page(table, limit, pages[-1].continuation))
    return pages


def keys_of(pages: list[EntityPage]) -> list[Key]:
    return [(e.partition_key, e.row_key) for page in pages for e in page.entities]


def series_keys(
    sensors: int, metrics: tuple[str, ...] = ("co2", "humidity", "temperature", "pm25", "battery")
) -> list[Key]:
    return [(f"sensor-{n:04d}", metric) for n in range(sensors) for metric in metrics]


def test_paging_through_many_entities_returns_each_once_in_key_order(state: Subject, table: str) -> None:
    keys = series_keys(500)  # 2,500 series
    random.Random(7).shuffle(keys)  # written out of order: the store orders them
    written = state.store.write_many(table, [EntityWrite(pk, rk, {"sensor": pk, "metric": rk}) for pk, rk in keys])
    assert all(isinstance(w, Entity) for w in written)

    for limit in (1000, 7):
        pages = all_pages(state.store, table, limit, len(keys))
        assert keys_of(pages) == sorted(keys), f"limit {limit}"
        assert all(len(page.entities) <= limit for page in pages)
        assert all(e.properties == {"sensor": e.partition_key, "metric": e.row_key} for p in pages for e in p.entities)
    assert [(e.partition_key, e.row_key) for e in state.store.query(table)] == sorted(keys)


def test_paging_an_empty_table_gives_one_empty_page(state: Subject, table: str) -> None:
    state.store.upsert(f"{table}y", "p", "r", {"v": 1})  # another table's entity is not this table's

    page = state.store.query_page(table, 10)

    assert page.entities == []
    assert page.continuation is None


def edited(token: str, edit: Callable[[dict[str, Any]], Any]) -> str:
    """The token with its JSON body edited, as someone tampering with it would (callers treat it as opaque)."""
    body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return base64.urlsafe_b64encode(json.dumps(edit(body), separators=(",", ":")).encode()).decode().rstrip("=")


def test_a_continuation_is_refused_when_garbled_edited_or_from_another_table(state: Subject, table: str) -> None:
    for n in range(5):
        state.store.upsert(table, f"p{n}", "r", {"v": n})
        state.store.upsert(f"{table}y", f"p{n}", "r", {"v": n})
    ours = state.store.query_page(table, 2).continuation
    theirs = state.store.query_page(f"{table}y", 2).continuation
    assert ours is not None and theirs is not None

    def position_as(value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return lambda body: {k: (v if k == "t" else value) for k, v in body.items()}

    garbled = ["", "not a token", "!!!!", "ünïcode", ours[:-3], ours + "%", "e30", "bnVsbA"]  # e30: {}, bnVsbA: null
    tampered = [
        edited(ours, lambda body: {k: v for k, v in body.items() if k != "t"}),
        edited(ours, lambda body: {**body, "t": f"{table}y"}),
        edited(ours, lambda body: {**body, "extra": 1}),
        edited(ours, lambda body: list(body.values())),
        edited(ours, position_as(None)),
        edited(ours, position_as(["p3"])),
        edited(ours, position_as([None, None])),
        edited(ours, position_as([3, 4])),
        edited(ours, position_as("p3")),
    ]
    for token in [*garbled, *tampered, theirs]:
        with pytest.raises(ValueError):
            state.store.query_page(table, 2, token)

    assert [e.partition_key for e in state.store.query_page(table, 2, ours).entities] == ["p2", "p3"]
    assert edited(ours, lambda body: body) == ours  # the edits above changed only what they meant to


def test_entities_written_behind_the_cursor_are_not_returned_twice(state: Subject, table: str) -> None:
    keys = series_keys(20, ("humidity", "temperature"))
    state.store.write_many(table, [EntityWrite(pk, rk, {}) for pk, rk in keys])

    seen: list[Key] = []
    continuation: str | None = None
    for _ in range(100):  # a store whose continuation starts over would page forever
        page = state.store.query_page(table, 7, continuation)
        seen.extend((e.partition_key, e.row_key) for e in page.entities)
        continuation = page.continuation
        if continuation is None:
            break
        # Another writer adds a series that sorts before everything returned so far, and one beside the cursor.
        last_pk, _ = seen[-1]
        state.store.upsert(table, f"a-{len(seen):04d}", "temperature", {})
        state.store.upsert(table, last_pk, "aaa", {})
    else:
        pytest.fail("paging did not end")

    assert len(seen) == len(set(seen))
    assert [k for k in seen if k in set(keys)] == sorted(keys)
    assert seen == sorted(seen)


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_a_page_limit_outside_1_to_1000_is_refused(state: Subject, table: str, limit: int) -> None:
    state.store.upsert(table, "p", "r", {"v": 1})

    with pytest.raises(ValueError):
        state.store.query_page(table, limit)


def test_page_limits_of_1_and_1000_are_kept(state: Subject, table: str) -> None:
    state.store.write_many(table, [EntityWrite(f"p{n:04d}", "r", {}) for n in range(1001)])

    one = state.store.query_page(table, 1)
    most = state.store.query_page(table, 1000)

    assert [(e.partition_key, e.row_key) for e in one.entities] == [("p0000", "r")]
    assert one.continuation is not None
    assert 0 < len(most.entities) <= 1000
    assert most.continuation is not None
