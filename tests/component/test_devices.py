"""The device registry over real SQLite state: first and last seen, delivery counts, concurrent writers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.intake.devices import DEVICE_PARTITION, DeviceRegistry, Sighting, device_key
from shared.storage.names import DEVICES_TABLE
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.state import SqliteStateStore

T0 = datetime(2025, 6, 9, 10, 0, tzinfo=UTC)
NOW = datetime(2025, 6, 9, 12, 0, tzinfo=UTC)


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def registry(database: SqliteDatabase) -> DeviceRegistry:
    """A fresh instance, as another host instance would have: its own empty cache."""
    return DeviceRegistry(SqliteStateStore(database), clock=lambda: NOW)


def devices(database: SqliteDatabase) -> dict[str, dict[str, object]]:
    return {d.device_id: d.to_document() for d in registry(database).list()}


def test_first_seen_last_seen_and_count_accumulate_across_batches(database: SqliteDatabase) -> None:
    registry_ = registry(database)

    changed = registry_.record([Sighting("thermo-1", "iothub", at(0)), Sighting("thermo-1", "iothub", at(1))])
    registry_.record([Sighting("thermo-1", "iothub", at(5)), Sighting("pc-0001", "microshare", at(3))])
    registry(database).record([Sighting("thermo-1", "iothub", at(9))])  # after a restart: state read back

    assert changed == 1
    assert devices(database) == {
        "thermo-1": {
            "device_id": "thermo-1",
            "source": "iothub",
            "first_seen": "2025-06-09T10:00:00.000Z",
            "last_seen": "2025-06-09T10:09:00.000Z",
            "count": 4,
        },
        "pc-0001": {
            "device_id": "pc-0001",
            "source": "microshare",
            "first_seen": "2025-06-09T10:03:00.000Z",
            "last_seen": "2025-06-09T10:03:00.000Z",
            "count": 1,
        },
    }


def test_out_of_order_sightings_move_first_seen_back_and_never_last_seen(database: SqliteDatabase) -> None:
    registry_ = registry(database)
    registry_.record([Sighting("pc-0001", "microshare", at(10))])

    registry_.record([Sighting("pc-0001", "iothub", at(2)), Sighting("pc-0001", "iothub", at(7))])  # late arrivals

    device = devices(database)["pc-0001"]
    assert (device["first_seen"], device["last_seen"], device["count"]) == (
        "2025-06-09T10:02:00.000Z",
        "2025-06-09T10:10:00.000Z",
        3,
    )
    assert device["source"] == "microshare"  # the source of the newest sighting

    registry_.record([Sighting("pc-0001", "iothub", at(11))])
    assert devices(database)["pc-0001"]["source"] == "iothub"


def test_a_redelivered_batch_counts_again(database: SqliteDatabase) -> None:
    batch = [Sighting("thermo-1", "iothub", at(0))]
    registry(database).record(batch)
    registry(database).record(batch)

    assert devices(database)["thermo-1"]["count"] == 2
    assert devices(database)["thermo-1"]["last_seen"] == "2025-06-09T10:00:00.000Z"


def test_devices_are_listed_newest_first(database: SqliteDatabase) -> None:
    registry(database).record(
        [Sighting("old", "iothub", at(1)), Sighting("newest", "iothub", at(30)), Sighting("middle", "iothub", at(9))]
    )

    assert [d.device_id for d in registry(database).list()] == ["newest", "middle", "old"]


def test_a_stale_cache_re_reads_and_re_merges_on_conflict(database: SqliteDatabase) -> None:
    a, b = registry(database), registry(database)
    a.record([Sighting("thermo-1", "iothub", at(5))])  # a caches the etag
    b.record([Sighting("thermo-1", "iothub", at(1)), Sighting("thermo-1", "iothub", at(8))])  # a's etag is stale

    a.record([Sighting("thermo-1", "iothub", at(6))])

    device = devices(database)["thermo-1"]
    assert (device["first_seen"], device["last_seen"], device["count"]) == (
        "2025-06-09T10:01:00.000Z",
        "2025-06-09T10:08:00.000Z",
        4,
    )


def test_concurrent_writers_converge_to_the_exact_total(database: SqliteDatabase) -> None:
    # Two host instances: separate database handles on one file, separate caches, racing on the same devices.
    other = SqliteDatabase(database.path)
    batches, per_batch = 60, 3
    writers = [DeviceRegistry(SqliteStateStore(db), clock=lambda: NOW) for db in (database, other)]
    start = threading.Barrier(len(writers))
    failures: list[BaseException] = []

    def run(index: int, registry_: DeviceRegistry) -> None:
        try:
            start.wait()
            for n in range(batches):
                seen = at(n * len(writers) + index)
                registry_.record([Sighting(f"dev-{k}", "iothub", seen) for k in range(per_batch)] * 2)
        except BaseException as error:  # surfaced below: a thread's exception would otherwise vanish
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(writers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        other.close()

    assert failures == []
    listed = devices(database)
    assert sorted(listed) == ["dev-0", "dev-1", "dev-2"]
    for device in listed.values():
        assert device["count"] == batches * len(writers) * 2
        assert device["first_seen"] == "2025-06-09T10:00:00.000Z"
        assert device["last_seen"] == "2025-06-09T11:59:00.000Z"  # minute 119: writer 1's last batch


@pytest.mark.parametrize(
    "device_id",
    [
        "a/b",
        "back\\slash",
        "hash#tag",
        "what?",
        "tab\there",
        "nul\x00byte",
        "del\x7f",
        "c1\x85control",
        "percent%20",
        "it's",
        "Gerät-Küche",
        " leading space",
        "x" * 2000,
        "~" + "0" * 64,  # looks like a digest key
    ],
)
def test_odd_device_ids_get_safe_keys_and_keep_their_real_id(database: SqliteDatabase, device_id: str) -> None:
    registry_ = registry(database)

    registry_.record([Sighting(device_id, "iothub", at(0))])
    registry_.record([Sighting(device_id, "iothub", at(1))])

    key = device_key(device_id)
    assert key.startswith("~") and len(key) == 65
    assert not any(c in key for c in "/\\#?") and key.isprintable()
    entity = SqliteStateStore(database).get(DEVICES_TABLE, DEVICE_PARTITION, key)
    assert entity is not None and entity.properties["device_id"] == device_id
    assert [(d.device_id, d.count) for d in registry_.list()] == [(device_id, 2)]


def test_plain_ids_are_their_own_keys_and_distinct_ids_never_share_one() -> None:
    plain = ["pc-0001", "thermo.7", "gw:1", "user@site", "a=b+c"]
    others = ["pc 0001", "pc/0001", "PC-0001", "~pc-0001", "x" * 300, "x" * 301]

    assert [device_key(d) for d in plain] == plain
    keys = [device_key(d) for d in plain + others]
    assert len(set(keys)) == len(keys)
