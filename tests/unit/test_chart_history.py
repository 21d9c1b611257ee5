"""A series' bucketed history over a range: the points a chart draws, whether read at once or bit by bit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.dashboard.charts.render import ChartPoint
from shared.dashboard.range_history import BUCKETS, FULL_READ_SECONDS, RANGES, RangeHistory, chart_range, max_gap
from shared.readings.reading import format_timestamp

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Summaries:
    """A series' summaries as the documents port holds them, and every `since` it was asked for."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []
        self.asked: list[str] = []

    def add(self, at: datetime, low: float, high: float, avg: float) -> None:
        self.documents.append({"window_end": format_timestamp(at), "min": low, "max": high, "avg": avg})

    def read(self, since: str) -> list[dict[str, Any]]:
        self.asked.append(since)
        found = [d for d in self.documents if d["window_end"] >= since]
        return sorted(found, key=lambda d: d["window_end"], reverse=True)


def test_the_ranges_offered_and_an_unknown_one() -> None:
    assert list(RANGES) == ["10m", "1h", "1d", "7d"]
    assert chart_range("1h").span == timedelta(hours=1)
    assert chart_range("7d").span == timedelta(days=7)
    with pytest.raises(ValueError, match="range must be one of 10m, 1h, 1d, 7d"):
        chart_range("2h")


def test_a_day_of_summaries_every_five_seconds_becomes_at_most_one_point_per_bucket() -> None:
    summaries = Summaries()
    day = chart_range("1d")
    count = 86400 // 5
    for n in range(count):
        value = 20.0 + (n % 100) / 10
        summaries.add(T0 + timedelta(seconds=5 * n), value - 1, value + 1, value)
    summaries.add(T0 + timedelta(seconds=5 * 1000 + 1), -5.0, 60.0, 20.0)  # one extreme summary in the middle
    newest = T0 + timedelta(seconds=5 * (count - 1))

    points = RangeHistory(day, clock=lambda: 0.0).update(newest, summaries.read)

    assert BUCKETS - 1 <= len(points) <= BUCKETS + 1
    assert points[-1].time == newest  # the last point is the latest summary, not a bucket's edge
    assert min(p.min for p in points) == -5.0  # no extreme is averaged away
    assert max(p.max for p in points) == 60.0
    assert all(newest - day.span <= p.time <= newest for p in points)
    assert [p.time for p in points] == sorted(p.time for p in points)


def test_only_summaries_inside_the_range_are_drawn() -> None:
    summaries = Summaries()
    for minute in range(0, 30):
        summaries.add(T0 + timedelta(minutes=minute), 10.0, 20.0, 15.0)
    newest = T0 + timedelta(minutes=29)

    points = RangeHistory(chart_range("10m"), clock=lambda: 0.0).update(newest, summaries.read)

    assert [p.time for p in points] == [T0 + timedelta(minutes=m) for m in range(19, 30)]
    assert summaries.asked == [format_timestamp(newest - timedelta(minutes=10))]  # on a bucket's edge here


def test_a_second_update_reads_only_from_the_open_bucket() -> None:
    summaries = Summaries()
    hour = chart_range("1h")
    for second in range(0, 3600, 5):
        summaries.add(T0 + timedelta(seconds=second), 1.0, 3.0, 2.0)
    history = RangeHistory(hour, clock=lambda: 0.0)
    history.update(T0 + timedelta(seconds=3595), summaries.read)
    summaries.add(T0 + timedelta(seconds=3600), 0.0, 9.0, 4.0)

    points = history.update(T0 + timedelta(seconds=3600), summaries.read)

    assert hour.bucket_ms == 15_000
    assert summaries.asked[1] == format_timestamp(T0 + timedelta(seconds=3585))  # the bucket 3595 s fell in
    assert points[-1] == ChartPoint(T0 + timedelta(seconds=3600), 0.0, 9.0, 4.0)  # a bucket of its own
    assert points[-2] == ChartPoint(T0 + timedelta(seconds=3595), 1.0, 3.0, 2.0)


def test_the_whole_range_is_read_again_after_a_while() -> None:
    summaries = Summaries()
    now = [0.0]
    for second in range(0, 600, 5):
        summaries.add(T0 + timedelta(seconds=second), 1.0, 3.0, 2.0)
    history = RangeHistory(chart_range("10m"), clock=lambda: now[0])
    newest = T0 + timedelta(seconds=595)
    history.update(newest, summaries.read)
    summaries.documents.pop(0)  # expired, say
    now[0] = FULL_READ_SECONDS

    history.update(newest, summaries.read)

    assert summaries.asked[-1] == format_timestamp(newest - timedelta(minutes=10))


def test_the_gap_that_breaks_a_line_follows_the_series_cadence() -> None:
    hour = chart_range("1h")
    every_5s = [ChartPoint(T0 + timedelta(seconds=5 * n), 1, 2, 3) for n in range(100)]
    every_5min = [ChartPoint(T0 + timedelta(minutes=5 * n), 1, 2, 3) for n in range(12)]

    assert max_gap(every_5s, hour) == timedelta(milliseconds=3 * hour.bucket_ms)
    assert max_gap(every_5min, hour) == timedelta(minutes=15)
    assert max_gap([], hour) == timedelta(milliseconds=3 * hour.bucket_ms)


_steps = st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=120)
_values = st.floats(min_value=-50, max_value=150, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    range_name=st.sampled_from(list(RANGES)),
    steps=_steps,
    values=st.lists(_values, min_size=120, max_size=120),
    cuts=st.lists(st.integers(min_value=1, max_value=119), max_size=6),
)
def test_updating_bit_by_bit_draws_what_one_read_of_everything_draws(
    range_name: str, steps: list[int], values: list[float], cuts: list[int]
) -> None:
    """Summaries arrive in batches, window_end never going back (ties included); after each batch the kept
    history must equal a fresh history that reads everything at once."""
    chosen = chart_range(range_name)
    scale = chosen.span.total_seconds() / 600  # the steps in seconds of the 10-minute range, stretched
    times: list[datetime] = []
    at = T0
    for step in steps:
        at += timedelta(seconds=step * scale)
        times.append(at)
    summaries = Summaries()
    kept = RangeHistory(chosen, clock=lambda: 0.0)
    for n, moment in enumerate(times):
        v = values[n % len(values)]
        summaries.add(moment, v - 1, v + 1, v)
        if n in cuts or n == len(times) - 1:
            step_by_step = kept.update(moment, summaries.read)
            at_once = RangeHistory(chosen, clock=lambda: 0.0).update(moment, summaries.read)
            assert step_by_step == at_once
