"""Crash safety: 50,000 readings streamed through POST /api/readings into devhost, which is SIGKILLed at five
random points of the stream (mid-request, mid-batch, mid-checkpoint: wherever the moment falls) and restarted each
time. The clients retry the batch they were posting, as devices would.

What must hold against an uninterrupted run over the same readings: the final summary of every series is the
same; every summary written is the summary of the true window at its newest reading (so no lost, doubled or
stale reading ever shaped one) and no two summaries describe the same window; every reading is stored once and
the final windows hold the newest readings. Summary ids are not compared as a set: a summary is written per
change-feed batch per series, and batch boundaries differ between any two runs, crash or no crash.
"""

from __future__ import annotations

import json
import math
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.readings.window import SlidingWindow
from shared.storage.names import PARTITION_KEY_PATHS, READINGS, SUMMARIES, WINDOWS_TABLE
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.state import SqliteStateStore
from tests.e2e.devhost_process import DevhostProcess
from tests.true_windows import true_window
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

SENSORS = [f"crash-{n:02d}" for n in range(50)]
READINGS_TOTAL = 50_000
BATCH = 100
WINDOW = 10
KILLS = 5
CLIENTS = 3
SETTINGS = {"AzureWebJobs.simulate_sensors.Disabled": "true", "WINDOW_SIZE": str(WINDOW)}
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


def dataset() -> list[dict[str, Any]]:
    rng = random.Random(5)
    readings = []
    for n in range(READINGS_TOTAL):
        sensor = SENSORS[n % len(SENSORS)]
        moment = T0 + timedelta(milliseconds=n * 37 + rng.randint(0, 30))
        readings.append(
            {
                "id": f"{sensor}:{n}",
                "sensor_id": sensor,
                "metric": "temperature",
                "value": round(rng.uniform(15.0, 40.0), 2),
                "timestamp": moment.isoformat(timespec="milliseconds"),
            }
        )
    return readings


