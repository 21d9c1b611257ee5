"""Microshare backfill under devhost: a 3 locations x 30 days backfill against the stand-in, from the POST to a
completed orchestration; and the size of an instance's stored history for about 1,000 windows.

devhost runs as its own process on a free port with a temporary data folder (as a user runs it); the stand-in
serves on another loopback port in this process."""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import log
from devhost.durable.store import DurableStore
from devhost.standins.microshare.dataset import MicroshareDataset
from devhost.standins.microshare.server import MicroshareStandIn
from shared.storage.sqlite.database import SqliteDatabase
from tests.e2e.devhost_process import DevhostProcess
from tests.waiting import wait_for

INSTANCE = "backfill-people-counter"
TARGET_SECONDS = 10.0
TARGET_HISTORY_BYTES = 1_000_000


def _settings(standin: MicroshareStandIn) -> dict[str, str]:
    return {
        "SENSOR_COUNT": "0",
        # The summariser takes the whole 30 days, as the README says to for a long backfill: the bench times the
        # backfill, and dead-lettering the weeks past the default week's age limit would be other work.
        "READING_MAX_AGE_SECONDS": "0",
        **standin.app_settings(),
        "AzureWebJobs.forward_people_counter.Disabled": "true",
        "AzureWebJobs.forward_hourly_snapshot.Disabled": "true",
    }


def _post(host: DevhostProcess, body: dict[str, str]) -> int:
    request = urllib.request.Request(
        host.base_url + "/api/microshare/backfill", data=json.dumps(body).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def _status(host: DevhostProcess) -> dict[str, Any]:
    result: dict[str, Any] = host.get_json(f"/api/microshare/backfill/{INSTANCE}")
    if result["runtimeStatus"] in ("Failed", "Terminated"):
        raise RuntimeError(f"the backfill ended {result['runtimeStatus']}")
    return result


def backfill(days: int, locations: int, devices: int, folder: Path) -> dict[str, Any]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days + 1)
    names = tuple(f"Building {n:03d}" for n in range(1, locations + 1))
    dataset = MicroshareDataset.synthetic(start, start + timedelta(days=days), names, devices)
    body = {"recType": "people_counter", "from": start.isoformat(), "to": (start + timedelta(days=days)).isoformat()}
    with MicroshareStandIn(dataset) as standin:
        host = DevhostProcess(folder, _settings(standin))
        try:
            began = time.perf_counter()
            if _post(host, body) != 202:
                raise RuntimeError("the backfill did not start")
            done = wait_for(lambda: (s := _status(host))["runtimeStatus"] == "Completed" and s, 600, "completion")
            seconds = time.perf_counter() - began
        finally:
            host.stop()
    database = SqliteDatabase.in_directory(folder)
    try:
        history_bytes = DurableStore(database).history_bytes(INSTANCE)
    finally:
        database.close()
    result = done["result"]
    return {
        "locations": locations,
        "days": days,
        "windows": result["windows"],
        "records": len(dataset),
        "events": result["events"],
        "sent": result["sent"],
        "seconds": round(seconds, 2),
        "history_bytes": history_bytes,
    }


def run() -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-backfill-") as small,
        tempfile.TemporaryDirectory(prefix="bench-backfill-history-") as large,
    ):
        log("3 locations x 30 days through devhost")
        speed = backfill(30, 3, 4, Path(small))
        log("34 locations x 30 days (1,020 windows) for the history size")
        history = backfill(30, 34, 1, Path(large))
    meets = (
        speed["seconds"] <= TARGET_SECONDS
        and speed["sent"] == speed["records"]
        and history["history_bytes"] < TARGET_HISTORY_BYTES
        and history["sent"] == history["records"]
    )
    return {
        "bench": "backfill",
        "three_by_thirty": speed,
        "thousand_windows": history,
        "target": {"seconds_max": TARGET_SECONDS, "history_bytes_max": TARGET_HISTORY_BYTES},
        "meets_target": meets,
    }
