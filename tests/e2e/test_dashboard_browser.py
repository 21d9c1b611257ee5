"""The live dashboard in a real browser: Debian's Chromium, headless, driven by Playwright, against devhost.

What a user would notice: the page loads cleanly and only from devhost, every sensor has a card with its figures
and chart, a new summary updates a card and flashes its dot without reloading the page (and a new chart version
replaces its chart), an empty store says so until the first reading, and a devhost that goes away shows
"connection lost" and comes back by itself. A fleet of a thousand series is tests/e2e/test_fleet_browser.py.
"""

from __future__ import annotations

import io
import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.e2e.browser import ARTIFACTS, WAIT_MS, PageLog, origin, restart_on_same_port
from tests.e2e.devhost_process import DevhostProcess

pytestmark = pytest.mark.e2e

SENSORS = ["sensor-01", "sensor-02", "sensor-03"]
LIVE = {"SENSOR_COUNT": str(len(SENSORS)), "SIMULATOR_SCHEDULE": "*/1 * * * * *"}
QUIET = {"AzureWebJobs.simulate_sensors.Disabled": "true"}
ONE_SENSOR = {"SENSOR_COUNT": "1", "SIMULATOR_SCHEDULE": "*/1 * * * * *"}
LOST = re.compile(r"\blost\b")  # the status line's class while polling fails

# Installed before the page's own script runs: records every animation of a card's dot (the flash is over in
# 1.2 s, so its class alone could be missed) and gives the checks below short names for a card and its state.
PAGE_PROBES = """
window.__flashes = [];
document.addEventListener("animationstart", (event) => {
  const card = event.target.closest && event.target.closest(".card");
  if (card && event.target.classList.contains("dot")) window.__flashes.push(card.dataset.key);
}, true);
window.__card = (key) => [...document.querySelectorAll("#cards .card")].find((c) => c.dataset.key === key);
window.__chartShown = (card) => {
  const img = card.querySelector("img");
  return img.complete && img.naturalWidth > 0;
};
window.__cardState = (key) => {
  const card = window.__card(key);
  const dot = card.querySelector(".dot");
  return {
    src: card.querySelector("img").src,
    latest: card.dataset.latest,
    chart_shown: window.__chartShown(card),
    flashes: window.__flashes.filter((k) => k === key).length,
    flashing: dot.classList.contains("flash"),
    animation: getComputedStyle(dot).animationName,
    same_node: card.__mark === 1,
  };
};
"""
CARDS_WITH_CHARTS = """(count) => {
  const cards = [...document.querySelectorAll("#cards .card")];
  return cards.length === count && cards.every(window.__chartShown);
}"""
NEW_CHART_AND_FLASH = """([key, before]) => {
  const now = window.__cardState(key);
  return now.src !== before.src && now.chart_shown && now.flashes > before.flashes;
}"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    host = DevhostProcess(tmp_path_factory.mktemp("browser-live"), LIVE)
    try:
        yield host
    finally:
        host.kill()


def _open(log: PageLog, host: DevhostProcess) -> None:
    response = log.page.goto(host.base_url + "/")
    assert response is not None and response.status == 200
    log.page.evaluate("window.__marker = 1")


def _open_with_one_card(log: PageLog, host: DevhostProcess) -> None:
    """Opens the page on a one-sensor devhost and waits until its card is in and a poll has answered."""
    _open(log, host)
    _wait_for_cards(log, 1)
    expect(log.page.locator("#status")).to_contain_text("updated")


def _assert_not_reloaded(log: PageLog) -> None:
    assert log.page.evaluate("window.__marker") == 1, "the page was reloaded"
    assert log.navigations == 1


def _wait_for_cards(log: PageLog, count: int) -> None:
    try:
        log.page.wait_for_function(CARDS_WITH_CHARTS, arg=count, timeout=30_000)
    except PlaywrightTimeoutError:
        shown = log.page.locator("#cards .card h3").all_inner_texts()
        raise AssertionError(f"expected {count} cards with their charts loaded within 30 s; cards: {shown}") from None


def _card_state(log: PageLog, key: str) -> dict[str, Any]:
    state: dict[str, Any] = log.page.evaluate("(key) => window.__cardState(key)", key)
    return state


def _wait_for_new_chart_and_flash(log: PageLog, key: str) -> dict[str, Any]:
    """Waits until the card shows a new chart, loaded, and its dot has flashed; returns the card's state then."""
    before = _card_state(log, key)
    try:
        log.page.wait_for_function(NEW_CHART_AND_FLASH, arg=[key, before])
    except PlaywrightTimeoutError:
        now = _card_state(log, key)
        raise AssertionError(
            f"{key}: no new chart with a flash within {WAIT_MS // 1000} s: {before} -> {now}"
        ) from None
    after = _card_state(log, key)
    assert after["latest"] != before["latest"], (before, after)
    return after


