"""A series' summaries over a time range (10 minutes, an hour, a day, a week), bucketed down to what a chart can show.

A day at one summary every few seconds is tens of thousands of documents per series; a 640-pixel chart shows a
few hundred points. So each range has BUCKETS buckets of equal width, each drawn as one point: the lowest
min, the highest max and the mean avg of the summaries whose window ends in it, at the newest of their times.

`RangeHistory` keeps one series' buckets between renders and reads only what is new: a series' window_end
never goes back (each summary ends at the newest reading its window holds, and a window keeps the newest
readings), so every summary not yet seen ends at or after the newest one seen. It re-reads the still-open
bucket from its start, and the whole range every FULL_READ_SECONDS in case documents expired or were removed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.dashboard.charts.render import ChartPoint
from shared.readings.reading import epoch_ms, format_epoch_ms, from_epoch_ms

BUCKETS = 240
FULL_READ_SECONDS = 900.0
MAX_RANGE_DOCUMENTS = 200_000  # a week at one summary every 5 s is 120,960
CHART_FIELDS = ("window_end", "min", "max", "avg")


@dataclass(frozen=True, slots=True)
class ChartRange:
    name: str  # as in the query string: ?range=1h
    label: str  # as on the page
    span: timedelta

    @property
    def bucket_ms(self) -> int:
        return int(self.span.total_seconds() * 1000) // BUCKETS


# How often each range's chart may change is a setting (DashboardSettings.chart_refresh_seconds): wider ranges
# change less per new summary, one new summary moving a day chart's last point by less than a pixel.
RANGES: dict[str, ChartRange] = {
    r.name: r
    for r in (
        ChartRange("10m", "10 min", timedelta(minutes=10)),
        ChartRange("1h", "1 hour", timedelta(hours=1)),
        ChartRange("1d", "1 day", timedelta(days=1)),
        ChartRange("7d", "7 days", timedelta(days=7)),
    )
}
CARD_RANGES = ("10m", "1h", "1d")  # the fleet page's choice; the series page offers every range
DEFAULT_RANGE = "10m"


def chart_range(name: str) -> ChartRange:
    found = RANGES.get(name)
    if found is None:
        raise ValueError(f"range must be one of {', '.join(RANGES)}")
    return found


@dataclass(slots=True)
class _Bucket:
    last_ms: int
    low: float
    high: float
    avg_sum: float
    count: int

    def add(self, at_ms: int, low: float, high: float, avg: float) -> None:
        self.last_ms = max(self.last_ms, at_ms)
        self.low = min(self.low, low)
        self.high = max(self.high, high)
        self.avg_sum += avg
        self.count += 1


def _parsed(document: Mapping[str, Any]) -> tuple[int, float, float, float] | None:
    """(window_end in epoch ms, min, max, avg), or None for a document a chart cannot draw."""
    try:
        end = datetime.fromisoformat(str(document["window_end"]))
        low, high, avg = float(document["min"]), float(document["max"]), float(document["avg"])
    except (KeyError, TypeError, ValueError):
        return None
    if end.tzinfo is None:
        return None
    return epoch_ms(end), low, high, avg


Reader = Callable[[str], list[dict[str, Any]]]  # since (a window_end) -> documents with CHART_FIELDS


class RangeHistory:
    """One series' buckets over one range, brought up to date by `update`. Safe to share between threads."""

    def __init__(self, chart_range: ChartRange, clock: Callable[[], float]) -> None:
        self._range = chart_range
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._newest_ms: int | None = None
        self._full_read_at: float | None = None
        self._lock = threading.Lock()

    def update(self, newest: datetime, read: Reader) -> list[ChartPoint]:
        """The chart's points for the range ending at `newest` (the series' latest window_end), reading
        through `read` only the summaries that may have changed since the last update."""
        width = self._range.bucket_ms
        end_ms = epoch_ms(newest)
        start_ms = end_ms - int(self._range.span.total_seconds() * 1000)
        with self._lock:
            now = self._clock()
            newest_seen = self._newest_ms
            if (
                newest_seen is None
                or self._full_read_at is None
                or now - self._full_read_at >= FULL_READ_SECONDS
                or newest_seen < start_ms
            ):
                self._buckets.clear()
                from_ms = start_ms // width * width  # whole buckets, as the kept ones are
                self._full_read_at = now
            else:
                from_ms = newest_seen // width * width  # the still-open bucket, from its start
                for index in [i for i in self._buckets if i >= from_ms // width]:
                    del self._buckets[index]
            self._add(read(format_epoch_ms(from_ms)))
            first = start_ms // width
            for index in [i for i in self._buckets if i < first]:
                del self._buckets[index]
            return [
                ChartPoint(from_epoch_ms(b.last_ms), b.low, b.high, b.avg_sum / b.count)
                for _, b in sorted(self._buckets.items())
                if b.last_ms >= start_ms
            ]

    def _add(self, documents: Iterable[Mapping[str, Any]]) -> None:
        width = self._range.bucket_ms
        for document in documents:
            parsed = _parsed(document)
            if parsed is None:
                continue
            at_ms, low, high, avg = parsed
            index = at_ms // width
            bucket = self._buckets.get(index)
            if bucket is None:
                self._buckets[index] = _Bucket(at_ms, low, high, avg, 1)
            else:
                bucket.add(at_ms, low, high, avg)
            if self._newest_ms is None or at_ms > self._newest_ms:
                self._newest_ms = at_ms


def max_gap(points: list[ChartPoint], chart_range: ChartRange) -> timedelta:
    """How far apart two points may be and still be joined by a line: three buckets, or three of the series'
    usual steps for one that reports less often than a bucket (a device posting every 5 minutes)."""
    steps = sorted(b.time - a.time for a, b in zip(points, points[1:], strict=False))
    usual = steps[len(steps) // 2] if steps else timedelta(0)
    return max(timedelta(milliseconds=3 * chart_range.bucket_ms), 3 * usual)
