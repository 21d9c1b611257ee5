"""The fleet listing and versioned charts over HTTP, called as the host calls them, on a temporary embedded store:
paging a fleet larger than a page, polls that cost a 304 when nothing changed, and chart URLs that name their
version so every viewer shares one render and browsers keep it."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from shared.app import services
from shared.dashboard.reader import IMMUTABLE
from shared.readings.rules import DEFAULT_METRICS
from tests.component.conftest import Handler
from tests.component.test_dashboard_api import body_json, get


def readings(sensor_id: str, count: int, step: float = 10.0, metric: str = "temperature") -> list[dict[str, Any]]:
    """`count` readings `step` seconds apart, the newest a second ago: not stale for another 3 steps."""
    now = datetime.now(UTC)
    return [
        {
            "id": f"{sensor_id}-{metric}-{n}",
            "sensor_id": sensor_id,
            "metric": metric,
            "value": 20.0 + n,
            "unit": DEFAULT_METRICS[metric].unit,
            "timestamp": (now - timedelta(seconds=1 + step * (count - 1 - n))).isoformat(),
        }
        for n in range(count)
    ]


def listing(handlers: dict[str, Handler], **params: str) -> Any:
    return get(handlers["list_sensors"], "api/sensors", params)


def chart(handlers: dict[str, Handler], sensor_id: str, **params: str) -> Any:
    return get(handlers["sensor_chart"], f"api/plots/{sensor_id}.png", params, {"sensor_id": sensor_id})


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_fleet_larger_than_a_page_is_listed_page_by_page_each_series_once(handlers: dict[str, Handler]) -> None:
    sensors = [f"sensor-{n:03d}" for n in range(130)]
    services().summariser.apply([r for s in sensors for r in readings(s, 2)], source="test")

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "50", **({"cursor": cursor} if cursor else {})}
        answer = body_json(listing(handlers, **params))
        seen += [t["sensor_id"] for t in answer["items"]]
        assert answer["total"] == 130
        pages += 1
        cursor = answer["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert seen == sensors
    assert len(body_json(listing(handlers))["items"]) == 50  # the default page, not the fleet


@pytest.mark.usefixtures("app_on_temp_store")
def test_filter_group_and_sort_apply_to_the_whole_fleet(handlers: dict[str, Handler]) -> None:
    summariser = services().summariser
    summariser.apply(readings("HQ.Floor-1.Zone-A", 3, metric="people_count"), source="test")
    summariser.apply(readings("HQ.Floor-2.Zone-B", 3, metric="people_count"), source="test")
    summariser.apply(readings("lab-01", 3, step=30.0), source="test")  # the oldest first reading
    summariser.apply(readings("lab-02", 3), source="test")

    by_location = body_json(listing(handlers, group="location"))
    floor_two = body_json(listing(handlers, q="floor-2"))
    counts = body_json(listing(handlers, metric="people_count", limit="1"))

    assert [(t["group"], t["sensor_id"]) for t in by_location["items"]] == [
        ("", "lab-01"),
        ("", "lab-02"),
        ("HQ.Floor-1", "HQ.Floor-1.Zone-A"),
        ("HQ.Floor-2", "HQ.Floor-2.Zone-B"),
    ]
    assert by_location["groups"] == [
        {"name": "", "count": 2, "stale": 0},
        {"name": "HQ.Floor-1", "count": 1, "stale": 0},
        {"name": "HQ.Floor-2", "count": 1, "stale": 0},
    ]
    assert [t["sensor_id"] for t in floor_two["items"]] == ["HQ.Floor-2.Zone-B"]
    assert (counts["total"], len(counts["items"]), counts["next_cursor"] is not None) == (2, 1, True)
    assert all(t["status"] == "ok" for t in by_location["items"])


@pytest.mark.usefixtures("app_on_temp_store")
@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"limit": "0"}, "limit must be a whole number from 1 to 500"),
        ({"limit": "501"}, "limit must be a whole number from 1 to 500"),
        ({"cursor": "garbage"}, "cursor is not one this listing gave out"),
        ({"sort": "size"}, "sort must be one of name, newest, stalest"),
        ({"group": "floor"}, "group must be one of none, location, metric"),
        ({"metric": "bad metric"}, "metric"),
    ],
)
def test_a_bad_listing_parameter_is_a_400_with_the_reason(
    handlers: dict[str, Handler], params: dict[str, str], reason: str
) -> None:
    response = listing(handlers, **params)

    assert response.status_code == 400
    assert reason in body_json(response)["error"]


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_cursor_from_another_sort_is_a_400_saying_to_start_again(handlers: dict[str, Handler]) -> None:
    services().summariser.apply([r for s in ("a1", "a2", "a3") for r in readings(s, 1)], source="test")
    cursor = body_json(listing(handlers, limit="1"))["next_cursor"]

    response = listing(handlers, limit="1", cursor=cursor, sort="newest")

    assert response.status_code == 400
    assert "start without it" in body_json(response)["error"]


@pytest.mark.usefixtures("app_on_temp_store")
@pytest.mark.parametrize(("route", "url"), [("list_sensors", "api/sensors"), ("overview", "api/overview")])
def test_a_poll_when_nothing_changed_is_an_empty_304_until_a_new_summary(
    handlers: dict[str, Handler], route: str, url: str
) -> None:
    summariser = services().summariser
    summariser.apply(readings("s1", 3), source="test")
    first = get(handlers[route], url)
    etag = first.headers["ETag"]

    again = get(handlers[route], url, headers={"If-None-Match": etag})
    summariser.apply(
        [{**readings("s1", 1)[0], "id": "s1-new", "value": 99.0, "timestamp": datetime.now(UTC).isoformat()}],
        source="test",
    )
    services().dashboard._snapshot = None  # the listing's half-second scan cache, as if that time had passed
    changed = get(handlers[route], url, headers={"If-None-Match": etag})

    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-cache"
    assert (again.status_code, again.get_body(), again.headers["ETag"]) == (304, b"", etag)
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


@pytest.mark.usefixtures("app_on_temp_store")
def test_one_sensor_lists_every_metric_and_an_unknown_one_is_a_404(handlers: dict[str, Handler]) -> None:
    summariser = services().summariser
    summariser.apply(readings("room-1", 2) + readings("room-1", 2, metric="humidity"), source="test")

    found = get(handlers["sensor_series"], "api/sensors/room-1", route_params={"sensor_id": "room-1"})
    unknown = get(handlers["sensor_series"], "api/sensors/room-9", route_params={"sensor_id": "room-9"})
    bad = get(handlers["sensor_series"], "api/sensors/x y", route_params={"sensor_id": "x y"})

    assert [t["metric"] for t in body_json(found)["series"]] == ["humidity", "temperature"]
    assert unknown.status_code == 404 and "room-9" in body_json(unknown)["error"]
    assert bad.status_code == 400


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_versioned_chart_is_rendered_once_for_every_viewer_and_kept_by_browsers(
    handlers: dict[str, Handler],
) -> None:
    services().summariser.apply(readings("s1", 4), source="test")
    (tile,) = body_json(listing(handlers))["items"]
    version = str(tile["charts"]["10m"])
    renders = services().metrics.chart_renders.labels("10m")
    before = renders._value.get()

    answers = [chart(handlers, "s1", range="10m", v=version) for _ in range(20)]

    assert {a.status_code for a in answers} == {200}
    assert {a.headers["Cache-Control"] for a in answers} == {IMMUTABLE}
    assert len({a.get_body() for a in answers}) == 1
    assert renders._value.get() - before == 1
    assert Image.open(io.BytesIO(answers[0].get_body())).size == (640, 260)


@pytest.mark.usefixtures("app_on_temp_store")
def test_an_outdated_version_gets_the_current_chart_which_browsers_must_not_keep(handlers: dict[str, Handler]) -> None:
    services().summariser.apply(readings("s1", 4), source="test")
    (tile,) = body_json(listing(handlers))["items"]

    old = chart(handlers, "s1", range="10m", v=str(tile["charts"]["10m"] - 1))
    current = chart(handlers, "s1", range="10m", v=str(tile["charts"]["10m"]))

    assert old.status_code == 200
    assert old.headers["Cache-Control"] == "no-cache"
    assert current.headers["Cache-Control"] == IMMUTABLE


@pytest.mark.usefixtures("app_on_temp_store")
def test_the_chart_version_moves_once_per_refresh_period_not_with_every_summary(handlers: dict[str, Handler]) -> None:
    summariser = services().summariser
    start = datetime.fromtimestamp(
        int(datetime.now(UTC).timestamp()) // 300 * 300 - 300, UTC
    )  # a 1-day period boundary
    versions = []
    for second in (0, 2, 4, 6, 290, 301):
        summariser.apply(
            [
                {
                    "id": f"s1-{second}",
                    "sensor_id": "s1",
                    "metric": "temperature",
                    "value": 20.0,
                    "timestamp": (start + timedelta(seconds=second)).isoformat(),
                }
            ],
            source="test",
        )
        services().dashboard._snapshot = None
        versions.append(body_json(listing(handlers))["items"][0]["charts"])

    ten_minutes = [v["10m"] for v in versions]
    day = [v["1d"] for v in versions]
    assert ten_minutes[0] == ten_minutes[1] == ten_minutes[2] != ten_minutes[3]  # a new one every 5 s at most
    assert len(set(ten_minutes)) == 4
    assert day[:5] == [day[0]] * 5 and day[5] == day[0] + 1  # and every 5 min for the day


@pytest.mark.usefixtures("app_on_temp_store")
@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"range": "10m", "v": "abc"}, "v must be a chart version"),
        ({"v": "12"}, "v needs a range"),
        ({"range": "10m", "size": "huge"}, "size must be one of card, large"),
    ],
)
def test_a_bad_chart_parameter_is_a_400_with_the_reason(
    handlers: dict[str, Handler], params: dict[str, str], reason: str
) -> None:
    services().summariser.apply(readings("s1", 2), source="test")

    response = chart(handlers, "s1", **params)

    assert response.status_code == 400
    assert reason in json.loads(response.get_body())["error"]


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_version_drawn_before_it_was_superseded_is_still_answered_as_drawn(handlers: dict[str, Handler]) -> None:
    summariser = services().summariser
    summariser.apply(readings("s1", 4), source="test")
    (tile,) = body_json(listing(handlers))["items"]
    drawn = chart(handlers, "s1", range="10m", v=str(tile["charts"]["10m"]))

    later = datetime.now(UTC) + timedelta(seconds=30)  # well into another 5 s period
    summariser.apply([{**readings("s1", 1)[0], "id": "s1-later", "timestamp": later.isoformat()}], source="test")
    services().dashboard._snapshot = None
    (moved,) = body_json(listing(handlers))["items"]
    again = chart(handlers, "s1", range="10m", v=str(tile["charts"]["10m"]))

    assert moved["charts"]["10m"] > tile["charts"]["10m"]
    assert again.headers["Cache-Control"] == IMMUTABLE
    assert again.get_body() == drawn.get_body()  # what that URL named, not the newer chart
