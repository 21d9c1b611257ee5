"""Charts over a chosen time range (10 minutes, an hour, a day, a week) on the embedded store: the PNG route and
the page take the range, each range has its own chart and ETag, a wide range is redrawn at most every refresh_seconds,
and a day of summaries is drawn from bucketed points read incrementally, not re-read whole on every summary."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest
from PIL import Image

from shared.app import services
from shared.dashboard.charts.render import ChartPoint
from shared.dashboard.range_history import RANGES
from shared.dashboard.reader import DashboardReader
from shared.readings.reading import format_timestamp
from shared.readings.summariser import Summariser
from shared.storage.names import PARTITION_KEY_PATHS, SUMMARIES
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.state import SqliteStateStore
from tests.component.conftest import Handler
from tests.component.test_dashboard_api import T0, reading


def get(handler: Handler, url: str, params: dict[str, str], route: dict[str, str] | None = None) -> func.HttpResponse:
    request = func.HttpRequest(
        method="GET", url=f"http://localhost/{url}", headers={}, params=params, route_params=route or {}, body=b""
    )
    return handler(request)


def chart(handlers: dict[str, Handler], **params: str) -> func.HttpResponse:
    return get(handlers["sensor_chart"], "api/plots/s1.png", params, {"sensor_id": "s1"})


@pytest.mark.usefixtures("historic_readings", "app_on_temp_store")
def test_each_range_has_its_own_chart_and_etag_and_a_bad_range_is_a_400(handlers: dict[str, Handler]) -> None:
    summariser = services().summariser
    for second in range(0, 7200, 30):  # two hours, a summary every 30 s
        summariser.apply([reading("s1", second, 20.0 + (second // 600))], source="test")

    answers = {name: chart(handlers, range=name) for name in RANGES}
    latest = chart(handlers)
    sharp = chart(handlers, range="1d", scale="2")

    for name, answer in answers.items():
        assert answer.status_code == 200, name
        assert Image.open(io.BytesIO(answer.get_body())).size == (640, 260)
    assert len({a.headers["ETag"] for a in [*answers.values(), latest, sharp]}) == len(RANGES) + 2
    assert len({a.get_body() for a in [*answers.values(), latest]}) == len(RANGES) + 1
    assert Image.open(io.BytesIO(sharp.get_body())).size == (1280, 520)
    assert chart(handlers, range="1h").headers["ETag"] == answers["1h"].headers["ETag"]  # cached

    bad = chart(handlers, range="2h")
    assert bad.status_code == 400
    assert json.loads(bad.get_body())["error"] == "range must be one of 10m, 1h, 1d, 7d"


@pytest.mark.usefixtures("historic_readings", "app_on_temp_store")
def test_the_page_offers_the_card_ranges_with_their_refresh_and_keeps_the_chosen_one(
    handlers: dict[str, Handler],
) -> None:
    services().summariser.apply([reading("s1", 0, 21.0)], source="test")

    default = get(handlers["dashboard_page"], "", {}).get_body().decode()
    day = get(handlers["dashboard_page"], "", {"range": "1d"}).get_body().decode()
    bad = get(handlers["dashboard_page"], "", {"range": "week"})

    assert 'value="10m" data-label="10 min" data-refresh="5" checked' in default
    assert 'value="1d" data-label="1 day" data-refresh="300" checked' in day
    assert 'value="7d"' not in day  # the series page offers a week; a fleet of week charts is not worth drawing
    assert bad.status_code == 400
    assert "range must be one of" in json.loads(bad.get_body())["error"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Stands in for matplotlib: keeps what each render was asked to draw."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, points: list[ChartPoint], **options: Any) -> bytes:
        self.calls.append({"points": list(points), **options})
        return f"png {len(self.calls)}".encode()


class CountingDocuments(SqliteDocumentStore):
    def __init__(self, database: SqliteDatabase) -> None:
        super().__init__(database, PARTITION_KEY_PATHS)
        self.returned = 0

    def latest(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        found = super().latest(*args, **kwargs)
        self.returned += len(found)
        return found


def test_a_wide_range_is_redrawn_at_most_every_refresh_seconds(database: SqliteDatabase) -> None:
    documents, state = SqliteDocumentStore(database, PARTITION_KEY_PATHS), SqliteStateStore(database)
    summariser = Summariser(documents, state, window_size=5)
    clock, render = Clock(), Recorder()
    reader = DashboardReader(documents, state, render=render, clock=clock)
    summariser.apply([reading("s1", 0, 20.0)], source="test")

    first = reader.chart("s1", None, 1, "1h")
    summariser.apply([reading("s1", 20, 25.0)], source="test")  # a bucket of the hour is 15 s
    clock.now += reader.refresh_seconds["1h"] - 1
    held = reader.chart("s1", None, 1, "1h")
    close_up = reader.chart("s1", None, 1, "10m")  # another range: its own chart
    clock.now += 1
    redrawn = reader.chart("s1", None, 1, "1h")

    assert held == first
    assert reader.chart_etag("s1", None, 1, "1h")[0] == redrawn.etag
    assert redrawn.etag != first.etag and redrawn.png != first.png
    assert [len(c["points"]) for c in render.calls] == [1, 2, 2]
    assert close_up.png == b"png 2"
    assert render.calls[-1]["title"] == "s1 · temperature · last 1 hour"


def test_a_day_chart_reads_the_day_once_then_only_what_is_new(database: SqliteDatabase) -> None:
    documents, state = CountingDocuments(database), SqliteStateStore(database)
    summariser = Summariser(documents, state, window_size=10)
    clock, render = Clock(), Recorder()
    reader = DashboardReader(documents, state, render=render, clock=clock)
    # A day of summaries, one every 10 s (8,640), as the summariser would have written them one batch at a time;
    # then one reading through the summariser, so the series and its latest summary exist.
    day = [
        {
            "id": f"s1-{second}",
            "sensor_id": "s1",
            "metric": "temperature",
            "window_end": format_timestamp(T0 + timedelta(seconds=second)),
            "min": 15.0 + (second % 3600) / 200,
            "max": 16.0 + (second % 3600) / 200,
            "avg": 15.5 + (second % 3600) / 200,
        }
        for second in range(10, 86400, 10)
    ]
    documents.upsert_many(SUMMARIES, day)
    summariser.apply([reading("s1", 86390, 30.0)], source="test")

    documents.returned = 0
    reader.chart("s1", None, 1, "1d")
    full_read = documents.returned
    summariser.apply([reading("s1", 86400, 40.0)], source="test")
    clock.now += reader.refresh_seconds["1d"]
    documents.returned = 0
    reader.chart("s1", None, 1, "1d")
    increment = documents.returned

    drawn = render.calls[-1]
    end = T0 + timedelta(seconds=86400)
    assert full_read >= 8600
    assert increment <= 40  # the open bucket (6 minutes) and the new summary, not the day again
    assert len(drawn["points"]) <= 241
    assert drawn["points"][-1].max == 40.0 and drawn["points"][-1].time == end
    assert drawn["x_span"] == (end - timedelta(days=1), end)
    assert timedelta(minutes=18) <= drawn["max_gap"] <= timedelta(minutes=30)
