"""Freshness: a reading written to `readings` -> its summary visible in GET /api/sensors, through devhost.

devhost runs as a subprocess on a temp data dir with the simulator disabled and the change feed's own
500 ms poll delay. The bench writes readings straight into the same SQLite file (as the simulator would)
and a thread polls /api/sensors every 20 ms; latency = first poll showing the reading as the series'
newest_reading_id - the moment just before the write. A reading overtaken by a newer one of the same
sensor before a poll saw it counts as seen with that newer one (its window included it); those are counted.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bench.common import REPO_ROOT, log, machine, median, percentile, reading_document, stop_devhost
from shared.storage.names import PARTITION_KEY_PATHS, READINGS
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore

HOST = "127.0.0.1"
SENSORS = ["fresh-01", "fresh-02", "fresh-03"]
READINGS_TOTAL = 60
EMIT_INTERVAL_SECONDS = 0.5
POLL_INTERVAL_SECONDS = 0.02
STARTUP_TIMEOUT_SECONDS = 60.0
DRAIN_TIMEOUT_SECONDS = 10.0
TARGET_P95_SECONDS = 1.5


@dataclass
class _Pending:
    sensor_id: str
    reading_id: str
    emitted: float
    seen: float | None = None
    overtaken: bool = False


@dataclass
class _Tracker:
    """Readings in emit order; the poller marks them seen."""

    readings: list[_Pending] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    polls: int = 0
    poll_errors: int = 0

    def add(self, pending: _Pending) -> None:
        with self.lock:
            self.readings.append(pending)

    def observe(self, newest: dict[str, str], now: float) -> None:
        with self.lock:
            self.polls += 1
            for index, pending in enumerate(self.readings):
                if pending.seen is not None or newest.get(pending.sensor_id) is None:
                    continue
                if newest[pending.sensor_id] == pending.reading_id:
                    pending.seen = now
                    # Earlier readings of this sensor not yet seen are in this window too.
                    for earlier in self.readings[:index]:
                        if earlier.sensor_id == pending.sensor_id and earlier.seen is None:
                            earlier.seen = now
                            earlier.overtaken = True

    def all_seen(self) -> bool:
        with self.lock:
            return all(p.seen is not None for p in self.readings)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def _wait_until_healthy(process: subprocess.Popen[bytes], port: int) -> float:
    began = time.perf_counter()
    deadline = began + STARTUP_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"devhost exited with {process.returncode} before answering")
        conn = http.client.HTTPConnection(HOST, port, timeout=2.0)
        try:
            status, _ = _get(conn, "/api/health")
            if status == 200:
                return time.perf_counter() - began
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"devhost did not answer /api/health within {STARTUP_TIMEOUT_SECONDS:.0f} s")


def _poll(port: int, tracker: _Tracker, stop: threading.Event) -> None:
    # A new connection per poll: on a kept-alive connection devhost's answers stall ~40 ms (Nagle's algorithm
    # meets delayed ACK: headers and body go out in two writes), which would be measured as latency here.
    while not stop.is_set():
        conn = http.client.HTTPConnection(HOST, port, timeout=5.0)
        try:
            status, body = _get(conn, "/api/sensors")
            now = time.perf_counter()
            if status == 200:
                newest: dict[str, str] = {}
                for series in json.loads(body)["items"]:
                    latest = series.get("latest") or {}
                    if series.get("metric") == "temperature" and latest.get("newest_reading_id"):
                        newest[str(series["sensor_id"])] = str(latest["newest_reading_id"])
                tracker.observe(newest, now)
            else:
                tracker.poll_errors += 1
        except (OSError, http.client.HTTPException, ValueError):
            tracker.poll_errors += 1
        finally:
            conn.close()
        stop.wait(POLL_INTERVAL_SECONDS)


def _devhost_env() -> dict[str, str]:
    env = dict(os.environ)
    env["AzureWebJobs.simulate_sensors.Disabled"] = "true"  # the host's own switch: no simulated readings
    env.pop("DEVHOST_FEED_POLL_DELAY_MS", None)  # the binding's feed_poll_delay (500 ms) applies
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _emit(documents: SqliteDocumentStore, tracker: _Tracker) -> None:
    rng = random.Random(11)
    values = {sensor: rng.uniform(20.0, 30.0) for sensor in SENSORS}
    next_emit = time.perf_counter()
    for sequence in range(READINGS_TOTAL):
        sensor_id = SENSORS[sequence % len(SENSORS)]
        values[sensor_id] = min(40.0, max(15.0, values[sensor_id] + rng.gauss(0.0, 0.6)))
        doc = reading_document(sensor_id, sequence, values[sensor_id], datetime.now(UTC))
        emitted = time.perf_counter()
        tracker.add(_Pending(sensor_id, str(doc["id"]), emitted))
        documents.upsert_many(READINGS, [doc])
        next_emit += EMIT_INTERVAL_SECONDS
        time.sleep(max(0.0, next_emit - time.perf_counter()))


def _measure(port: int, data_dir: Path) -> tuple[_Tracker, float]:
    database = SqliteDatabase.in_directory(data_dir)
    tracker = _Tracker()
    stop = threading.Event()
    poller = threading.Thread(target=_poll, args=(port, tracker, stop), name="bench-poller", daemon=True)
    poller.start()
    try:
        began = time.perf_counter()
        _emit(SqliteDocumentStore(database, PARTITION_KEY_PATHS), tracker)
        deadline = time.perf_counter() + DRAIN_TIMEOUT_SECONDS
        while not tracker.all_seen() and time.perf_counter() < deadline:
            time.sleep(0.05)
        return tracker, time.perf_counter() - began
    finally:
        stop.set()
        poller.join(10.0)
        database.close()


def _tail(log_file: IO[bytes], lines: int = 30) -> str:
    log_file.flush()
    log_file.seek(0)
    return "\n".join(log_file.read().decode(errors="replace").splitlines()[-lines:])


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-freshness-") as tmp:
        data_dir = Path(tmp).resolve() / "data"
        port = _free_port()
        with open(Path(tmp) / "devhost.log", "w+b") as devhost_log:
            command = [sys.executable, "-m", "devhost", "--port", str(port), "--data-dir", str(data_dir)]
            log(f"starting devhost on {HOST}:{port}")
            process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=_devhost_env(), stdout=devhost_log, stderr=subprocess.STDOUT
            )
            exit_code: int | None = None
            try:
                startup = _wait_until_healthy(process, port)
                log(f"devhost healthy after {startup:.2f} s; emitting {READINGS_TOTAL} readings")
                tracker, duration = _measure(port, data_dir)
            except BaseException:
                log("devhost output:\n" + _tail(devhost_log))
                raise
            finally:
                exit_code = stop_devhost(process)
            simulator_disabled = b"Function simulate_sensors is disabled" in Path(devhost_log.name).read_bytes()
    latencies = [p.seen - p.emitted for p in tracker.readings if p.seen is not None]
    missing = sum(p.seen is None for p in tracker.readings)
    if not latencies:
        raise RuntimeError("no reading ever showed up in /api/sensors")
    p95 = percentile(latencies, 0.95)
    return {
        "bench": "freshness",
        "path": "sqlite upsert into readings -> devhost change feed -> summarise_readings -> GET /api/sensors",
        "feed_poll_delay_ms": 500,
        "simulator_disabled": simulator_disabled,
        "sensors": len(SENSORS),
        "readings": len(tracker.readings),
        "emit_interval_seconds": EMIT_INTERVAL_SECONDS,
        "poll_interval_seconds": POLL_INTERVAL_SECONDS,
        "seen": len(latencies),
        "missing": missing,
        "overtaken": sum(p.overtaken for p in tracker.readings),
        "polls": tracker.polls,
        "poll_errors": tracker.poll_errors,
        "devhost_startup_seconds": round(startup, 3),
        "devhost_exit_code": exit_code,
        "measure_seconds": round(duration, 2),
        "p50_seconds": round(median(latencies), 3),
        "p95_seconds": round(p95, 3),
        "max_seconds": round(max(latencies), 3),
        "min_seconds": round(min(latencies), 3),
        "target": {"p95_seconds_max": TARGET_P95_SECONDS, "missing": 0},
        "meets_target": p95 <= TARGET_P95_SECONDS and missing == 0,
        "machine": machine(),
    }