def test_the_page_loads_without_errors_and_only_from_devhost(live: DevhostProcess, tab: PageLog) -> None:
    _open(tab, live)
    _wait_for_cards(tab, len(SENSORS))
    for _ in range(2):  # two whole polls after every chart is in
        with tab.page.expect_response(lambda r: r.url.startswith(live.base_url + "/api/sensors?")) as answer:
            pass
        assert answer.value.status in (200, 304)
    assert [url for url in tab.requests if origin(url) != live.base_url] == []
    assert tab.console_errors == []
    assert tab.failed == []
    expect(tab.page.locator("#status")).not_to_have_class(LOST)
    paths = {url.removeprefix(live.base_url).split("?")[0] for url in tab.requests}
    assert {"/", "/api/sensors", *(f"/api/plots/{s}.png" for s in SENSORS)} <= paths


def test_every_sensor_has_a_card_with_its_figures_and_chart(live: DevhostProcess, tab: PageLog) -> None:
    _open(tab, live)
    _wait_for_cards(tab, len(SENSORS))
    cards = tab.page.locator("#cards .card")
    expect(tab.page.locator("#empty")).to_be_hidden()
    assert cards.locator("h3").all_inner_texts() == SENSORS
    for card in cards.all():
        name = card.locator("h3").inner_text()
        expect(card.locator(".metric")).to_have_text("temperature (°C)")
        expect(card.locator(".stats")).to_contain_text("°C")
        low, mean, high = (float(card.locator(f'b[data-f="{f}"]').inner_text()) for f in ("min", "avg", "max"))
        assert 15.0 <= low <= mean <= high <= 40.0, (name, low, mean, high)
        image = card.locator("img")
        alt = image.get_attribute("alt") or ""
        # The alt text says what the chart shows and the figures a sighted user reads off the card.
        assert alt.startswith(f"temperature of {name} over the last 10 min: latest min "), alt
        assert all(card.locator(f'b[data-f="{f}"]').inner_text() in alt for f in ("min", "avg", "max")), alt
        size = image.evaluate("(img) => [img.complete, img.naturalWidth, img.naturalHeight]")
        assert size == [True, 640, 260], (name, size)


def test_a_new_summary_redraws_its_card_and_flashes_its_dot_without_a_reload(
    live: DevhostProcess, tab: PageLog
) -> None:
    _open(tab, live)
    _wait_for_cards(tab, len(SENSORS))
    key = "sensor-01|temperature"
    tab.page.evaluate("(key) => { window.__card(key).__mark = 1; }", key)  # gone if the card is rebuilt
    after = _wait_for_new_chart_and_flash(tab, key)
    assert after["flashing"] and after["animation"] == "flash", after
    assert after["same_node"], "the card was rebuilt rather than updated"
    _assert_not_reloaded(tab)


ALL_CHARTS_OVER = """(range) => {
  const images = [...document.querySelectorAll("#cards .card img")];
  return images.length > 0 && images.every((img) =>
    new URL(img.src).searchParams.get("range") === range && img.srcset.includes("range=" + range) &&
    img.complete && img.naturalWidth > 0);
}"""


def test_the_range_choice_changes_every_chart_request_and_survives_a_reload(live: DevhostProcess, tab: PageLog) -> None:
    _open(tab, live)
    _wait_for_cards(tab, len(SENSORS))
    page = tab.page
    expect(page.get_by_role("radio", name="10 min")).to_be_checked()
    tab.page.wait_for_function(ALL_CHARTS_OVER, arg="10m")
    before = {img.get_attribute("src") for img in page.locator("#cards .card img").all()}

    with page.expect_response(lambda r: "/api/plots/" in r.url and "range=1h" in r.url) as answer:
        page.locator("#range label", has_text="1 hour").click()  # what a user clicks: the label

    assert answer.value.status == 200 and answer.value.headers["content-type"] == "image/png"
    expect(page.get_by_role("radio", name="1 hour")).to_be_checked()
    page.wait_for_function(ALL_CHARTS_OVER, arg="1h")
    after = {img.get_attribute("src") for img in page.locator("#cards .card img").all()}
    assert not before & after
    assert "over the last 1 hour" in (page.locator("#cards .card img").first.get_attribute("alt") or "")
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    assert "range=1h" in page.url

    page.reload()  # the choice is in the address, so a reload or a bookmark keeps it
    expect(page.get_by_role("radio", name="1 hour")).to_be_checked()
    page.wait_for_function(ALL_CHARTS_OVER, arg="1h")
    assert tab.console_errors == []
    assert tab.failed == []