def post(host: DevhostProcess, batch: list[dict[str, Any]]) -> int:
    request = urllib.request.Request(
        host.base_url + "/api/readings",
        data=json.dumps(batch).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


class _Host:
    """The devhost of the moment: the killer replaces it, the clients wait for the replacement."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.current = DevhostProcess(data_dir, SETTINGS)
        self.generation = 0
        self.changed = threading.Condition()

    def kill_and_restart(self) -> None:
        self.current.kill()  # SIGKILL: whatever devhost is doing at this moment stops there
        replacement = DevhostProcess(self.data_dir, SETTINGS)
        with self.changed:
            self.current = replacement
            self.generation += 1
            self.changed.notify_all()

    def wait_past(self, generation: int) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.generation > generation, timeout=90)


def stream(data_dir: Path, readings: list[dict[str, Any]], kill_at: list[int]) -> list[int]:
    """CLIENTS threads post every batch back to back, so ingest and the summariser are both busy; meanwhile devhost
    is SIGKILLed as soon as the clients have posted each of kill_at readings in all, and restarted: the stream's
    progress picks the moments, not the clock, so every kill lands mid-stream however fast the machine. A client
    whose post failed waits for the restart and posts the same batch again. Returns the readings posted at each
    kill."""
    # Each client owns a third of the sensors and posts their readings in time order, so a sensor's readings reach
    # the change feed in order even with three clients at once (out-of-order arrival is the summariser tests' job).
    lanes = [[r for r in readings if SENSORS.index(r["sensor_id"]) % CLIENTS == lane] for lane in range(CLIENTS)]
    host = _Host(data_dir)
    failures: list[str] = []
    posted = 0
    progress = threading.Condition()

    def client(lane: list[dict[str, Any]]) -> None:
        nonlocal posted
        for start in range(0, len(lane), BATCH):
            batch = lane[start : start + BATCH]
            while True:
                generation, current = host.generation, host.current
                try:
                    if post(current, batch) != 201:
                        failures.append(f"batch at {start}: not 201")
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    host.wait_past(generation)  # the batch is posted again: its ids make that idempotent
            with progress:
                posted += len(batch)
                progress.notify_all()

    def posted_at_least(count: int) -> Callable[[], bool]:
        return lambda: posted >= count

    killed_at: list[int] = []
    clients = [threading.Thread(target=client, args=(lane,), daemon=True) for lane in lanes]
    for thread in clients:
        thread.start()
    try:
        for threshold in kill_at:
            with progress:
                reached = progress.wait_for(posted_at_least(threshold), timeout=300)
                assert reached, f"the clients did not post {threshold} readings within 300 s (posted {posted})"
                killed_at.append(posted)
            host.kill_and_restart()
        for thread in clients:
            thread.join(300)
        assert not any(thread.is_alive() for thread in clients), "the clients did not finish within 300 s"
        assert failures == []
        last = {r["sensor_id"]: r["id"] for r in readings}
        wait_for(lambda: _caught_up(host.current, last), 180, "the summariser to reflect every sensor's last reading")
        assert host.current.stop() == 0
    finally:
        host.current.kill()
    return killed_at


def _caught_up(host: DevhostProcess, last: dict[str, str]) -> bool:
    newest = {s["sensor_id"]: s["latest"]["newest_reading_id"] for s in host.get_json("/api/sensors")["items"]}
    return all(newest.get(sensor) == reading_id for sensor, reading_id in last.items())


def stored(data_dir: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]], dict[str, Any]]:
    database = SqliteDatabase.in_directory(data_dir)
    try:
        documents = SqliteDocumentStore(database, PARTITION_KEY_PATHS)
        state = SqliteStateStore(database)
        readings = {s: documents.latest(READINGS, s, "timestamp", READINGS_TOTAL) for s in SENSORS}
        summaries = {s: documents.latest(SUMMARIES, s, "window_end", READINGS_TOTAL) for s in SENSORS}
        windows = {}
        for sensor in SENSORS:
            entity = state.get(WINDOWS_TABLE, sensor, "temperature")
            assert entity is not None
            windows[sensor] = SlidingWindow.from_json(WINDOW, entity.properties["entries"]).entries
        return readings, summaries, windows
    finally:
        database.close()


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("computed_at",) and not k.startswith("_")}


def test_five_sigkills_while_streaming_50000_readings_change_no_summary(tmp_path: Path) -> None:
    readings = dataset()
    rng = random.Random(20_261_123)
    # Five points of the stream, a batch apart at least, the last with a fifth of the readings still to come.
    kill_at = sorted(rng.sample(range(BATCH, READINGS_TOTAL * 4 // 5, BATCH), KILLS))

    stream(tmp_path / "uninterrupted", readings, [])
    killed_at = stream(tmp_path / "crashed", readings, kill_at)
    assert len(killed_at) == KILLS
    assert all(posted < READINGS_TOTAL for posted in killed_at), killed_at  # each kill came mid-stream

    _, reference_summaries, reference_windows = stored(tmp_path / "uninterrupted")
    crashed_readings, crashed_summaries, crashed_windows = stored(tmp_path / "crashed")
    by_sensor: dict[str, list[dict[str, Any]]] = {s: [] for s in SENSORS}
    for reading in readings:
        by_sensor[reading["sensor_id"]].append(reading)

    assert sum(len(r) for r in crashed_readings.values()) == READINGS_TOTAL
    for sensor in SENSORS:
        assert comparable(crashed_summaries[sensor][0]) == comparable(reference_summaries[sensor][0]), sensor
        assert crashed_windows[sensor] == reference_windows[sensor]
        assert crashed_windows[sensor] == true_window(by_sensor[sensor], WINDOW).entries
        newest_ids = [s["newest_reading_id"] for s in crashed_summaries[sensor]]
        assert len(newest_ids) == len(set(newest_ids)), f"{sensor}: two summaries of one window"
        for summary in crashed_summaries[sensor]:
            stats = true_window(by_sensor[sensor], WINDOW, summary["newest_reading_id"]).stats()
            assert stats is not None
            assert (summary["count"], summary["min"], summary["max"]) == (stats.count, stats.min, stats.max)
            assert math.isclose(summary["avg"], stats.avg, rel_tol=1e-12)
