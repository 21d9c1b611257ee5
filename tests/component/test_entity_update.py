"""Read-modify-write with ETag retries over the real SQLite state store, with a second writer on its own
connection to the same file changing entities between a read and its write."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

import pytest

from shared.storage.entity_update import Change, EntityKey, KeptChanging, update_entities, update_entity
from shared.storage.ports import ConcurrencyConflict, Entity, StateStore, StorageError
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.state import SqliteStateStore

TABLE = "counters"
KEY: EntityKey = ("p", "total")
DEADLINE_SECONDS = 30


def add(amount: int) -> Change:
    def added(stored: Mapping[str, Any] | None) -> Mapping[str, Any]:
        return {"count": (0 if stored is None else int(stored["count"])) + amount}

    return added


def count(state: StateStore, key: EntityKey = KEY) -> int:
    entity = state.get(TABLE, *key)
    assert entity is not None
    return int(entity.properties["count"])


@pytest.fixture
def state(database: SqliteDatabase) -> SqliteStateStore:
    return SqliteStateStore(database)


@pytest.fixture
def other(database: SqliteDatabase) -> Iterator[SqliteStateStore]:
    """Another instance's store: its own database handle on the same file."""
    second = SqliteDatabase(database.path)
    yield SqliteStateStore(second)
    second.close()


