"""What an operator sees of a running devhost whose output is not a terminal: JSON log lines carrying the
invocation's fields, a periodic status line, Prometheus metrics that add up to what was sent, and readiness.

The run is known: the simulator is off; the test posts readings through the ingest API, one request that the
API refuses, and events to the embedded telemetry hub (good readings, a NaN, an unparseable body and a
people-counter record from a device), then compares the metrics with exactly that."""

from __future__ import annotations

import json
import math
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.microshare.api import PEOPLE_COUNTER
from shared.storage.ports import OutboundEvent
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.events import SqliteEventHub
from tests.e2e.devhost_process import DevhostProcess
from tests.e2e.prometheus_scrape import Samples, scrape, total
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

POSTED_READINGS = 12
GOOD_EVENTS = 5
HUB = "telemetry"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("observed")


@pytest.fixture(scope="module")
def devhost(data_dir: Path) -> Iterator[DevhostProcess]:
    settings = {"AzureWebJobs.simulate_sensors.Disabled": "true", "LOG_LEVEL": "INFO"}
    host = DevhostProcess(data_dir, settings, ["--status-every", "1"])
    try:
        yield host
    finally:
        host.kill()


def post(host: DevhostProcess, body: bytes) -> int:
    request = urllib.request.Request(
        host.base_url + "/api/readings", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def reading(sensor_id: str, n: int, seconds_ago: float = 1.0) -> dict[str, Any]:
    moment = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return {
        "id": f"{sensor_id}-{n}",
        "sensor_id": sensor_id,
        "metric": "temperature",
        "value": 20.0 + n,
        "unit": "C",
        "timestamp": moment.isoformat(),
    }


@pytest.fixture(scope="module")
def known_run(devhost: DevhostProcess, data_dir: Path) -> Samples:
    readings = [reading(f"sensor-{n % 3}", n) for n in range(POSTED_READINGS)]
    assert post(devhost, json.dumps(readings).encode()) == 201
    assert post(devhost, json.dumps([{"sensor_id": "x", "value": "warm"}]).encode()) == 400
    location = ["Building A", "Floor 1", "Entrance"]
    people_counter = {
        "recType": PEOPLE_COUNTER,
        "record": "r-1",
        "time": (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="milliseconds"),
        "change": {"in": 3, "out": 1, "count": 2, "traffic": 4},
        "current": {"count": 7},
        "device": {"id": "pc-1"},
        "meta": {"device": location},
        "_location_tags": location,
    }
    database = SqliteDatabase.in_directory(data_dir)
    try:
        events = [OutboundEvent(json.dumps(reading("hub-sensor", n)).encode()) for n in range(GOOD_EVENTS)]
        bad_value = {**reading("hub-sensor", 99), "value": "warm"}
        events += [
            OutboundEvent(json.dumps(bad_value).encode()),
            OutboundEvent(b"{not json"),
            OutboundEvent(json.dumps(people_counter).encode()),
        ]
        SqliteEventHub(database).publish(HUB, events)
    finally:
        database.close()

    def settled() -> Samples | None:
        """The metrics once every batch of the run is done. A batch's log line comes after all its figures (the
        hub trigger counts its events before it summarises them), and its invocation is counted after the line."""
        summarised = [line for line in app_log_lines(devhost) if line.get("event") == "summarised"]
        readings = sum(int(line["readings"]) for line in summarised if line["function"] == "summarise_readings")
        hub_events = sum(int(line["events"]) for line in summarised if line["function"] == "summarise_events")
        refused = any(line.get("event") == "ingest_refused" for line in app_log_lines(devhost))
        if readings < POSTED_READINGS or hub_events < len(events) or not refused:
            return None
        samples = scrape(devhost)
        counted = all(
            total(samples, "sensorpulse_invocations_total", function=function) >= 1
            for function in ("post_readings", "summarise_readings", "summarise_events")
        )
        return samples if counted else None

    return wait_for(settled, 60, "both triggers to process the known run and log it")


def test_metrics_add_up_to_the_known_run(known_run: Samples) -> None:
    m = known_run
    assert total(m, "sensorpulse_readings_ingested_total") == POSTED_READINGS
    assert total(m, "sensorpulse_ingest_rejected_total", status="400") == 1
    assert total(m, "sensorpulse_readings_summarised_total", source="cosmos-readings") == POSTED_READINGS
    assert total(m, "sensorpulse_events_processed_total", hub=HUB) == GOOD_EVENTS + 3
    # Five readings and the people-counter record summarised; the NaN and the broken body dead-lettered.
    assert total(m, "sensorpulse_readings_summarised_total", source="eventhub-telemetry") == GOOD_EVENTS + 1
    assert total(m, "sensorpulse_dead_letters_total", source="eventhub-telemetry") == 2
    assert total(m, "sensorpulse_dead_letters_total", reason="value must be a finite number") == 1
    assert total(m, "sensorpulse_dead_letters_total", reason="event body is not JSON") == 1
    assert total(m, "sensorpulse_unique_devices") == 1
    assert total(m, "sensorpulse_lag_seconds_count") == POSTED_READINGS + GOOD_EVENTS + 1
    # Every reading was at most a few seconds old when summarised.
    assert total(m, "sensorpulse_lag_seconds_bucket", le="30.0") == POSTED_READINGS + GOOD_EVENTS + 1
    succeeded = total(m, "sensorpulse_invocations_total", function="summarise_readings", outcome="succeeded")
    assert succeeded >= 1
    assert total(m, "sensorpulse_invocations_total", outcome="failed") == 0
    summaries = total(m, "sensorpulse_summaries_written_total")
    assert 4 <= summaries <= POSTED_READINGS + GOOD_EVENTS + 1  # one per changed series per batch


def test_devhost_runs_the_warmup_function_once_beside_serving(devhost: DevhostProcess) -> None:
    """devhost runs `warmup` once at start on its own thread while it already serves, as the host does on a new
    instance, so its invocation lands in the metrics whenever loading the chart library is done: wait for it."""

    def warmup_counted() -> Samples | None:
        samples = scrape(devhost)
        return samples if total(samples, "sensorpulse_invocations_total", function="warmup") >= 1 else None

    m = wait_for(warmup_counted, 60, "the warmup function's invocation to be counted")
    assert total(m, "sensorpulse_invocations_total", function="warmup", outcome="succeeded") == 1
    assert total(m, "sensorpulse_invocations_total", function="warmup", outcome="failed") == 0


def app_log_lines(host: DevhostProcess) -> list[dict[str, Any]]:
    """Every line after the start-up banner must be one JSON object."""
    output = "".join(host.output)
    after_banner = output.split("(Ctrl-C to stop)\n", 1)[1]
    return [json.loads(line) for line in after_banner.splitlines() if line.strip()]


def test_log_lines_are_json_with_the_invocation_and_its_ids(devhost: DevhostProcess, known_run: Samples) -> None:
    lines = app_log_lines(devhost)
    summarised = [line for line in lines if line.get("event") == "summarised"]
    assert {line["source"] for line in summarised} == {"cosmos-readings", "eventhub-telemetry"}
    for line in summarised:
        assert line["level"] == "INFO"
        assert len(str(line["invocation_id"])) == 36
        assert line["function"] in ("summarise_readings", "summarise_events")
        assert isinstance(line["readings"], int)
        assert datetime.fromisoformat(str(line["time"])).tzinfo is not None
    from_hub = [line for line in summarised if line["source"] == "eventhub-telemetry"]
    assert all(0 <= line["first_sequence_number"] <= line["last_sequence_number"] for line in from_hub)
    ids = [line["invocation_id"] for line in summarised]
    assert len(ids) == len(set(ids))
    letters = [line for line in lines if line.get("event") == "dead_letter"]
    assert {line["reason"] for line in letters} == {"value must be a finite number", "event body is not JSON"}
    nan = next(line for line in letters if line["reason"] == "value must be a finite number")
    assert nan["sensor_id"] == "hub-sensor" and nan["reading_id"] == "hub-sensor-99"
    assert nan["function"] == "summarise_events"
    refused = [line for line in lines if line.get("event") == "ingest_refused"]
    assert refused and refused[0]["status"] == 400 and refused[0]["function"] == "post_readings"


def test_a_status_line_reports_progress_periodically(devhost: DevhostProcess, known_run: Samples) -> None:
    summaries = int(total(scrape(devhost), "sensorpulse_summaries_written_total"))

    def latest_status() -> dict[str, Any] | None:
        statuses = [line for line in app_log_lines(devhost) if line.get("event") == "status"]
        return statuses[-1] if statuses and statuses[-1]["summaries"] == summaries else None

    status = wait_for(latest_status, 10, f"a status line counting the run's {summaries} summaries")
    assert status["dead_letters"] == 2
    assert status["failed_invocations"] == 0
    assert "readings/s" in status["message"]


def test_ready_checks_every_backend_and_health_stays_cheap(devhost: DevhostProcess) -> None:
    status, _, body = devhost.get("/api/ready")
    assert status == 200, body
    ready = json.loads(body)
    assert ready["status"] == "ready"
    assert set(ready["checks"]) == {"documents", "state", f"eventhub:{HUB}"}
    assert all(check["status"] == "ok" for check in ready["checks"].values())
    assert all(math.isfinite(check["ms"]) for check in ready["checks"].values())
    status, _, body = devhost.get("/api/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
