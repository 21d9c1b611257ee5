"""A sensor's series page in a real browser: Debian's Chromium, headless, driven by Playwright, against devhost.

What a user would notice: the page shows the sensor's figures and a large chart, the range choice changes the
chart and the address, a download link gives a CSV file of the readings, and the chart never goes blank while a
new version of it replaces the old.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from shared.readings.reading import format_timestamp
from tests.e2e.browser import WAIT_MS, PageLog, origin
from tests.e2e.devhost_process import DevhostProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

# The browser context of every test here (tests/e2e/conftest.py): a wider window, and downloads kept.
CONTEXT_OPTIONS = {"viewport": {"width": 1400, "height": 900}, "accept_downloads": True}
QUIET = {"AzureWebJobs.simulate_sensors.Disabled": "true"}  # only the readings the tests post
SOURCE = "browser-test"
SHOWN = "{:.1f}"

CHART_LOADED = """(range) => {
  const img = document.querySelector("section.series img.chart");
  return new URL(img.src).searchParams.get("range") === range && img.srcset.includes("range=" + range) &&
    img.complete && img.naturalWidth > 0;
}"""
# Records the chart's state right after every change of its src or srcset, and every 20 ms besides.
CHART_SAMPLER = """() => {
  const img = document.querySelector("section.series img.chart");
  window.__samples = [];
  const record = (why) => window.__samples.push(
    { why, src: img.src, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight });
  new MutationObserver(() => record("changed")).observe(img, { attributes: true, attributeFilter: ["src", "srcset"] });
  img.addEventListener("error", () => record("error"));
  window.__sampler = setInterval(() => record("tick"), 20);
  record("start");
}"""


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    process = DevhostProcess(tmp_path_factory.mktemp("series-browser"), QUIET)
    try:
        yield process
    finally:
        process.kill()


def post(host: DevhostProcess, sensor_id: str, readings: list[tuple[datetime, float]]) -> list[dict[str, Any]]:
    """Posts temperature readings and waits until the newest is summarised; returns them as stored."""
    body = [
        {
            "sensor_id": sensor_id,
            "metric": "temperature",
            "value": value,
            "timestamp": moment.isoformat(),
            "source": SOURCE,
        }
        for moment, value in readings
    ]
    status, answer = host.post_json("/api/readings", body)
    assert status == 201, answer
    ids = answer["ids"]
    newest = format_timestamp(max(moment for moment, _ in readings))

    def summarised() -> bool:
        status, _, data = host.get(f"/api/sensors/{sensor_id}")
        return status == 200 and json.loads(data)["series"][0]["latest"]["window_end"] == newest

    wait_for(summarised, WAIT_MS / 1000, f"{sensor_id}'s summary of {newest}")
    return [
        {"timestamp": format_timestamp(moment), "value": value, "id": reading_id}
        for (moment, value), reading_id in zip(readings, ids, strict=True)
    ]


@pytest.fixture(scope="module")
def boiler(host: DevhostProcess) -> list[dict[str, Any]]:
    """boiler-1: ten readings, 2 min apart, the newest just now: all within the page's default range (1 hour),
    and the series is "ok" (not stale) for the next 6 minutes."""
    newest = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    return post(host, "boiler-1", [(newest - timedelta(minutes=2 * (9 - n)), 20.5 + 0.25 * n) for n in range(10)])


def open_page(log: PageLog, host: DevhostProcess, path: str, chart: bool = True) -> Page:
    """Opens the page and, with `chart`, waits until its chart is loaded."""
    response = log.page.goto(host.base_url + path)
    assert response is not None and response.status == 200
    log.page.evaluate("window.__marker = 1")  # gone if the page is reloaded
    if chart:
        log.page.wait_for_function(CHART_LOADED, arg=path.partition("range=")[2] or "1h")
    return log.page


def assert_clean(log: PageLog, host: DevhostProcess) -> None:
    assert log.console_errors == []
    assert log.failed == []
    assert [url for url in log.requests if origin(url) != host.base_url] == []


def test_the_page_shows_the_sensors_figures_and_a_loaded_large_chart(
    host: DevhostProcess, boiler: list[dict[str, Any]], tab: PageLog
) -> None:
    page = open_page(tab, host, "/sensors/boiler-1")
    latest = host.get_json("/api/sensors/boiler-1")["series"][0]["latest"]
    series = page.locator("section.series")

    expect(page.locator("h1")).to_have_text("boiler-1")
    expect(series).to_have_count(1)
    for field in ("min", "avg", "max"):
        expect(series.locator(f'b[data-f="{field}"]')).to_have_text(SHOWN.format(latest[field]))
    expect(series.locator('b[data-f="count"]')).to_have_text(str(latest["count"]))
    expect(series.locator(".state")).to_have_text("ok")
    expect(series.locator("time.ago")).to_contain_text("ago")
    chart = series.locator("img.chart")
    size = chart.evaluate("(img) => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert size == [True, 1200, 420], size
    alt = chart.get_attribute("alt") or ""
    assert alt.startswith("temperature of boiler-1 over the last 1 hour; latest min "), alt
    assert alt.endswith(f"max {SHOWN.format(latest['max'])} °C"), alt
    expect(series.locator("table.readings tbody tr")).to_have_count(len(boiler))
    expect(series.locator("table.readings tbody tr").first).to_contain_text(SOURCE)
    expect(page.locator("#status")).to_contain_text("updated")  # a poll has answered
    expect(page.get_by_role("link", name="← Dashboard")).to_have_attribute("href", "../")
    assert_clean(tab, host)


def test_choosing_1_day_changes_the_chart_and_the_address(
    host: DevhostProcess, boiler: list[dict[str, Any]], tab: PageLog
) -> None:
    page = open_page(tab, host, "/sensors/boiler-1")
    chart = page.locator("section.series img.chart")
    before = chart.get_attribute("src") or ""
    expect(page.get_by_role("radio", name="1 hour")).to_be_checked()

    with page.expect_response(lambda r: "/api/plots/boiler-1.png" in r.url and "range=1d" in r.url) as answer:
        page.locator("#range label", has_text="1 day").click()  # what a user clicks: the label

    assert answer.value.status == 200 and answer.value.headers["content-type"] == "image/png"
    expect(page.get_by_role("radio", name="1 day")).to_be_checked()
    page.wait_for_function(CHART_LOADED, arg="1d")
    assert "range=1d" in page.url
    assert "size=large" in (chart.get_attribute("src") or "") != before
    assert "over the last 1 day;" in (chart.get_attribute("alt") or "")
    expect(page.locator("a.csv").first).to_contain_text("last 1 day")
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"

    page.keyboard.press("ArrowRight")  # the focused radio group: the next range, from the keyboard
    expect(page.get_by_role("radio", name="7 days")).to_be_checked()
    page.wait_for_function(CHART_LOADED, arg="7d")
    assert "range=7d" in page.url

    page.reload()  # the choice is in the address, so a reload or a bookmark keeps it
    expect(page.get_by_role("radio", name="7 days")).to_be_checked()
    page.wait_for_function(CHART_LOADED, arg="7d")
    assert_clean(tab, host)


def test_the_download_link_gives_a_csv_file_of_the_readings(
    host: DevhostProcess, boiler: list[dict[str, Any]], tab: PageLog, tmp_path: Path
) -> None:
    page = open_page(tab, host, "/sensors/boiler-1", chart=False)

    with page.expect_download() as started:
        page.get_by_role("link", name=re.compile(r"^Readings, last 1 hour")).click()
    download = started.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    assert re.fullmatch(r"boiler-1-temperature-readings-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.csv", download.suggested_filename)
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"), newline="")))
    assert rows[0] == ["timestamp", "sensor_id", "metric", "value", "unit", "source", "id"]
    assert rows[1:] == [
        [r["timestamp"], "boiler-1", "temperature", str(r["value"]), "°C", SOURCE, r["id"]] for r in boiler
    ]  # every reading of the last hour, oldest first

    with page.expect_download() as started:
        page.get_by_role("link", name=re.compile(r"^Summaries, last 1 hour")).click()
    summaries = Path(started.value.path()).read_text(encoding="utf-8").splitlines()
    assert summaries[0] == "window_end,window_start,sensor_id,metric,count,min,avg,max,unit,computed_at,id"
    listed = host.get_json("/api/sensors/boiler-1/summaries?limit=500")  # newest first
    assert [line.split(",")[0] for line in summaries[1:]] == [s["window_end"] for s in reversed(listed)]
    assert page.evaluate("window.__marker") == 1, "a download navigated away from the page"
    # This test does not need the chart: while large charts are not drawn, its failed load is not this test's.
    assert tab.console_errors == []
    assert [url for url in tab.requests if origin(url) != host.base_url] == []


def test_the_chart_never_goes_blank_while_a_new_version_replaces_it(host: DevhostProcess, tab: PageLog) -> None:
    # The 10-minute chart gets a new version for every 5 s of readings (CHART_REFRESH_10M_SECONDS).
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)
    post(host, "boiler-2", [(moment, 30.0)])
    page = open_page(tab, host, "/sensors/boiler-2?range=10m")
    page.evaluate(CHART_SAMPLER)

    src = "() => document.querySelector('section.series img.chart').src"
    shown = [page.evaluate(src)]
    for step in (1, 2):
        moment += timedelta(seconds=10)
        post(host, "boiler-2", [(moment, 30.0 + step)])
        page.wait_for_function(
            """(before) => { const img = document.querySelector("section.series img.chart");
                return img.src !== before && img.complete && img.naturalWidth > 0; }""",
            arg=shown[-1],
        )
        shown.append(page.evaluate(src))
    samples: list[dict[str, Any]] = page.evaluate("() => { clearInterval(window.__sampler); return window.__samples; }")

    assert len(set(shown)) == 3, shown  # two new versions came, each a new URL
    assert len({s["src"] for s in samples}) == 3
    assert sum(1 for s in samples if s["why"] == "changed") >= 2
    blank = [s for s in samples if not (s["complete"] and s["width"] == 1200 and s["height"] == 420)]
    assert blank == [], blank[:5]
    assert_clean(tab, host)