class CountingReads:
    """The real store, counting point reads: what a cached or known entity saves."""

    def __init__(self, inner: SqliteStateStore) -> None:
        self.inner = inner
        self.reads: list[EntityKey] = []

    def get(self, table: str, partition_key: str, row_key: str) -> Entity | None:
        self.reads.append((partition_key, row_key))
        return self.inner.get(table, partition_key, row_key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class SecondWriter:
    """A thread with its own connection that adds to an entity when asked, and says when it has: so a write
    lands between a read and the write that depends on it, as a concurrent instance's would."""

    def __init__(self, store: SqliteStateStore, key: EntityKey = KEY) -> None:
        self._store = store
        self._key = key
        self._asked = threading.Semaphore(0)
        self._done = threading.Semaphore(0)
        self._stop = False
        self.writes = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._asked.acquire(timeout=DEADLINE_SECONDS) and not self._stop:
            update_entity(self._store, TABLE, self._key, add(100))
            self.writes += 1
            self._done.release()

    def write_now(self) -> None:
        """Have the other thread write, and wait until it has."""
        self._asked.release()
        assert self._done.acquire(timeout=DEADLINE_SECONDS), "the second writer did not answer in time"

    def close(self) -> None:
        self._stop = True
        self._asked.release()
        self._thread.join(timeout=DEADLINE_SECONDS)


def interrupted(change: Change, writer: SecondWriter, times: int) -> Change:
    """`change`, with the second writer writing after each of its first `times` applications (after the read,
    before the write)."""
    calls = 0

    def applied(stored: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        nonlocal calls
        calls += 1
        if calls <= times:
            writer.write_now()
        return change(stored)

    return applied


def test_an_absent_entity_is_inserted_and_a_present_one_replaced_on_its_etag(state: SqliteStateStore) -> None:
    inserted = update_entity(state, TABLE, KEY, add(1))
    updated = update_entity(state, TABLE, KEY, add(2))

    assert inserted is not None and updated is not None
    assert updated.etag != inserted.etag
    assert count(state) == 3
    assert state.get(TABLE, *KEY) == updated


def test_a_change_that_returns_none_writes_nothing(state: SqliteStateStore) -> None:
    assert update_entity(state, TABLE, KEY, lambda stored: None) is None
    assert state.get(TABLE, *KEY) is None

    written = update_entity(state, TABLE, KEY, add(1))
    left = update_entity(state, TABLE, KEY, lambda stored: None)

    assert left == written  # as stored: same etag, nothing written


def test_a_write_between_read_and_write_is_re_read_and_the_change_applied_again(
    state: SqliteStateStore, other: SqliteStateStore
) -> None:
    update_entity(state, TABLE, KEY, add(1))
    writer = SecondWriter(other)
    conflicts: list[Collection[EntityKey]] = []
    try:
        update_entities(state, TABLE, {KEY: interrupted(add(1), writer, times=2)}, on_conflict=conflicts.append)
    finally:
        writer.close()

    assert writer.writes == 2
    assert [set(keys) for keys in conflicts] == [{KEY}, {KEY}]
    assert count(state) == 1 + 100 + 100 + 1  # neither writer's addition is lost


def test_an_insert_that_loses_the_race_is_applied_to_the_winners_entity(
    state: SqliteStateStore, other: SqliteStateStore
) -> None:
    writer = SecondWriter(other)
    try:
        update_entity(state, TABLE, KEY, interrupted(add(1), writer, times=1))
    finally:
        writer.close()

    assert count(state) == 101


def test_after_the_last_round_the_error_says_which_entities_kept_changing(
    state: SqliteStateStore, other: SqliteStateStore
) -> None:
    update_entity(state, TABLE, KEY, add(1))
    writer = SecondWriter(other)
    try:
        with pytest.raises(KeptChanging) as exhausted:
            update_entity(state, TABLE, KEY, interrupted(add(1), writer, times=3), rounds=3)
    finally:
        writer.close()

    assert exhausted.value.keys == {KEY}
    assert "3 rounds" in str(exhausted.value)
    assert isinstance(exhausted.value, ConcurrencyConflict) and isinstance(exhausted.value, StorageError)
    assert count(state) == 1 + 300  # only the other writer's additions: ours never landed


def test_in_a_batch_only_the_entities_that_conflicted_are_read_and_applied_again(
    state: SqliteStateStore, other: SqliteStateStore
) -> None:
    keys: list[EntityKey] = [("p", f"k{n}") for n in range(4)]
    known = {key: update_entity(state, TABLE, key, add(1)) for key in keys}
    reads = CountingReads(state)
    applied: dict[EntityKey, int] = dict.fromkeys(keys, 0)

    def counted(key: EntityKey, change: Change) -> Change:
        def apply(stored: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
            applied[key] += 1
            return change(stored)

        return apply

    writer = SecondWriter(other, keys[2])
    try:
        changes = {key: counted(key, add(1)) for key in keys}
        changes[keys[2]] = counted(keys[2], interrupted(add(1), writer, times=1))
        written = update_entities(reads, TABLE, changes, known=known)
    finally:
        writer.close()

    assert reads.reads == [keys[2]]  # the known entities were not read; the one that changed was, once
    assert applied == {keys[0]: 1, keys[1]: 1, keys[2]: 2, keys[3]: 1}
    assert [count(state, key) for key in keys] == [2, 2, 102, 2]
    assert all(written[key] == state.get(TABLE, *key) for key in keys)


def test_a_stale_known_entity_costs_one_conflict_and_nothing_is_lost(
    state: SqliteStateStore, other: SqliteStateStore
) -> None:
    stale = update_entity(state, TABLE, KEY, add(1))
    update_entity(other, TABLE, KEY, add(100))

    update_entity(state, TABLE, KEY, add(1), known=stale)

    assert count(state) == 102


def test_two_instances_racing_on_the_same_entities_lose_no_update(
    state: SqliteStateStore, other: SqliteStateStore
) -> None:
    keys: list[EntityKey] = [("p", "a"), ("p", "b")]
    rounds, writers = 50, (state, other)
    start = threading.Barrier(len(writers))
    failures: list[BaseException] = []

    def run(store: SqliteStateStore) -> Callable[[], None]:
        def loop() -> None:
            try:
                start.wait(timeout=DEADLINE_SECONDS)
                for _ in range(rounds):
                    update_entities(store, TABLE, {key: add(1) for key in keys}, rounds=100)
            except BaseException as error:  # surfaced below: a thread's exception would otherwise vanish
                failures.append(error)

        return loop

    threads = [threading.Thread(target=run(store)) for store in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_SECONDS)

    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert [count(state, key) for key in keys] == [rounds * len(writers)] * len(keys)


def test_rounds_must_be_at_least_one(state: SqliteStateStore) -> None:
    with pytest.raises(ValueError):
        update_entity(state, TABLE, KEY, add(1), rounds=0)
