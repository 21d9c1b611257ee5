"""Ingest throughput: POST /api/readings in batches of 100 through a devhost subprocess, as devices would.

devhost runs on a temp data dir (embedded SQLite) with the simulator off; the summariser keeps running on the
change feed, as it would in production. CLIENTS threads each keep one connection and post batches; every answer
must be 201. Two phases:

* sustained: together the clients offer the target rate (2,000 readings/s, paced) for DURATION_SECONDS; reported
  are the readings acknowledged per second and the latency percentiles of the POSTs at that load;
* saturation: the clients post back to back for SATURATION_SECONDS: the most devhost takes on this machine.

Then the bench waits for the summariser to reflect the last reading of every sensor, so neither figure is bought
with a backlog that never drains.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, log, machine, median, ms, percentile

HOST = "127.0.0.1"
CLIENTS = 4
BATCH = 100
SENSORS = 200
WARMUP_SECONDS = 3.0
DURATION_SECONDS = 15.0
SATURATION_SECONDS = 10.0
DRAIN_TIMEOUT_SECONDS = 120.0
TARGET_READINGS_PER_SECOND = 2000.0
TARGET_P99_MS = 250.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _start_devhost(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {**os.environ, "AzureWebJobs.simulate_sensors.Disabled": "true", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "devhost", "--port", str(port), "--data-dir", str(data_dir)]
    with open(log_path, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"devhost exited with {process.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("devhost did not answer /api/health within 60 s")


class _Client(threading.Thread):
    """Posts batches of BATCH readings for its own sensors, each batch newer than the last."""

    def __init__(self, number: int, port: int, start_at: datetime, stop: threading.Event) -> None:
        super().__init__(name=f"ingest-client-{number}", daemon=True)
        self.number, self.port, self.start_at, self.stop = number, port, start_at, stop
        self.paced = threading.Event()  # set: one batch every CLIENTS * BATCH / TARGET seconds
        self.latencies: list[tuple[float, float]] = []  # (finished at, seconds)
        self.failures: list[str] = []
        self.sequence = 0
        self.last_ids: dict[str, str] = {}

    def _batch(self) -> bytes:
        readings = []
        for _ in range(BATCH):
            sensor = f"load-{self.number}-{self.sequence % (SENSORS // CLIENTS):03d}"
            moment = self.start_at + timedelta(milliseconds=self.sequence)
            reading_id = f"{sensor}:{self.sequence}"
            readings.append(
                {
                    "id": reading_id,
                    "sensor_id": sensor,
                    "metric": "temperature",
                    "value": 15.0 + (self.sequence * 7919 % 2500) / 100,
                    "timestamp": moment.isoformat(),
                }
            )
            self.last_ids[sensor] = reading_id
            self.sequence += 1
        return json.dumps(readings).encode()

    def run(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        interval = CLIENTS * BATCH / TARGET_READINGS_PER_SECOND
        next_post = time.perf_counter() + interval * self.number / CLIENTS  # the clients take turns
        while not self.stop.is_set():
            if self.paced.is_set():
                time.sleep(max(0.0, next_post - time.perf_counter()))
                next_post = max(next_post + interval, time.perf_counter() - interval)
            body = self._batch()
            began = time.perf_counter()
            try:
                conn.request("POST", "/api/readings", body, headers)
                response = conn.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as failed:
                self.failures.append(repr(failed))
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
                continue
            finished = time.perf_counter()
            if response.status != 201:
                self.failures.append(f"{response.status} {answer[:200]!r}")
            self.latencies.append((finished, finished - began))
        conn.close()


def _newest_summarised(port: int) -> dict[str, str]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", "/api/sensors?limit=500")
        series = json.loads(conn.getresponse().read())["items"]
    finally:
        conn.close()
    return {s["sensor_id"]: s["latest"]["newest_reading_id"] for s in series if s.get("latest")}


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        process, port = _start_devhost(Path(tmp) / "data", Path(tmp) / "devhost.log")
        try:
            stop = threading.Event()
            start_at = datetime.now(UTC) - timedelta(hours=1)
            clients = [_Client(n, port, start_at, stop) for n in range(CLIENTS)]
            for client in clients:
                client.paced.set()
                client.start()
            time.sleep(WARMUP_SECONDS)
            sustained = _phase(clients, DURATION_SECONDS)
            log(f"sustained: {_describe(sustained)}")
            for client in clients:
                client.paced.clear()
            saturation = _phase(clients, SATURATION_SECONDS)
            log(f"saturation: {_describe(saturation)}")
            stop.set()
            for client in clients:
                client.join(60)
            failures = [failure for c in clients for failure in c.failures]
            expected = {sensor: rid for c in clients for sensor, rid in c.last_ids.items()}
            drain_began = time.perf_counter()
            drained = False
            while time.perf_counter() - drain_began < DRAIN_TIMEOUT_SECONDS:
                newest = _newest_summarised(port)
                if all(newest.get(sensor) == rid for sensor, rid in expected.items()):
                    drained = True
                    break
                time.sleep(0.5)
            drain_seconds = time.perf_counter() - drain_began
            log(f"summariser caught up {drain_seconds:.1f} s after the last POST" if drained else "did not drain")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    rate, p99 = sustained["readings_per_second"], sustained["latency_ms"]["p99"]
    return {
        "bench": "ingest",
        "clients": CLIENTS,
        "batch_size": BATCH,
        "sensors": SENSORS,
        "offered_readings_per_second": TARGET_READINGS_PER_SECOND,
        "sustained": sustained,
        "saturation": saturation,
        "failures": len(failures),
        "failure_examples": failures[:3],
        "summariser_drained": drained,
        "drain_seconds_after_last_post": round(drain_seconds, 2),
        "target": {"readings_per_second_min": TARGET_READINGS_PER_SECOND, "p99_ms_max": TARGET_P99_MS},
        "meets_target": rate >= 0.98 * TARGET_READINGS_PER_SECOND and p99 <= TARGET_P99_MS and not failures and drained,
        "machine": machine(),
    }


def _phase(clients: list[_Client], seconds: float) -> dict[str, Any]:
    began = time.perf_counter()
    time.sleep(seconds)
    ended = time.perf_counter()
    window = [duration for c in clients for done, duration in list(c.latencies) if began <= done < ended]
    return {
        "seconds": seconds,
        "posts": len(window),
        "readings_per_second": round(len(window) * BATCH / (ended - began), 1),
        "latency_ms": {
            "p50": ms(median(window)),
            "p95": ms(percentile(window, 0.95)),
            "p99": ms(percentile(window, 0.99)),
            "max": ms(max(window)),
        },
    }


def _describe(phase: dict[str, Any]) -> str:
    latency = phase["latency_ms"]
    return f"{phase['readings_per_second']:.0f} readings/s, p50 {latency['p50']} ms, p99 {latency['p99']} ms"
