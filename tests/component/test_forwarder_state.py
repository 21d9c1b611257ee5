"""The forwarder's state entity over real SQLite: read once per run, and saves that keep what another run saved
between that read and the save."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.microshare.api import PEOPLE_COUNTER
from shared.microshare.forwarder import Forwarder
from shared.microshare.hub_fanout import HubFanout
from shared.microshare.results import ForwardResult, HubTotals
from shared.microshare.watermark import WatermarkStore
from shared.storage.names import FORWARDER_TABLE
from shared.storage.ports import Entity
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.state import SqliteStateStore
from tests.component.microshare_rig import T0, day_of_data, microshare_rig


@pytest.fixture
def other(database: SqliteDatabase) -> Iterator[SqliteStateStore]:
    """Another instance's store: its own database handle on the same file."""
    second = SqliteDatabase(database.path)
    yield SqliteStateStore(second)
    second.close()


class CountingReads:
    """The real store, counting point reads of the forwarder's state."""

    def __init__(self, inner: SqliteStateStore) -> None:
        self.inner = inner
        self.reads = 0

    def get(self, table: str, partition_key: str, row_key: str) -> Entity | None:
        self.reads += table == FORWARDER_TABLE
        return self.inner.get(table, partition_key, row_key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def a_run(pages: int, sent: int, end: datetime) -> ForwardResult:
    return ForwardResult(PEOPLE_COUNTER, T0, end, None, pages=pages, hubs={"telemetry": HubTotals(sent=sent)})


def test_a_run_reads_its_state_once_even_when_it_forgets_old_days(database: SqliteDatabase) -> None:
    with microshare_rig(
        database, day_of_data(3, locations=("Building A",)), T0, MICROSHARE_DEDUP_RETENTION_HOURS="6"
    ) as rig:
        state = CountingReads(rig.state)
        fanout = HubFanout({"telemetry": rig.hub}, rig.state, clock=rig.clock)
        forwarder = Forwarder(rig.client(), fanout, state, rig.settings, clock=rig.clock)
        reads, forgotten = [], 0
        for _ in range(4 * 36):  # a day and a half of 15-minute runs
            rig.clock.now += timedelta(minutes=15)
            before = state.reads
            forgotten += forwarder.run(PEOPLE_COUNTER).forgotten_keys
            reads.append(state.reads - before)
    assert forgotten > 0
    assert set(reads) == {1}


def test_a_save_keeps_what_another_run_saved_since_this_run_read(
    database: SqliteDatabase, other: SqliteStateStore
) -> None:
    ours, theirs = WatermarkStore(SqliteStateStore(database)), WatermarkStore(other)
    read = ours.read(PEOPLE_COUNTER)
    newer = T0 + timedelta(hours=2)
    theirs.record_run(theirs.read(PEOPLE_COUNTER), a_run(2, 5, newer), newer, newer, "ok", {"2025-06-10"})

    ours.record_run(read, a_run(3, 7, T0 + timedelta(hours=1)), T0 + timedelta(hours=1), newer, "ok", {"2025-06-09"})

    saved = ours.read(PEOPLE_COUNTER)
    assert saved.watermark == newer  # never moved back by the run that saved last
    assert saved.dedup_days == {"2025-06-09", "2025-06-10"}
    assert saved.entity is not None
    assert (saved.entity.properties["pages_fetched"], saved.entity.properties["sent_telemetry"]) == (5, 12)


def test_dropping_days_keeps_days_another_run_listed_since_this_run_read(
    database: SqliteDatabase, other: SqliteStateStore
) -> None:
    ours, theirs = WatermarkStore(SqliteStateStore(database)), WatermarkStore(other)
    end = T0 + timedelta(hours=1)
    read = ours.record_run(ours.read(PEOPLE_COUNTER), a_run(1, 1, end), end, end, "ok", {"2025-06-08", "2025-06-09"})
    theirs.record_run(theirs.read(PEOPLE_COUNTER), a_run(1, 1, end), end, end, "ok", {"2025-06-10"})

    after = ours.drop_days(read, {"2025-06-08"})

    assert after.dedup_days == {"2025-06-09", "2025-06-10"}
    assert ours.read(PEOPLE_COUNTER).dedup_days == {"2025-06-09", "2025-06-10"}
