"""A crash (SIGKILL) mid-stream loses nothing: after a restart the simulator continues its sensors, the
summariser resumes from its lease, windows carry on, and no summary is duplicated."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

from shared.readings.reading import parse_timestamp
from shared.readings.window import SlidingWindow, summary_id
from shared.storage.names import PARTITION_KEY_PATHS, READINGS, SUMMARIES, WINDOWS_TABLE
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.state import SqliteStateStore
from tests.e2e.devhost_process import DevhostProcess
from tests.true_windows import true_window
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

WINDOW = 3
SENSORS = ["sensor-01", "sensor-02"]
SETTINGS = {"SENSOR_COUNT": str(len(SENSORS)), "WINDOW_SIZE": str(WINDOW), "SIMULATOR_SCHEDULE": "*/1 * * * * *"}


def _all(documents: SqliteDocumentStore, container: str, sensor: str) -> list[dict[str, Any]]:
    return documents.latest(container, sensor, "timestamp" if container == READINGS else "window_end", 100_000)


def _windows_full(host: DevhostProcess) -> bool:
    series = host.get_json("/api/sensors")["items"]
    return {s["sensor_id"] for s in series if s["latest"]["count"] == WINDOW} == set(SENSORS)


def _newest_readings(documents: SqliteDocumentStore) -> dict[str, str]:
    return {
        sensor: newest[0]["id"] for sensor in SENSORS if (newest := documents.latest(READINGS, sensor, "timestamp", 1))
    }


def test_sigkill_mid_stream_loses_no_reading_and_duplicates_no_summary(tmp_path: Path) -> None:
    first = DevhostProcess(tmp_path, SETTINGS)
    watched = SqliteDatabase.in_directory(tmp_path)
    try:
        wait_for(lambda: _windows_full(first), 90, "full windows for every sensor")
        # Kill while the stream goes on: once the simulator has written readings after the windows filled up.
        stream = SqliteDocumentStore(watched, PARTITION_KEY_PATHS)
        full_at = _newest_readings(stream)
        wait_for(lambda: _newest_readings(stream) != full_at, 60, "the simulator's next readings")
    finally:
        first.kill()  # SIGKILL: no clean shutdown, no final checkpoint
        watched.close()
    restarted_at = time.time()

    second = DevhostProcess(tmp_path, SETTINGS)
    try:
        summaries = SqliteDocumentStore(SqliteDatabase.in_directory(tmp_path), PARTITION_KEY_PATHS)

        def resumed() -> bool:
            for sensor in SENSORS:
                after = [
                    s
                    for s in _all(summaries, SUMMARIES, sensor)
                    if parse_timestamp(s["computed_at"]).timestamp() > restarted_at
                ]
                if len(after) < 2:
                    return False
            return True

        wait_for(resumed, 60, "new summaries after the restart")
        assert second.stop() == 0
    finally:
        second.kill()

    # A third start with the simulator off drains whatever the second run left in the change feed.
    drain = DevhostProcess(tmp_path, {**SETTINGS, "AzureWebJobs.simulate_sensors.Disabled": "true"})
    database = SqliteDatabase.in_directory(tmp_path)
    documents = SqliteDocumentStore(database, PARTITION_KEY_PATHS)
    state = SqliteStateStore(database)
    try:

        def drained() -> bool:
            for sensor in SENSORS:
                entity = state.get(WINDOWS_TABLE, sensor, "temperature")
                newest = _all(documents, READINGS, sensor)[0]["id"]
                if (
                    entity is None
                    or SlidingWindow.from_json(WINDOW, entity.properties["entries"]).entries[-1][1] != newest
                ):
                    return False
            return True

        wait_for(drained, 60, "the summariser to catch up with every reading")
        assert drain.stop() == 0
    finally:
        drain.kill()

    for sensor in SENSORS:
        readings = _all(documents, READINGS, sensor)
        stamps = sorted(parse_timestamp(r["timestamp"]).timestamp() for r in readings)
        # The simulator emits every 1-10 s: a longer gap would be readings lost across the crash.
        assert max(b - a for a, b in zip(stamps, stamps[1:], strict=False)) <= 10.0
        assert any(t > restarted_at for t in stamps) and any(t < restarted_at for t in stamps)

        history = _all(documents, SUMMARIES, sensor)
        newest_ids = [s["newest_reading_id"] for s in history]
        assert len(newest_ids) == len(set(newest_ids)), "two summaries for the same window"
        for summary in history:
            assert summary["id"] == summary_id(sensor, "temperature", summary["newest_reading_id"])
            stats = true_window(readings, WINDOW, summary["newest_reading_id"]).stats()
            assert stats is not None
            assert summary["count"] == stats.count
            assert math.isclose(summary["avg"], stats.avg, abs_tol=0.01)
            assert (summary["min"], summary["max"]) == (stats.min, stats.max)
        # Windows carried over the crash: the first summary computed after it was already full.
        after = sorted(
            (s for s in history if parse_timestamp(s["computed_at"]).timestamp() > restarted_at),
            key=lambda s: s["window_end"],
        )
        assert after[0]["count"] == WINDOW

        entity = state.get(WINDOWS_TABLE, sensor, "temperature")
        assert entity is not None
        kept = [entry[1] for entry in SlidingWindow.from_json(WINDOW, entity.properties["entries"]).entries]
        assert kept == [r["id"] for r in readings[:WINDOW]][::-1]
