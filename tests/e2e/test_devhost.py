"""The whole slice as a user meets it: devhost runs the app, the simulator feeds the summariser, the
dashboard shows it."""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e.devhost_process import REPO, DevhostProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

SENSORS = ["sensor-01", "sensor-02", "sensor-03"]


@pytest.fixture(scope="module")
def devhost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    data_dir: Path = tmp_path_factory.mktemp("devhost")
    host = DevhostProcess(data_dir, {"SENSOR_COUNT": str(len(SENSORS)), "SIMULATOR_SCHEDULE": "*/1 * * * * *"})
    try:
        yield host
    finally:
        host.kill()


def _series_with_full_windows(host: DevhostProcess) -> list[dict[str, Any]] | None:
    series: list[dict[str, Any]] = host.get_json("/api/sensors")["items"]
    ready = [s for s in series if s["latest"] and s["latest"]["count"] >= 3]
    return series if {s["sensor_id"] for s in ready} == set(SENSORS) else None


def test_startup_lists_the_functions_and_urls(devhost: DevhostProcess) -> None:
    output = "".join(devhost.output)
    for name in ("simulate_sensors: timerTrigger", "summarise_readings: cosmosDBTrigger", "list_sensors: [GET]"):
        assert name in output
    assert f"{devhost.base_url.replace('127.0.0.1', 'localhost')}/api/sensors" in output


def test_every_simulated_sensor_gets_summaries(devhost: DevhostProcess) -> None:
    series = wait_for(lambda: _series_with_full_windows(devhost), 60, "summaries of every sensor")
    for entry in series:
        latest = entry["latest"]
        assert latest["sensor_id"] == entry["sensor_id"]
        assert 15.0 <= latest["min"] <= latest["avg"] <= latest["max"] <= 40.0
        history = devhost.get_json(f"/api/sensors/{entry['sensor_id']}/summaries?limit=5")
        assert history[0]["id"] == latest["id"]
        ends = [h["window_end"] for h in history]
        assert ends == sorted(ends, reverse=True)


def test_the_page_carries_a_tile_per_sensor_with_its_chart_version(devhost: DevhostProcess) -> None:
    wait_for(lambda: _series_with_full_windows(devhost), 60, "summaries of every sensor")
    status, headers, body = devhost.get("/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    page = body.decode()
    embedded = json.loads(page.split('<script id="first-page" type="application/json">', 1)[1].split("</script>")[0])
    assert [tile["sensor_id"] for tile in embedded["items"]] == SENSORS

    def current_chart_is_immutable(sensor: str) -> bool:
        (tile,) = devhost.get_json(f"/api/sensors/{sensor}")["series"]
        path = f"/api/plots/{sensor}.png?metric=temperature&range=10m&v={tile['charts']['10m']}"
        status, headers, _ = devhost.get(path)
        assert status == 200
        return "immutable" in headers["Cache-Control"]  # unless the version moved on in between: ask again

    for sensor in SENSORS:
        wait_for(functools.partial(current_chart_is_immutable, sensor), 30, f"{sensor}'s versioned chart")


def test_chart_is_a_png_of_the_right_size_and_revalidates_with_its_etag(devhost: DevhostProcess) -> None:
    wait_for(lambda: _series_with_full_windows(devhost), 60, "summaries of every sensor")
    status, headers, body = devhost.get("/api/plots/sensor-01.png")
    assert status == 200
    assert headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(body)).size == (640, 260)
    etag = headers["ETag"]
    status, headers, body = devhost.get("/api/plots/sensor-01.png", {"If-None-Match": etag})
    # A new summary may land between the two requests; then the chart is new and comes back whole.
    assert (status, body) == (304, b"") or (status == 200 and headers["ETag"] != etag)


def test_unknown_sensor_and_bad_input_get_json_errors(devhost: DevhostProcess) -> None:
    status, _, body = devhost.get("/api/sensors/no-such-sensor/summaries")
    assert status == 404
    assert "error" in json.loads(body)
    status, _, body = devhost.get("/api/sensors/sensor-01/summaries?limit=oops")
    assert status == 400
    assert "limit" in json.loads(body)["error"]
    status, _, _ = devhost.get("/no/such/route")
    assert status == 404


def test_sigterm_stops_devhost_cleanly(tmp_path: Path) -> None:
    host = DevhostProcess(tmp_path, {"SENSOR_COUNT": "1", "SIMULATOR_SCHEDULE": "*/1 * * * * *"})
    try:
        wait_for(lambda: host.get_json("/api/sensors")["items"], 30, "the first summary")
        assert host.stop() == 0
    finally:
        host.kill()


def test_a_malformed_setting_stops_start_up_with_its_name(tmp_path: Path) -> None:
    env = {**os.environ, "WINDOW_SIZE": "lots"}
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "--port", "0", "--data-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "WINDOW_SIZE must be a whole number" in result.stderr
