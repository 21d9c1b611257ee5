"""The dashboard's HTTP functions, called as the host calls them, over a temporary embedded store."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from PIL import Image

from shared.app import services
from shared.dashboard.page import render_page
from shared.intake.devices import Sighting
from tests.component.conftest import Handler

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
SENSORS = ("sensor-01", "sensor-02", "lab.3:north")


@pytest.fixture(autouse=True)
def _readings_of_2024(historic_readings: None) -> None:
    """The readings here are of May 2024 (autouse: set before app_on_temp_store builds the services)."""


def reading(sensor_id: str, second: int, value: float) -> dict[str, object]:
    return {
        "id": f"{sensor_id}-{second:04d}",
        "sensor_id": sensor_id,
        "metric": "temperature",
        "value": value,
        "unit": "°C",
        "timestamp": (T0 + timedelta(seconds=second)).isoformat(),
    }


def seed(seconds: range, sensors: tuple[str, ...] = SENSORS) -> None:
    """One batch per second, as the change feed would deliver them: one new summary per sensor each time."""
    for second in seconds:
        batch = [reading(sensor, second, 20.0 + second + n) for n, sensor in enumerate(sensors)]
        services().summariser.apply(batch, source="test")


def get(
    handler: Handler,
    url: str,
    params: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> func.HttpResponse:
    request = func.HttpRequest(
        method="GET",
        url=f"http://localhost/{url}",
        headers=headers or {},
        params=params or {},
        route_params=route_params or {},
        body=b"",
    )
    return handler(request)


def first_page(response: func.HttpResponse) -> Any:
    """The listing page the dashboard page carries for its first paint."""
    page = response.get_body().decode("utf-8")
    return json.loads(page.split('<script id="first-page" type="application/json">', 1)[1].split("</script>", 1)[0])


def body_json(response: func.HttpResponse) -> Any:
    assert response.mimetype == "application/json"
    return json.loads(response.get_body())


def summaries(handlers: dict[str, Handler], sensor_id: str, **params: str) -> func.HttpResponse:
    return get(handlers["list_summaries"], f"api/sensors/{sensor_id}/summaries", params, {"sensor_id": sensor_id})


def chart(
    handlers: dict[str, Handler], sensor_id: str, headers: dict[str, str] | None = None, **params: str
) -> func.HttpResponse:
    return get(handlers["sensor_chart"], f"api/plots/{sensor_id}.png", params, {"sensor_id": sensor_id}, headers)


def test_sensors_lists_every_series_with_its_latest_summary(
    handlers: dict[str, Handler], app_on_temp_store: Path
) -> None:
    seed(range(8))
    assert (app_on_temp_store / "sensorpulse.db").is_file()  # the app really runs on the temporary store

    response = get(handlers["list_sensors"], "api/sensors")

    assert response.status_code == 200
    answer = body_json(response)
    series = answer["items"]
    assert (answer["total"], answer["next_cursor"]) == (len(SENSORS), None)
    assert [s["sensor_id"] for s in series] == sorted(SENSORS)
    by_sensor = {s["sensor_id"]: s for s in series}
    first = by_sensor["sensor-01"]
    assert (first["metric"], first["unit"]) == ("temperature", "°C")
    # Window of 5 over 20..27: the newest five are 23..27.
    assert (first["latest"]["count"], first["latest"]["min"], first["latest"]["max"]) == (5, 23.0, 27.0)
    assert first["latest"]["window_end"] == "2024-05-01T10:00:07.000Z"
    assert first["interval_seconds"] == 1.0
    assert by_sensor["sensor-02"]["latest"]["max"] == 28.0
    assert by_sensor["lab.3:north"]["location"] == "lab"


@pytest.mark.usefixtures("app_on_temp_store")
def test_no_sensors_before_the_first_summary(handlers: dict[str, Handler]) -> None:
    response = get(handlers["list_sensors"], "api/sensors")
    page = get(handlers["dashboard_page"], "")

    assert response.status_code == 200
    assert body_json(response) == {"items": [], "next_cursor": None, "total": 0, "stale": 0}
    assert page.status_code == 200
    assert first_page(page)["items"] == []


@pytest.mark.usefixtures("app_on_temp_store")
def test_summaries_are_newest_first_with_ids_and_a_limit(handlers: dict[str, Handler]) -> None:
    seed(range(8))

    default = summaries(handlers, "sensor-01")
    three = summaries(handlers, "sensor-01", limit="3")

    assert default.status_code == 200
    listed = body_json(default)
    assert len(listed) == 8  # one summary per batch
    ends = [s["window_end"] for s in listed]
    assert ends == sorted(ends, reverse=True)
    assert ends[0] == "2024-05-01T10:00:07.000Z"
    assert all(isinstance(s["id"], str) and s["id"] for s in listed)
    assert len({s["id"] for s in listed}) == 8
    assert all(s["sensor_id"] == "sensor-01" for s in listed)
    assert not any(key.startswith("_") or key == "ttl" for s in listed for key in s)  # storage fields stay in
    assert body_json(three) == listed[:3]
    tiles = body_json(get(handlers["list_sensors"], "api/sensors"))["items"]
    latest = {s["sensor_id"]: s["latest"] for s in tiles}
    assert listed[0] == latest["sensor-01"]


@pytest.mark.usefixtures("app_on_temp_store")
@pytest.mark.parametrize("limit", ["0", "-1", "abc", "100000", "501", "2.5", ""])
def test_a_bad_limit_is_a_400_with_a_reason(handlers: dict[str, Handler], limit: str) -> None:
    seed(range(2))

    response = summaries(handlers, "sensor-01", limit=limit)

    assert response.status_code == 400
    assert "limit" in body_json(response)["error"]


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_bad_metric_is_a_400(handlers: dict[str, Handler]) -> None:
    seed(range(2))

    assert summaries(handlers, "sensor-01", metric="Temp;drop").status_code == 400
    assert chart(handlers, "sensor-01", metric="Temp;drop").status_code == 400
    assert "metric" in body_json(summaries(handlers, "sensor-01", metric="Temp;drop"))["error"]


@pytest.mark.usefixtures("app_on_temp_store")
def test_an_unknown_sensor_is_a_404(handlers: dict[str, Handler]) -> None:
    seed(range(2))

    for response in (
        summaries(handlers, "sensor-99"),
        chart(handlers, "sensor-99"),
        summaries(handlers, "sensor-01", metric="humidity"),  # a known sensor, an unknown series
        chart(handlers, "sensor-01", metric="humidity"),
    ):
        assert response.status_code == 404
        assert "no summaries" in body_json(response)["error"]


@pytest.mark.usefixtures("app_on_temp_store")
@pytest.mark.parametrize("sensor_id", ["s" * 65, "<b>x", "has space", "-leading-dash", "a/b", ""])
def test_an_invalid_sensor_id_is_a_400(handlers: dict[str, Handler], sensor_id: str) -> None:
    seed(range(1))

    for response in (summaries(handlers, sensor_id), chart(handlers, sensor_id)):
        assert response.status_code == 400
        assert "sensor_id" in body_json(response)["error"]


@pytest.mark.usefixtures("app_on_temp_store")
def test_the_chart_is_a_png_of_the_documented_size(handlers: dict[str, Handler]) -> None:
    seed(range(4))

    normal = chart(handlers, "sensor-01")
    sharp = chart(handlers, "sensor-01", scale="2")

    assert normal.status_code == 200
    assert normal.mimetype == "image/png"
    assert Image.open(io.BytesIO(normal.get_body())).size == (640, 260)
    assert sharp.status_code == 200
    assert Image.open(io.BytesIO(sharp.get_body())).size == (1280, 520)
    assert normal.headers.get("ETag")
    assert normal.headers["ETag"] != sharp.headers["ETag"]
    assert chart(handlers, "sensor-01", scale="4").status_code == 400
    assert chart(handlers, "sensor-01", scale="0").status_code == 400


@pytest.mark.usefixtures("app_on_temp_store")
def test_the_chart_etag_answers_304_until_a_new_summary_arrives(handlers: dict[str, Handler]) -> None:
    seed(range(3))
    first = chart(handlers, "sensor-01")
    etag = first.headers["ETag"]

    unchanged = chart(handlers, "sensor-01", headers={"If-None-Match": etag})
    among_others = chart(handlers, "sensor-01", headers={"If-None-Match": f'"something-else", {etag}'})
    other_tag = chart(handlers, "sensor-01", headers={"If-None-Match": '"something-else"'})

    assert unchanged.status_code == 304
    assert unchanged.get_body() == b""
    assert unchanged.headers["ETag"] == etag
    assert among_others.status_code == 304
    assert other_tag.status_code == 200
    assert other_tag.get_body() == first.get_body()

    seed(range(3, 4))
    after = chart(handlers, "sensor-01", headers={"If-None-Match": etag})

    assert after.status_code == 200
    assert after.headers["ETag"] != etag
    assert after.get_body() != first.get_body()
    assert Image.open(io.BytesIO(after.get_body())).size == (640, 260)
    assert chart(handlers, "sensor-01", headers={"If-None-Match": after.headers["ETag"]}).status_code == 304


@pytest.mark.usefixtures("app_on_temp_store")
def test_the_page_carries_the_first_page_of_tiles_for_the_view_in_its_address(handlers: dict[str, Handler]) -> None:
    seed(range(3))

    response = get(handlers["dashboard_page"], "")
    filtered = get(handlers["dashboard_page"], "", {"q": "NORTH", "sort": "newest", "range": "1h"})

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    assert [t["sensor_id"] for t in first_page(response)["items"]] == sorted(SENSORS)
    assert [t["sensor_id"] for t in first_page(filtered)["items"]] == ["lab.3:north"]
    assert 'value="1h" data-label="1 hour" data-refresh="30" checked' in filtered.get_body().decode()


@pytest.mark.usefixtures("app_on_temp_store")
@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"group": "building"}, "group must be one of none, location, metric"),
        ({"sort": "oldest"}, "sort must be one of name, newest, stalest"),
        ({"range": "7d"}, "range must be one of 10m, 1h, 1d on this page"),
        ({"cursor": "not-a-cursor"}, "cursor is not one this listing gave out"),
    ],
)
def test_a_page_address_with_a_bad_view_is_a_400_with_the_reason(
    handlers: dict[str, Handler], params: dict[str, str], reason: str
) -> None:
    response = get(handlers["dashboard_page"], "", params)

    assert response.status_code == 400
    assert body_json(response) == {"error": reason}


def test_data_in_the_embedded_first_page_cannot_close_its_script_element() -> None:
    crafted = {"items": [{"sensor_id": "x", "unit": "</script><script>alert(1)</script>&"}], "total": 1}

    page = render_page(crafted, "10m", {"10m": 5, "1h": 30, "1d": 300, "7d": 1800})

    embedded = page.split('<script id="first-page" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert "<" not in embedded
    assert json.loads(embedded) == crafted


@pytest.mark.usefixtures("app_on_temp_store")
def test_devices_lists_every_device_seen_newest_first(handlers: dict[str, Handler]) -> None:
    assert body_json(get(handlers["list_devices"], "api/devices")) == {"count": 0, "devices": []}
    services().devices.record(
        [
            Sighting("pc-0001", "microshare", T0),
            Sighting("thermo/7", "iothub", T0 + timedelta(minutes=5)),
            Sighting("pc-0001", "microshare", T0 + timedelta(minutes=2)),
        ]
    )

    response = get(handlers["list_devices"], "api/devices")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert body_json(response) == {
        "count": 2,
        "devices": [
            {
                "device_id": "thermo/7",
                "source": "iothub",
                "first_seen": "2024-05-01T10:05:00.000Z",
                "last_seen": "2024-05-01T10:05:00.000Z",
                "count": 1,
            },
            {
                "device_id": "pc-0001",
                "source": "microshare",
                "first_seen": "2024-05-01T10:00:00.000Z",
                "last_seen": "2024-05-01T10:02:00.000Z",
                "count": 2,
            },
        ],
    }


@pytest.mark.usefixtures("app_on_temp_store")
def test_health_answers_200(handlers: dict[str, Handler]) -> None:
    response = get(handlers["health"], "api/health")

    assert response.status_code == 200
    assert body_json(response)["status"] == "ok"
