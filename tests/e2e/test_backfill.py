"""The Microshare backfill as an operator runs it: devhost, the stand-in, POST /api/microshare/backfill, status
polling, faults that make windows fail before they succeed, and a SIGKILL in the middle."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devhost.standins.microshare.dataset import MicroshareDataset
from devhost.standins.microshare.server import Fault, MicroshareStandIn
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.events import SqliteEventHub
from tests.e2e.devhost_process import DevhostProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

DAYS = 7
LOCATIONS = ("Building A", "Building B", "Building C")
DEVICES = 2
RECORDS = len(LOCATIONS) * DEVICES * 96 * DAYS
STATUS_PATH = "/api/microshare/backfill/backfill-people-counter"


def _start() -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=DAYS + 1)


@pytest.fixture
def standin() -> Iterator[MicroshareStandIn]:
    start = _start()
    dataset = MicroshareDataset.synthetic(start, start + timedelta(days=DAYS), LOCATIONS, DEVICES)
    with MicroshareStandIn(dataset) as server:
        yield server


def settings(standin: MicroshareStandIn) -> dict[str, str]:
    return {
        "SENSOR_COUNT": "0",
        **standin.app_settings(),
        "AzureWebJobs.forward_people_counter.Disabled": "true",
        "AzureWebJobs.forward_hourly_snapshot.Disabled": "true",
    }


def post(host: DevhostProcess, path: str, body: object) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(host.base_url + path, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def backfill_body() -> dict[str, str]:
    start = _start()
    return {"recType": "people_counter", "from": start.isoformat(), "to": (start + timedelta(days=DAYS)).isoformat()}


def status(host: DevhostProcess) -> dict[str, Any]:
    code, _, body = host.get(STATUS_PATH)
    assert code == 200, (code, body[:300])
    result: dict[str, Any] = json.loads(body)
    return result


def completed(host: DevhostProcess) -> dict[str, Any] | None:
    current = status(host)
    assert current["runtimeStatus"] not in ("Failed", "Terminated"), current
    return current if current["runtimeStatus"] == "Completed" else None


def records_on_hub(data_dir: Path) -> Counter[str]:
    database = SqliteDatabase.in_directory(data_dir)
    try:
        hub = SqliteEventHub(database)
        return Counter(
            json.loads(event.body)["record"]
            for partition in range(hub.partitions)
            for event in hub.receive("telemetry", partition, None, 10_000_000)
        )
    finally:
        database.close()


def test_a_week_for_three_locations_is_forwarded_exactly_once_though_windows_fail_first(
    standin: MicroshareStandIn, tmp_path: Path
) -> None:
    # One window (Building B, third day) answers 503 to its first 10 requests: each attempt of its activity
    # makes 5 (the client's own 4 retries), so the window fails twice and succeeds on its third attempt.
    third_day = (_start() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    standin.inject(Fault("view", status=503, times=10, location="Building B", window_from=third_day))
    host = DevhostProcess(tmp_path, settings(standin))
    try:
        code, started = post(host, "/api/microshare/backfill", backfill_body())
        assert code == 202, started
        assert started["id"] == "backfill-people-counter"
        assert started["statusUrl"].endswith(STATUS_PATH)
        code, conflict = post(host, "/api/microshare/backfill", backfill_body())
        assert code == 409 and conflict["statusUrl"].endswith(STATUS_PATH)
        done = wait_for(lambda: completed(host), 120, "the backfill to complete")
        history = host.get_json("/runtime/webhooks/durabletask/instances/backfill-people-counter?showHistory=true")[
            "historyEvents"
        ]
    finally:
        host.stop()
    kinds = Counter(event["EventType"] for event in history)
    assert kinds["TaskFailed"] == 2  # that window's first two attempts, each retried after a backoff timer
    assert kinds["TimerFired"] == 2
    assert done["progress"]["windows_done"] == done["progress"]["windows_total"] == len(LOCATIONS) * DAYS
    assert done["result"]["events"] == RECORDS
    per_record = records_on_hub(tmp_path)
    assert len(per_record) == RECORDS and set(per_record.values()) == {1}
    assert not standin.pending_faults


def test_a_backfill_killed_half_way_completes_after_restart_with_the_same_totals(
    standin: MicroshareStandIn, tmp_path: Path
) -> None:
    # Slow answers keep the orchestration in flight long enough to kill it half-way.
    standin.inject(Fault("view", delay_seconds=0.3, times=1000))
    host = DevhostProcess(tmp_path, settings(standin))
    try:
        code, _ = post(host, "/api/microshare/backfill", backfill_body())
        assert code == 202

        def some_windows_done() -> dict[str, Any] | None:
            progress: dict[str, Any] = status(host)["progress"] or {}
            return progress if progress.get("windows_done", 0) > 0 else None

        progress = wait_for(some_windows_done, 60, "some windows done")
    finally:
        host.kill()  # SIGKILL: no clean shutdown
    # Killed half-way: with windows left to do, else the restart would have nothing to resume.
    assert progress["windows_done"] < progress["windows_total"], progress
    standin.clear_faults()
    restarted = DevhostProcess(tmp_path, settings(standin))
    try:
        done = wait_for(lambda: completed(restarted), 120, "the resumed backfill to complete")
    finally:
        restarted.stop()
    assert done["result"]["events"] == RECORDS
    assert done["result"]["windows"] == len(LOCATIONS) * DAYS
    per_record = records_on_hub(tmp_path)
    assert len(per_record) == RECORDS and set(per_record.values()) == {1}


BAD_REQUESTS: list[tuple[object, str]] = [
    (b"not json", "must be JSON"),
    ({"recType": "weather", "from": "2025-06-01T00:00:00Z", "to": "2025-06-02T00:00:00Z"}, "recType"),
    ({"recType": "people_counter", "from": "2025-06-02T00:00:00Z", "to": "2025-06-01T00:00:00Z"}, "after"),
    ({"recType": "people_counter", "from": "2025-01-01T00:00:00Z", "to": "2025-06-01T00:00:00Z"}, "maximum"),
    ({"recType": "people_counter", "from": "yesterday", "to": "2025-06-01T00:00:00Z"}, "'from'"),
]


def test_bad_backfill_requests_are_refused_with_their_reasons(standin: MicroshareStandIn, tmp_path: Path) -> None:
    host = DevhostProcess(tmp_path, settings(standin))
    try:
        answers = [post(host, "/api/microshare/backfill", body) for body, _ in BAD_REQUESTS]
        missing, _, _ = host.get("/api/microshare/backfill/backfill-hourly-snapshot")
        bad_id, _, _ = host.get("/api/microshare/backfill/bad%20id")
    finally:
        host.stop()
    for (code, answer), (_, reason) in zip(answers, BAD_REQUESTS, strict=True):
        assert code == 400 and reason in answer["error"], answer
    assert missing == 404
    assert bad_id == 400


def test_a_timer_facing_a_long_gap_starts_the_backfill_instead_of_fetching_inline(
    standin: MicroshareStandIn, tmp_path: Path
) -> None:
    values = {
        **settings(standin),
        "AzureWebJobs.forward_people_counter.Disabled": "false",
        "MICROSHARE_FIRST_RUN_LOOKBACK_HOURS": str(24 * (DAYS + 2)),
        "MICROSHARE_BACKFILL_AFTER_HOURS": "6",
    }
    host = DevhostProcess(tmp_path, values)
    try:
        code, _ = post(host, "/admin/functions/forward_people_counter", {})
        assert code == 202
        # The first run has no watermark: it fetches inline. The data ends a day ago, so the watermark is a day
        # behind and the next run hands the gap to a backfill.
        wait_for(lambda: any("forwarded io.microshare" in line for line in host.output), 60, "the first run")
        code, _ = post(host, "/admin/functions/forward_people_counter", {})
        assert code == 202
        done = wait_for(lambda: completed(host) if host.get(STATUS_PATH)[0] == 200 else None, 60, "the backfill")
    finally:
        host.stop()
    assert any("started backfill backfill-people-counter" in line for line in host.output)
    # The gap holds no new records, only the overlap the first run already sent: nothing goes twice.
    assert done["result"]["sent"] == 0 and done["result"]["skipped"] == done["result"]["events"] > 0
    per_record = records_on_hub(tmp_path)
    assert len(per_record) == RECORDS and set(per_record.values()) == {1}
