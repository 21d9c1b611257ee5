"""Bulk import on devhost, as a user meets it: a file uploaded through POST /api/imports (or `make import`) is
imported exactly once, also when devhost is SIGKILLed in the middle and when the same file is uploaded again or
its event arrives twice; bad rows end up in `<name>.errors.csv` with their line numbers while the good ones are
imported; an oversize or binary file gets a result saying why and imports nothing."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.readings.window import SlidingWindow
from shared.storage.names import PARTITION_KEY_PATHS, READINGS, WINDOWS_TABLE
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.state import SqliteStateStore
from tests.e2e.devhost_process import REPO, DevhostProcess
from tests.true_windows import true_window
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

WINDOW = 10
SETTINGS = {"AzureWebJobs.simulate_sensors.Disabled": "true", "WINDOW_SIZE": str(WINDOW)}
FINAL = ("imported", "refused", "failed")
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def history(sensors: int, per_sensor: int, seed: int = 7) -> list[dict[str, Any]]:
    """Readings of `sensors` sensors, a minute apart, interleaved by time as an export would list them."""
    rng = random.Random(seed)
    rows = []
    for step in range(per_sensor):
        for n in range(sensors):
            rows.append(
                {
                    "sensor_id": f"hist-{n:03d}",
                    "metric": "temperature",
                    "value": round(rng.uniform(10.0, 35.0), 2),
                    "timestamp": (T0 + timedelta(minutes=step, milliseconds=n)).isoformat(timespec="milliseconds"),
                }
            )
    return rows


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, ["sensor_id", "metric", "value", "timestamp"], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()


def upload(host: DevhostProcess, name: str, body: bytes) -> dict[str, Any]:
    status, answer = host.send("POST", f"/api/imports?name={name}", body, "text/csv")
    assert status == 202, (status, answer[:300])
    uploaded: dict[str, Any] = json.loads(answer)
    return uploaded


def record(host: DevhostProcess, import_id: str) -> dict[str, Any]:
    found: dict[str, Any] = host.get_json(f"/api/imports/{import_id}")
    return found


def ended(host: DevhostProcess, import_id: str, timeout: float = 180) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        current = record(host, import_id)
        return current if current["state"] in FINAL else None

    return wait_for(final, timeout, f"import {import_id} to end")


def result_file(data_dir: Path, name: str) -> Path:
    return data_dir / "blobs" / "imports-results" / name


def stored_readings(data_dir: Path, sensors: list[str]) -> dict[str, list[dict[str, Any]]]:
    database = SqliteDatabase.in_directory(data_dir)
    try:
        documents = SqliteDocumentStore(database, PARTITION_KEY_PATHS)
        return {s: documents.latest(READINGS, s, "timestamp", 1_000_000) for s in sensors}
    finally:
        database.close()


def stored_windows(data_dir: Path, sensors: list[str]) -> dict[str, Any]:
    database = SqliteDatabase.in_directory(data_dir)
    try:
        state = SqliteStateStore(database)
        windows = {}
        for sensor in sensors:
            entity = state.get(WINDOWS_TABLE, sensor, "temperature")
            assert entity is not None, sensor
            windows[sensor] = SlidingWindow.from_json(WINDOW, entity.properties["entries"]).entries
        return windows
    finally:
        database.close()


def caught_up(host: DevhostProcess, last: dict[str, str]) -> Callable[[], bool]:
    def check() -> bool:
        items = host.get_json("/api/sensors?limit=500")["items"]
        newest = {tile["sensor_id"]: tile["latest"]["newest_reading_id"] for tile in items}
        return all(newest.get(sensor) == reading_id for sensor, reading_id in last.items())

    return check


def test_a_100000_row_csv_is_imported_exactly_once_across_a_sigkill_a_second_upload_and_a_repeated_event(
    tmp_path: Path,
) -> None:
    rows = history(sensors=200, per_sensor=500)
    body = as_csv(rows)
    sensors = sorted({row["sensor_id"] for row in rows})
    host = DevhostProcess(tmp_path, SETTINGS)
    try:
        first = upload(host, "history.csv", body)

        def mid_import() -> dict[str, Any] | None:
            current = record(host, first["id"])
            return current if current["state"] == "importing" and 0 < current["rows"] < len(rows) else None

        seen = wait_for(mid_import, 120, "the import to be part-way through the file")
        host.kill()  # SIGKILL in the middle of the import
        host = DevhostProcess(tmp_path, SETTINGS)
        done = ended(host, first["id"])
        assert done["state"] == "imported", done
        assert (done["rows"], done["imported"], done["rejected"]) == (len(rows), len(rows), 0)
        assert done["errors"] is None and seen["rows"] < len(rows)

        # The same event again (Event Grid delivers at least once): no second import of this version.
        event = {
            "id": "repeat",
            "eventType": "Microsoft.Storage.BlobCreated",
            "subject": "/blobServices/default/containers/imports/blobs/history.csv",
            "data": {"eTag": first["etag"], "api": "PutBlob"},
        }
        status, _ = host.send(
            "POST", "/runtime/webhooks/blobs?functionName=Host.Functions.import_blob", json.dumps([event]).encode()
        )
        assert status == 202
        # The same file uploaded again: a new blob version, imported again, and every row is found stored already.
        second = upload(host, "history.csv", body)
        assert second["id"] != first["id"]
        again = ended(host, second["id"])
        assert (again["state"], again["imported"], again["rejected"]) == ("imported", len(rows), 0)
        listed = host.get_json("/api/imports")["items"]
        assert [item["id"] for item in listed] == [second["id"], first["id"]]
        assert record(host, first["id"])["finished"] == done["finished"]  # the repeated event changed nothing

        last = {row["sensor_id"]: None for row in rows}
        for sensor in sensors:
            newest = host.get_json(f"/api/sensors/{sensor}/readings?limit=1")[0]
            last[sensor] = newest["id"]
        wait_for(caught_up(host, {s: str(r) for s, r in last.items()}), 120, "the summaries of every imported series")
        assert host.stop() == 0
    finally:
        host.kill()

    readings = stored_readings(tmp_path, sensors)
    assert sum(len(found) for found in readings.values()) == len(rows)  # each row stored once
    by_sensor: dict[str, list[dict[str, Any]]] = {s: [] for s in sensors}
    for sensor, found in readings.items():
        by_sensor[sensor] = sorted(found, key=lambda r: r["timestamp"])
    windows = stored_windows(tmp_path, sensors)
    for sensor in sensors:
        assert windows[sensor] == true_window(by_sensor[sensor], WINDOW).entries, sensor
    result = json.loads(result_file(tmp_path, "history.csv.result.json").read_text())
    assert (result["state"], result["rows"], result["imported"], result["rejected"]) == (
        "imported",
        len(rows),
        len(rows),
        0,
    )
    assert result["seconds"] > 0


def test_bad_rows_are_reported_with_their_line_numbers_and_the_good_rows_imported(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    lines = [
        "sensor_id,metric,value,timestamp,unit",  # 1
        f"good-1,temperature,21.5,{(now - timedelta(minutes=3)).isoformat()},°C",  # 2
        f"good-1,temperature,warm,{(now - timedelta(minutes=2)).isoformat()},",  # 3 value
        "",  # 4 blank
        f"bad id!,temperature,20,{now.isoformat()},",  # 5 sensor_id
        "good-2,temperature,19,1970-01-01T00:00:00Z,",  # 6 too old
        f"good-2,temperature,19.5,{(now - timedelta(minutes=1)).isoformat()},,extra",  # 7 field count
        f"good-2,pressure,1000,{now.isoformat()},",  # 8 unknown metric
        f'"good-2",temperature,"18.25",{now.isoformat()},C',  # 9 good, quoted
    ]
    data_dir = tmp_path / "data"
    path = tmp_path / "mixed.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    host = DevhostProcess(data_dir, SETTINGS)
    try:
        # As a user would: make import's command, which uploads and follows the import to its end.
        command = [sys.executable, "-m", "devhost.import_file", str(path), "--port", host.base_url.rsplit(":", 1)[1]]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "imported (100 %): 7 rows, 2 imported, 5 rejected" in done.stdout, done.stdout
        assert "error report: imports-results/mixed.csv.errors.csv" in done.stdout
        values = {r["value"] for s in ("good-1", "good-2") for r in host.get_json(f"/api/sensors/{s}/readings")}
        assert values == {21.5, 18.25}
    finally:
        host.stop()
    report = list(csv.reader(io.StringIO(result_file(data_dir, "mixed.csv.errors.csv").read_text())))
    assert report[0] == ["line", "field", "message"]
    by_line = {int(line): (field, message) for line, field, message in report[1:]}
    assert sorted(by_line) == [3, 5, 6, 7, 8]
    assert by_line[3] == ("value", "must be a finite number")
    assert by_line[5][0] == "sensor_id"
    assert by_line[6][0] == "timestamp" and "old" in by_line[6][1]
    assert "fields" in by_line[7][1]
    assert by_line[8][0] == "metric"
    result = json.loads(result_file(data_dir, "mixed.csv.result.json").read_text())
    assert (result["rows"], result["imported"], result["rejected"]) == (7, 2, 5)


def test_an_oversize_or_binary_file_gets_a_result_saying_why_and_imports_nothing(tmp_path: Path) -> None:
    settings = {**SETTINGS, "IMPORT_MAX_BYTES": "4096", "IMPORT_UPLOAD_MAX_BYTES": "65536"}
    big = as_csv(history(sensors=3, per_sensor=100, seed=1))
    assert 4096 < len(big) < 65536
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    host = DevhostProcess(tmp_path, settings)
    try:
        oversize = upload(host, "big.csv", big)
        binary = upload(host, "picture.csv", png)
        status, answer = host.send("POST", "/api/imports?name=huge.csv", b"x" * 70_000, "text/csv")
        assert status == 413 and b"IMPORT_UPLOAD_MAX_BYTES" in answer
        status, answer = host.send("POST", "/api/imports?name=../up.csv", b"a", "text/csv")
        assert status == 400
        refused = ended(host, oversize["id"])
        assert refused["state"] == "refused" and "IMPORT_MAX_BYTES" in refused["reason"]
        assert refused["imported"] == 0
        not_text = ended(host, binary["id"])
        assert not_text["state"] == "refused" and "text" in not_text["reason"]
        status, _, _ = host.get("/api/sensors/hist-000/readings")
        assert status == 404  # nothing of the oversize file was imported
    finally:
        host.stop()
    result = json.loads(result_file(tmp_path, "big.csv.result.json").read_text())
    assert result["state"] == "refused" and "IMPORT_MAX_BYTES" in result["reason"]
    assert not result_file(tmp_path, "big.csv.errors.csv").exists()


def test_a_gzip_json_lines_file_dropped_into_the_folder_is_imported(tmp_path: Path) -> None:
    """Without the API: a file moved into the embedded store's `imports` folder raises BlobCreated, as a blob put
    into the container with storage tools does in Azure."""
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        {
            "sensor_id": "drop-1",
            "metric": "humidity",
            "value": 40 + n,
            "timestamp": (now - timedelta(seconds=60 - n)).isoformat(),
        }
        for n in range(50)
    ]
    content = gzip.compress("\n".join(json.dumps(row) for row in rows).encode())
    host = DevhostProcess(tmp_path, SETTINGS)
    try:
        folder = tmp_path / "blobs" / "imports"
        folder.mkdir(parents=True, exist_ok=True)
        staging = tmp_path / "drop.jsonl.gz.partial"
        staging.write_bytes(content)
        staging.replace(folder / "drop.jsonl.gz")  # moved into place whole, as `make import` documents

        def imported() -> dict[str, Any] | None:
            items = host.get_json("/api/imports")["items"]
            return next((i for i in items if i["name"] == "drop.jsonl.gz" and i["state"] in FINAL), None)

        done = wait_for(imported, 120, "the dropped file's import")
        assert (done["state"], done["rows"], done["imported"]) == ("imported", 50, 50)
        latest = host.get_json("/api/sensors/drop-1/readings?limit=1")[0]
        assert latest["value"] == 89
    finally:
        host.stop()
