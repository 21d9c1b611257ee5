"""`make run MICROSHARE=demo` as a user meets it: Microshare stand-in -> forwarder -> embedded hub -> Event Hub
trigger -> occupancy series and devices on the dashboard's API."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.devhost_process import DevhostProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    data_dir: Path = tmp_path_factory.mktemp("demo")
    host = DevhostProcess(data_dir, {"SENSOR_COUNT": "2"}, extra_args=["--microshare", "demo"])
    try:
        yield host
    finally:
        host.kill()


def post(host: DevhostProcess, path: str) -> int:
    request = urllib.request.Request(host.base_url + path, data=b"{}", method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def occupancy_series(host: DevhostProcess) -> list[dict[str, Any]] | None:
    series: list[dict[str, Any]] = host.get_json("/api/sensors")["items"]
    found = [s for s in series if s["metric"] == "people_count" and s["latest"]]
    return found or None


def test_occupancy_from_the_stand_in_shows_beside_the_sensors_with_its_unit(demo: DevhostProcess) -> None:
    found = wait_for(lambda: occupancy_series(demo), 60, "occupancy series from the Microshare demo")
    assert all(s["unit"] == "people" for s in found)
    assert all(s["sensor_id"].startswith("Building-") for s in found)
    sensors = wait_for(
        lambda: [s for s in demo.get_json("/api/sensors")["items"] if s["metric"] == "temperature"] or None,
        60,
        "simulated sensors",
    )
    assert sensors


def test_the_devices_that_sent_events_are_listed(demo: DevhostProcess) -> None:
    # The demo's 3 buildings x 4 counters; their events may reach the hub trigger in more than one batch.
    listing = wait_for(lambda: (d := demo.get_json("/api/devices")) and d["count"] >= 12 and d, 60, "12 devices")
    assert listing["count"] == len(listing["devices"]) == 12
    device = listing["devices"][0]
    assert device["source"] == "microshare" and device["count"] >= 1
    assert device["first_seen"] <= device["last_seen"]


def test_a_timer_function_can_be_run_now_through_the_admin_route(demo: DevhostProcess) -> None:
    assert post(demo, "/admin/functions/forward_people_counter") == 202
    assert post(demo, "/admin/functions/no_such_function") == 404
    wait_for(
        lambda: sum("forwarded io.microshare.peoplecounter" in line for line in demo.output) >= 2 or None,
        30,
        "the second people-counter run",
    )
