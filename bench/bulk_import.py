"""Bulk import throughput: a 1,000,000-row gzip CSV uploaded to a devhost subprocess (POST /api/imports, as
`make import` does) and imported by the blob trigger and its Durable orchestration, with the summariser running on
the change feed as in production.

Reported: rows per second end to end (from the start of the upload to the import's end, as GET /api/imports/{id}
reports it), devhost's peak resident memory (VmHWM of /proc, so a spike between samples is not missed), and how
long after the import ended the summaries reflected every series' last row.
"""

from __future__ import annotations

import gzip
import http.client
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import log, machine, stop_devhost
from bench.ingest import HOST, _start_devhost

ROWS = 1_000_000
SENSORS = 1_000
TARGET_ROWS_PER_SECOND = 20_000.0
TARGET_RSS_MB = 300.0
TARGET_CATCH_UP_SECONDS = 30.0
TIMEOUT_SECONDS = 900.0


def _file(path: Path) -> dict[str, str]:
    """The rows, sensor after sensor interleaved by time (as an export lists them); the last id of each series."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    per_sensor = ROWS // SENSORS
    last: dict[str, str] = {}
    with gzip.open(path, "wt", compresslevel=1, newline="") as out:
        out.write("id,sensor_id,metric,value,timestamp\r\n")
        for step in range(per_sensor):
            stamp = (start + timedelta(seconds=step * 10)).strftime("%Y-%m-%dT%H:%M:%S")
            lines = []
            for n in range(SENSORS):
                sensor = f"bulk-{n:04d}"
                reading_id = f"{sensor}:{step}"
                value = 15 + (step * 7919 + n * 104729) % 2000 / 100
                lines.append(f"{reading_id},{sensor},temperature,{value},{stamp}.{n % 1000:03d}Z\r\n")
                last[sensor] = reading_id
            out.write("".join(lines))
    return last


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _get(port: int, path: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", path)
        answer: dict[str, Any] = json.loads(conn.getresponse().read())
        return answer
    finally:
        conn.close()


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        file = Path(tmp) / "history.csv.gz"
        began = time.perf_counter()
        last = _file(file)
        log(f"wrote {ROWS:,} rows ({file.stat().st_size / 1e6:.1f} MB gzip) in {time.perf_counter() - began:.1f} s")
        process, port = _start_devhost(Path(tmp) / "data", Path(tmp) / "devhost.log")
        try:
            upload_began = time.perf_counter()
            conn = http.client.HTTPConnection(HOST, port, timeout=300)
            with file.open("rb") as body:
                conn.request(
                    "POST", "/api/imports?name=history.csv.gz", body, {"Content-Length": str(file.stat().st_size)}
                )
                answer = conn.getresponse()
                uploaded = json.loads(answer.read())
            conn.close()
            if answer.status != 202:
                raise RuntimeError(f"upload refused: {answer.status} {uploaded}")
            log(f"uploaded in {time.perf_counter() - upload_began:.1f} s: import {uploaded['id']}")
            shown = 0
            while True:
                record = _get(port, f"/api/imports/{uploaded['id']}")
                if record["state"] in ("imported", "refused", "failed"):
                    break
                if record["rows"] >= shown + 100_000:
                    shown = record["rows"]
                    log(f"{shown:,} rows after {time.perf_counter() - upload_began:.1f} s")
                if time.perf_counter() - upload_began > TIMEOUT_SECONDS:
                    raise RuntimeError("the import did not end in time")
                time.sleep(0.2)
            imported_at = time.perf_counter()
            seconds = imported_at - upload_began
            log(f"import {record['state']} after {seconds:.1f} s: {record['imported']:,} imported")
            caught_up = None
            while time.perf_counter() - imported_at < TIMEOUT_SECONDS:
                newest = _newest_summarised_all(port)
                if all(newest.get(sensor) == reading_id for sensor, reading_id in last.items()):
                    caught_up = time.perf_counter() - imported_at
                    break
                time.sleep(0.5)
            rss = _peak_rss_mb(process.pid)
        finally:
            stop_devhost(process)
    rate = record["imported"] / seconds
    return {
        "bench": "import",
        "rows": ROWS,
        "sensors": SENSORS,
        "state": record["state"],
        "imported": record["imported"],
        "rejected": record["rejected"],
        "seconds_end_to_end": round(seconds, 2),
        "rows_per_second": round(rate),
        "devhost_peak_rss_mb": round(rss, 1),
        "summaries_caught_up_after_seconds": None if caught_up is None else round(caught_up, 2),
        "target": {
            "rows_per_second_min": TARGET_ROWS_PER_SECOND,
            "devhost_rss_mb_max": TARGET_RSS_MB,
            "summaries_caught_up_seconds_max": TARGET_CATCH_UP_SECONDS,
        },
        "meets_target": record["state"] == "imported"
        and record["imported"] == ROWS
        and rate >= TARGET_ROWS_PER_SECOND
        and rss <= TARGET_RSS_MB
        and caught_up is not None
        and caught_up <= TARGET_CATCH_UP_SECONDS,
        "machine": machine(),
    }


def _newest_summarised_all(port: int) -> dict[str, str]:
    """Every series' newest summarised reading, through the fleet listing's pages."""
    newest: dict[str, str] = {}
    cursor = ""
    while True:
        page = _get(port, f"/api/sensors?limit=500{'&cursor=' + cursor if cursor else ''}")
        newest.update({s["sensor_id"]: s["latest"]["newest_reading_id"] for s in page["items"] if s.get("latest")})
        cursor = page.get("next_cursor") or ""
        if not cursor:
            return newest
