"""Backfill windows go through the timers' own fetch, dedup and delivery: overlaps send nothing twice."""

from __future__ import annotations

from datetime import timedelta

from shared.microshare.api import PEOPLE_COUNTER
from shared.microshare.backfill import day_windows
from shared.storage.sqlite.database import SqliteDatabase
from tests.component.microshare_rig import T0, day_of_data, microshare_rig

WEEK_END = T0 + timedelta(days=7)
LOCATIONS = ("Building A", "Building B", "Building C")


def test_a_week_of_location_day_windows_forwards_every_record_once(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(7, LOCATIONS), WEEK_END) as rig:
        forwarder = rig.forwarder()
        days: set[str] = set()
        newest = None
        for location in forwarder.locations():
            for start, end in day_windows(T0, WEEK_END):
                result = forwarder.forward_window(PEOPLE_COUNTER, location, start, end)
                days |= result.dedup_days
                if result.watermark_after is not None:
                    newest = max(newest or result.watermark_after, result.watermark_after)
        forwarder.finish_backfill(PEOPLE_COUNTER, T0, WEEK_END, newest, days)
        per_key = rig.records_per_key()
        watermark = forwarder.watermark(PEOPLE_COUNTER)
        rig.clock.now = WEEK_END + timedelta(minutes=15)
        after = forwarder.run(PEOPLE_COUNTER)  # the timer goes on from the backfill's watermark
    assert len(per_key) == 3 * 2 * 96 * 7 and set(per_key.values()) == {1}
    assert watermark == WEEK_END - timedelta(minutes=15)
    assert after.hubs["telemetry"].sent == 0  # nothing new yet, and the overlap is not sent again
    assert after.hubs["telemetry"].skipped == 5 * 3 * 2  # 22:45 to 23:45, 6 counters


def test_a_window_overlapping_what_the_timer_sent_forwards_nothing_twice(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(2, LOCATIONS), T0 + timedelta(days=1)) as rig:
        forwarder = rig.forwarder()
        forwarder.run(PEOPLE_COUNTER)  # the timer sends the first day
        window = forwarder.forward_window(
            PEOPLE_COUNTER, "Building A", T0 + timedelta(hours=12), T0 + timedelta(days=2)
        )
        per_key = rig.records_per_key()
    assert window.hubs["telemetry"].skipped == 2 * 48
    assert window.hubs["telemetry"].sent == 2 * 96
    assert set(per_key.values()) == {1}


def test_finishing_a_backfill_never_moves_the_watermark_back(database: SqliteDatabase) -> None:
    with microshare_rig(database, day_of_data(2, LOCATIONS), T0 + timedelta(days=2)) as rig:
        forwarder = rig.forwarder()
        forwarder.run(PEOPLE_COUNTER)
        before = forwarder.watermark(PEOPLE_COUNTER)
        forwarder.finish_backfill(PEOPLE_COUNTER, T0, T0 + timedelta(days=1), T0 + timedelta(hours=23), {"2025-06-09"})
        assert forwarder.watermark(PEOPLE_COUNTER) == before


def test_a_timer_facing_a_long_gap_hands_it_to_a_backfill_of_at_most_the_maximum_span(database: SqliteDatabase) -> None:
    with microshare_rig(
        database,
        day_of_data(1, LOCATIONS),
        T0 + timedelta(hours=2),
        MICROSHARE_BACKFILL_AFTER_HOURS="6",
        MICROSHARE_BACKFILL_MAX_DAYS="3",
        MICROSHARE_OVERLAP_MINUTES="60",
    ) as rig:
        forwarder = rig.forwarder()
        assert forwarder.backfill_due(PEOPLE_COUNTER) is None  # no watermark yet: the first run fetches inline
        forwarder.run(PEOPLE_COUNTER)
        watermark = forwarder.watermark(PEOPLE_COUNTER)
        assert watermark is not None
        rig.clock.now = watermark + timedelta(hours=5)
        assert forwarder.backfill_due(PEOPLE_COUNTER) is None
        rig.clock.now = watermark + timedelta(days=10)
        due = forwarder.backfill_due(PEOPLE_COUNTER)
    assert due == (watermark - timedelta(hours=1), watermark - timedelta(hours=1) + timedelta(days=3))
