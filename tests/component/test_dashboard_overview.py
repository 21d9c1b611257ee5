"""The dashboard's read side on the embedded store: the header's totals from window state (series, stale series,
readings per minute over the last minute, how far behind the series are; a replayed batch adds no readings), and
charts rendered once however many viewers ask at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.dashboard.reader import Chart, DashboardReader
from shared.readings.summariser import Summariser
from shared.storage.names import PARTITION_KEY_PATHS
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.state import SqliteStateStore
from tests.waiting import wait_for

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def readings(sensor_id: str, first: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{sensor_id}-{n}",
            "sensor_id": sensor_id,
            "metric": "temperature",
            "value": 20.0 + n,
            "unit": "°C",
            "timestamp": (T0 + timedelta(seconds=n)).isoformat(),
        }
        for n in range(first, first + count)
    ]


def test_the_header_counts_series_readings_per_minute_and_lag(database: SqliteDatabase) -> None:
    documents, state = SqliteDocumentStore(database, PARTITION_KEY_PATHS), SqliteStateStore(database)
    summariser = Summariser(documents, state, window_size=5)
    clock = Clock()
    reader = DashboardReader(documents, state, clock=clock)

    empty = reader.overview(T0)
    assert empty["series"] == 0 and empty["readings_total"] == 0
    assert empty["window_end"] == {"median": None, "oldest": None}

    summariser.apply(readings("a", 0, 30) + readings("b", 0, 10), source="test")
    clock.now += 1.0
    first = reader.overview(T0 + timedelta(seconds=40))
    assert first["series"] == 2
    assert first["readings_total"] == 40
    assert first["readings_per_minute"] is None  # one second after the first read: too soon for a rate
    # a's newest reading is at +29 s, b's at +9 s (the page shows now minus the median as the lag).
    assert first["window_end"] == {"median": "2026-01-05T12:00:09.000Z", "oldest": "2026-01-05T12:00:09.000Z"}
    assert first == reader.overview(T0 + timedelta(seconds=41))  # no clock reading in it: same data, same answer

    clock.now += 30.0
    summariser.apply(readings("a", 30, 15), source="test")
    summariser.apply(readings("a", 30, 15), source="test")  # redelivered: nothing new
    later = reader.overview(T0 + timedelta(seconds=45))
    assert later["readings_total"] == 55
    assert later["readings_per_minute"] == 106  # 55 readings in the 31 s since the first (empty) read
    assert later["window_end"] == {"median": "2026-01-05T12:00:09.000Z", "oldest": "2026-01-05T12:00:09.000Z"}

    clock.now += 61.0
    quiet = reader.overview(T0 + timedelta(seconds=45))
    assert quiet["readings_per_minute"] == 0  # the last minute saw nothing
    assert quiet["stale"] == 1  # b (a reading a second) silent for 36 s; a heard from 1 s ago


def test_a_restarted_summariser_continues_the_count_from_the_stored_state(database: SqliteDatabase) -> None:
    documents, state = SqliteDocumentStore(database, PARTITION_KEY_PATHS), SqliteStateStore(database)
    Summariser(documents, state, window_size=5).apply(readings("a", 0, 8), source="test")
    restarted = Summariser(documents, state, window_size=5)
    restarted.apply(readings("a", 0, 8), source="test")  # the batch again after a restart: nothing new
    restarted.apply(readings("a", 8, 4), source="test")
    assert DashboardReader(documents, state).overview(T0)["readings_total"] == 12


def test_viewers_asking_for_the_same_new_chart_at_once_share_one_render(database: SqliteDatabase) -> None:
    documents, state = SqliteDocumentStore(database, PARTITION_KEY_PATHS), SqliteStateStore(database)
    Summariser(documents, state, window_size=5).apply(readings("a", 0, 6), source="test")
    viewers = 12
    asked: list[int] = []
    renders: list[int] = []

    def slow_render(points: object, *, title: str, unit: str, scale: float, size: str) -> bytes:
        renders.append(1)
        # The render lasts until every viewer has asked for the chart, so they all ask while it runs.
        wait_for(lambda: len(asked) == viewers, 60, "every viewer to ask for the chart")
        return b"\\x89PNG fake " + title.encode()

    def viewer(_: int) -> Chart:
        asked.append(1)
        return reader.chart("a", "temperature", 1)

    reader = DashboardReader(documents, state, render=slow_render)
    with ThreadPoolExecutor(max_workers=viewers) as pool:
        charts = list(pool.map(viewer, range(viewers)))
    assert len(renders) == 1
    assert {chart.etag for chart in charts} == {charts[0].etag}
    assert all(chart.png == charts[0].png for chart in charts)


def test_a_failed_render_lets_the_next_viewer_try_again(database: SqliteDatabase) -> None:
    documents, state = SqliteDocumentStore(database, PARTITION_KEY_PATHS), SqliteStateStore(database)
    Summariser(documents, state, window_size=5).apply(readings("a", 0, 6), source="test")
    attempts: list[int] = []

    def flaky_render(points: object, *, title: str, unit: str, scale: float, size: str) -> bytes:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("renderer crashed")
        return b"\\x89PNG ok"

    reader = DashboardReader(documents, state, render=flaky_render)
    with pytest.raises(RuntimeError):
        reader.chart("a", "temperature", 1)
    assert reader.chart("a", "temperature", 1).png == b"\\x89PNG ok"
