"""The series page of a sensor, called as the host calls it, over a temporary store, read as a browser reads it."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import pytest
from PIL import Image

from shared.app import services
from shared.dashboard.reader import IMMUTABLE
from shared.storage.names import READINGS
from tests.component.conftest import Handler
from tests.component.series_rig import Element, get, parse_html, reading, seed, table_rows

SENSOR = "sensor-01"


def page(handlers: dict[str, Handler], sensor_id: str = SENSOR, **params: str) -> func.HttpResponse:
    return get(handlers["series_page"], f"sensors/{sensor_id}", params, {"sensor_id": sensor_id})


def document(response: func.HttpResponse, status: int = 200) -> tuple[str, Element]:
    assert response.status_code == status, response.get_body()[:300]
    assert (response.mimetype, response.charset) == ("text/html", "utf-8")
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_body().decode("utf-8")
    return text, parse_html(text)


def tiles(handlers: dict[str, Handler]) -> dict[str, dict[str, Any]]:
    answer = get(handlers["sensor_series"], f"api/sensors/{SENSOR}", {}, {"sensor_id": SENSOR})
    return {tile["metric"]: tile for tile in json.loads(answer.get_body())["series"]}


def section(root: Element, metric: str) -> Element:
    return root.one("section", data_metric=metric)


@pytest.fixture
def sensor(app_on_temp_store: Path) -> None:
    """sensor-01: 60 temperature readings (20 + s °C) and 5 of humidity (40 + s %), one a second."""
    seed(SENSOR, range(60))
    seed(SENSOR, range(5), metric="humidity", unit="%", base=40.0)


@pytest.mark.usefixtures("sensor")
def test_the_page_shows_every_series_with_its_latest_figures_and_status(handlers: dict[str, Handler]) -> None:
    text, root = document(page(handlers))

    assert root.one("h1").text() == SENSOR
    assert root.one("title").text().startswith(SENSOR)
    assert root.one("a", class_="back").attrs["href"] == "../"  # the dashboard, also under a path prefix
    shown = [s.attrs["data-metric"] for s in root.all("section", class_="series")]
    assert shown == ["humidity", "temperature"]
    for metric, tile in tiles(handlers).items():
        latest = tile["latest"]
        part = section(root, metric)
        figures = {b.attrs["data-f"]: b.text() for b in part.all("b")}
        assert figures == {
            "min": f"{latest['min']:.1f}",
            "avg": f"{latest['avg']:.1f}",
            "max": f"{latest['max']:.1f}",
            "count": str(latest["count"]),
        }
        assert part.one("span", class_="state").text() == tile["status"] == "stale"  # silent for 30 min
        assert "stale" in part.one("span", class_="dot").attrs["class"].split()
        updated = part.one("time", class_="ago")
        assert updated.attrs["datetime"] == latest["computed_at"]
        assert updated.text().endswith(" s ago")
    assert section(root, "temperature").one("p", class_="stats").text().count("°C") == 1
    assert 'onclick="' not in text and "onerror" not in text  # no inline handlers


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_series_that_reports_as_usual_is_ok(handlers: dict[str, Handler]) -> None:
    docs = [reading("boiler-1", second, 21.5) for second in (600, 1200, 1800)]  # every 10 min, the last now
    services().stores.documents.upsert_many(READINGS, docs)
    services().summariser.apply(docs, source="test")

    _, root = document(page(handlers, "boiler-1"))

    part = section(root, "temperature")
    assert part.one("span", class_="state").text() == "ok"
    assert "ok" in part.one("span", class_="dot").attrs["class"].split()


@pytest.mark.usefixtures("sensor")
def test_each_series_has_a_large_chart_of_the_current_version_with_its_figures_in_the_alt_text(
    handlers: dict[str, Handler],
) -> None:
    _, root = document(page(handlers))
    temperature = tiles(handlers)["temperature"]
    latest = temperature["latest"]

    image = section(root, "temperature").one("img", class_="chart")

    version = temperature["charts"]["1h"]
    src = f"../api/plots/{SENSOR}.png?metric=temperature&range=1h&size=large&v={version}"
    assert image.attrs["src"] == src
    assert image.attrs["srcset"] == src + "&scale=2 2x"
    assert (image.attrs["width"], image.attrs["height"]) == ("1200", "420")
    assert image.attrs["alt"] == (
        f"temperature of {SENSOR} over the last 1 hour; "
        f"latest min {latest['min']:.1f}, avg {latest['avg']:.1f}, max {latest['max']:.1f} °C"
    )
    # The version is the current one: the chart route answers that URL as immutable.
    etag, cache_control, _ = services().dashboard.chart_etag(SENSOR, "temperature", 1, "1h", "large", version)
    assert cache_control == IMMUTABLE


@pytest.mark.usefixtures("sensor")
def test_the_large_chart_url_answers_a_1200_by_420_png(handlers: dict[str, Handler]) -> None:
    _, root = document(page(handlers))
    src = section(root, "temperature").one("img", class_="chart").attrs["src"]
    url = urlsplit(src)
    query = {name: values[0] for name, values in parse_qs(url.query).items()}

    chart = get(handlers["sensor_chart"], url.path.removeprefix("../"), query, {"sensor_id": SENSOR})

    assert chart.status_code == 200
    assert chart.headers["Cache-Control"] == IMMUTABLE
    with Image.open(io.BytesIO(chart.get_body())) as png:
        assert png.size == (1200, 420)


@pytest.mark.usefixtures("sensor")
def test_the_tables_hold_the_latest_summaries_and_readings(handlers: dict[str, Handler]) -> None:
    _, root = document(page(handlers))
    summaries = json.loads(
        get(
            handlers["list_summaries"],
            f"api/sensors/{SENSOR}/summaries",
            {"metric": "temperature", "limit": "20"},
            {"sensor_id": SENSOR},
        ).get_body()
    )
    part = section(root, "temperature")

    summary_table = part.one("table", class_="summaries")
    readings_table = part.one("table", class_="readings")

    assert "summaries of temperature" in summary_table.one("caption").text()
    assert [th.text() for th in summary_table.all("th", scope="col")] == ["Window end", "Count", "Min", "Avg", "Max"]
    assert table_rows(summary_table) == [
        [
            s["window_end"][:19].replace("T", " "),
            str(s["count"]),
            f"{s['min']:.2f}",
            f"{s['avg']:.2f}",
            f"{s['max']:.2f}",
        ]
        for s in summaries
    ]
    assert len(summaries) == 20
    assert "readings of temperature" in readings_table.one("caption").text()
    assert [th.text() for th in readings_table.all("th", scope="col")] == ["Time", "Value", "Unit", "Source"]
    rows = table_rows(readings_table)
    assert len(rows) == 50  # the latest 50 of 60, newest first
    newest = reading(SENSOR, 59, 79.0)
    assert rows[0] == [newest["timestamp"][:19].replace("T", " "), "79", "°C", "rig"]
    assert rows[-1][1] == str(20 + 10)
    assert len(table_rows(section(root, "humidity").one("table", class_="readings"))) == 5


@pytest.mark.usefixtures("sensor")
@pytest.mark.parametrize(
    ("chosen", "label", "hours"), [(None, "1 hour", 1), ("7d", "7 days", 168), ("10m", "10 min", 1 / 6)]
)
def test_the_range_choice_sets_the_charts_and_the_downloads(
    handlers: dict[str, Handler], chosen: str | None, label: str, hours: float
) -> None:
    before = datetime.now(UTC)
    _, root = document(page(handlers, **({"range": chosen} if chosen else {})))
    name = chosen or "1h"
    temperature = tiles(handlers)["temperature"]

    radios = {r.attrs["value"]: "checked" in r.attrs for r in root.one("fieldset", id="range").all("input")}
    assert radios == {r: r == name for r in ("10m", "1h", "1d", "7d")}
    image = section(root, "temperature").one("img", class_="chart")
    assert f"&range={name}&size=large&v={temperature['charts'][name]}" in image.attrs["src"]
    assert f"over the last {label};" in image.attrs["alt"]
    links = {a.attrs["data-csv"]: a for a in section(root, "temperature").all("a", class_="csv")}
    assert sorted(links) == ["readings", "summaries"]
    for kind, link in links.items():
        assert f"last {label}" in link.text()
        url = urlsplit(link.attrs["href"])
        assert url.path == f"../api/sensors/{SENSOR}/{kind}.csv"
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        start, end = (datetime.fromisoformat(query[key]) for key in ("from", "to"))
        assert query["metric"] == "temperature"
        assert end - start == timedelta(hours=hours)
        assert before - timedelta(seconds=1) <= end <= datetime.now(UTC)
        # The link answers: the readings of the range, which holds every reading seeded (at most 30 min ago).
        download = get(handlers[f"{kind}_csv"], url.path.removeprefix("../"), query, {"sensor_id": SENSOR})
        assert download.status_code == 200 and download.mimetype == "text/csv"
        if chosen != "10m":
            assert len(download.get_body().decode().splitlines()) == 61  # the header and 60 rows


@pytest.mark.usefixtures("app_on_temp_store")
def test_a_hostile_unit_or_source_is_shown_as_text_never_markup(handlers: dict[str, Handler]) -> None:
    unit, source = "<i>\"&'</i>", "<script>x()</script>"
    docs = [reading(SENSOR, s, 1.0 + s, metric="pressure_x", unit=unit, source=source) for s in range(3)]
    services().stores.documents.upsert_many(READINGS, docs)
    services().summariser.apply(docs, source="test")

    text, root = document(page(handlers))

    assert "<i>" not in text and "<script>x" not in text
    part = section(root, "pressure_x")
    assert part.attrs["data-unit"] == unit
    assert part.one("span", class_="unit").text() == unit
    assert part.one("img", class_="chart").attrs["alt"].endswith(f"max 3.0 {unit}")
    assert unit in part.one("table", class_="summaries").one("caption").text()
    assert [row[2:] for row in table_rows(part.one("table", class_="readings"))] == [[unit, source]] * 3
    assert part.one("h2").text() == "pressure x"


@pytest.mark.usefixtures("sensor")
def test_an_unknown_sensor_is_a_404_page_with_the_way_back(handlers: dict[str, Handler]) -> None:
    _, root = document(page(handlers, "boiler-9"), 404)

    assert root.one("h1").text() == "Unknown sensor"
    assert "boiler-9" in root.one("main").text()
    assert root.all("a", href="../")
    assert root.all("section") == []


@pytest.mark.usefixtures("sensor")
@pytest.mark.parametrize(
    ("sensor_id", "params", "reason"),
    [("bad id!", {}, "sensor_id must be"), ("-leading", {}, "sensor_id must be"), (SENSOR, {"range": "2w"}, "range")],
)
def test_a_malformed_sensor_id_or_range_is_a_400_page_saying_why(
    handlers: dict[str, Handler], sensor_id: str, params: dict[str, str], reason: str
) -> None:
    _, root = document(page(handlers, sensor_id, **params), 400)

    assert reason in root.one("main").text()
    assert root.all("a", href="../")