def _post_reading(host: DevhostProcess, sensor_id: str, value: float) -> None:
    body = [
        {"sensor_id": sensor_id, "metric": "temperature", "value": value, "timestamp": datetime.now(UTC).isoformat()}
    ]
    status, answer = host.post_json("/api/readings", body)
    assert status == 201, answer


def test_an_empty_store_says_so_until_the_first_reading_arrives(tmp_path: Path, tab: PageLog) -> None:
    host = DevhostProcess(tmp_path, QUIET)
    try:
        _open(tab, host)
        expect(tab.page.locator("#status")).to_contain_text("updated")  # a poll has answered: still empty
        expect(tab.page.locator("#empty")).to_be_visible()
        expect(tab.page.locator("#empty")).to_contain_text("No summaries yet")
        expect(tab.page.locator("#cards .card")).to_have_count(0)

        _post_reading(host, "boiler-1", 21.5)
        _wait_for_cards(tab, 1)
        card = tab.page.locator("#cards .card")
        expect(card.locator("h3")).to_have_text("boiler-1")
        figures = [card.locator(f'b[data-f="{f}"]') for f in ("min", "avg", "max")]
        for figure in figures:
            expect(figure).to_have_text("21.5")
        expect(card.locator(".stats")).to_contain_text("°C")
        expect(tab.page.locator("#empty")).to_be_hidden()
        _assert_not_reloaded(tab)
    finally:
        host.kill()


def test_a_lost_devhost_shows_connection_lost_and_the_page_recovers_by_itself(tmp_path: Path, tab: PageLog) -> None:
    host = DevhostProcess(tmp_path, ONE_SENSOR)
    status = tab.page.locator("#status")
    try:
        _open_with_one_card(tab, host)

        assert host.stop() == 0
        expect(status).to_have_class(LOST)
        expect(status).to_contain_text("connection lost")
        expect(tab.page.locator("#cards .card")).to_have_count(1)  # the last figures stay on screen

        host = restart_on_same_port(host, tmp_path, ONE_SENSOR)
        expect(status).not_to_have_class(LOST)
        expect(status).to_contain_text("live · updated")
        # Polling has resumed: the restarted simulator's next summary reaches the card.
        _wait_for_new_chart_and_flash(tab, "sensor-01|temperature")
        _assert_not_reloaded(tab)
    finally:
        host.kill()


def test_a_devhost_that_hangs_shows_connection_lost_and_the_page_recovers_when_it_answers(
    tmp_path: Path, tab: PageLog
) -> None:
    host = DevhostProcess(tmp_path, ONE_SENSOR)
    status = tab.page.locator("#status")
    try:
        _open_with_one_card(tab, host)
        host.process.send_signal(signal.SIGSTOP)  # accepts connections (the kernel does), answers nothing
        try:
            expect(status).to_have_class(LOST)
        finally:
            host.process.send_signal(signal.SIGCONT)
        expect(status).not_to_have_class(LOST)
        _wait_for_new_chart_and_flash(tab, "sensor-01|temperature")
        _assert_not_reloaded(tab)
    finally:
        host.kill()


def test_a_full_page_screenshot_is_kept_as_a_test_artefact(live: DevhostProcess, tab: PageLog) -> None:
    _open(tab, live)
    _wait_for_cards(tab, len(SENSORS))
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "dashboard.png"
    target.unlink(missing_ok=True)
    tab.page.screenshot(path=str(target), full_page=True)
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert 20_000 < len(data) < 5_000_000, len(data)
    with Image.open(io.BytesIO(data)) as image:
        assert image.width == 1280 and image.height >= 720, image.size
        # Three charts, not a blank page: well over a few hundred distinct colours.
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 500
