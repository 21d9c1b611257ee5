"""A fleet of a thousand series in a real browser (Debian's Chromium through Playwright) against devhost.

What someone watching a fleet all day would notice: the page shows one page of tiles with their numbers, not a
thousand cards; charts load for the cards on screen only and stop refreshing when scrolled away; a chart never
blanks while its next version loads; filter, grouping, sort and page work and survive a reload; the page passes
axe-core with no serious or critical finding; and every control is reached from the keyboard.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e.browser import WAIT_MS, PageLog, serious_accessibility_findings
from tests.e2e.devhost_process import DevhostProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

FLEET = 1000
SETTINGS = {"SENSOR_COUNT": str(FLEET), "SIMULATOR_SCHEDULE": "*/5 * * * * *"}
SHOWN = re.compile(r"Showing 1–48 of 1,000")

# Before the page's own script: records every chart request by sensor, and samples every 20 ms whether a card
# that has shown a chart still shows one (an image that is loading or broken has naturalWidth 0).
PAGE_PROBES = """
window.__blank = [];
window.__swaps = {};
setInterval(() => {
  for (const card of document.querySelectorAll("#cards .card")) {
    const img = card.querySelector(".chart img");
    if (!img || !img.getAttribute("src")) continue;
    const key = card.dataset.sensor;
    const src = img.getAttribute("src");
    const seen = window.__swaps[key] || (window.__swaps[key] = []);
    if (seen[seen.length - 1] !== src) seen.push(src);
    if (!(img.complete && img.naturalWidth > 0)) window.__blank.push(key + " " + src);
  }
}, 20);
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    host = DevhostProcess(tmp_path_factory.mktemp("fleet"), SETTINGS)
    try:
        wait_for(lambda: host.get_json("/api/overview")["series"] == FLEET, 120, f"{FLEET} series summarised")
        yield host
    finally:
        host.kill()


def chart_requests(log: PageLog) -> list[str]:
    """The sensors whose charts the page asked for, in order."""
    return [re.sub(r"\.png.*", "", url.split("/api/plots/", 1)[1]) for url in log.requests if "/api/plots/" in url]


def open_fleet(log: PageLog, host: DevhostProcess, query: str = "") -> Page:
    response = log.page.goto(host.base_url + "/" + query)
    assert response is not None and response.status == 200
    return log.page


def cards_on_screen(page: Page, margin: int = 100) -> list[str]:
    found: list[str] = page.evaluate(
        """(margin) => [...document.querySelectorAll("#cards .card")].filter((card) => {
             const r = card.getBoundingClientRect();
             return r.bottom > 0 && r.top < innerHeight + margin;
           }).map((card) => card.dataset.sensor)""",
        margin,
    )
    return found


def wait_for_charts_on_screen(page: Page) -> None:
    page.wait_for_function(
        """() => {
             const shown = [...document.querySelectorAll("#cards .card")].filter((card) => {
               const r = card.getBoundingClientRect();
               return r.bottom > 0 && r.top < innerHeight;
             });
             return shown.length > 0 && shown.every((card) => {
               const img = card.querySelector(".chart img");
               return img.complete && img.naturalWidth > 0;
             });
           }"""
    )


def test_a_thousand_series_show_as_one_page_of_tiles_with_their_numbers(fleet: DevhostProcess, tab: PageLog) -> None:
    page = open_fleet(tab, fleet)

    expect(page.locator("#shown")).to_have_text(SHOWN)
    cards = page.locator("#cards .card")
    expect(cards).to_have_count(48)  # a page, not the fleet
    assert cards.locator("h3").all_inner_texts() == [f"sensor-{n:04d}" for n in range(1, 49)]
    for card in cards.all()[:6]:
        figures = [float(card.locator(f'b[data-f="{f}"]').inner_text()) for f in ("min", "avg", "max")]
        assert figures == sorted(figures) and 15.0 <= figures[0] <= 40.0, figures
        expect(card.locator(".badge")).to_have_text(re.compile(r"^(ok|stale)$"))
        expect(card.locator("time.ago")).to_have_text(re.compile(r"^\d+ (s|min) ago$"))
    expect(page.locator("#total-series")).to_have_text("1,000")
    assert tab.console_errors == [] and tab.failed == []


def test_only_charts_on_screen_are_requested_and_they_stop_refreshing_once_scrolled_away(
    fleet: DevhostProcess, tab: PageLog
) -> None:
    page = open_fleet(tab, fleet)
    expect(page.locator("#cards .card")).to_have_count(48)
    wait_for_charts_on_screen(page)

    near = set(cards_on_screen(page))
    asked = set(chart_requests(tab))
    assert asked and asked <= near, (asked, near)
    assert len(near) < 12  # most of the page's 48 cards are off screen and none of their charts was asked for

    last = page.locator("#cards .card").last
    last.scroll_into_view_if_needed()
    wait_for_charts_on_screen(page)
    bottom = last.get_attribute("data-sensor")
    assert bottom == "sensor-0048" and bottom in chart_requests(tab)

    # The top cards are off screen now. Their charts get new versions every 5 s, as the bottom ones do: wait
    # until a bottom card has been refreshed twice, then none of the top ones may have been asked for again.
    top = [s for s in near if s not in cards_on_screen(page)]
    before = {s: chart_requests(tab).count(s) for s in top}
    page.wait_for_function("(s) => (window.__swaps[s] || []).length >= 3", arg=bottom, timeout=3 * WAIT_MS)
    assert {s: chart_requests(tab).count(s) for s in top} == before


def test_no_chart_blanks_while_its_next_version_loads(fleet: DevhostProcess, tab: PageLog) -> None:
    def slow_chart(route: Route) -> None:
        time.sleep(0.6)  # long enough that an image swapped before its bytes arrive shows blank for a while
        route.continue_()

    tab.page.route("**/api/plots/**", slow_chart)
    page = open_fleet(tab, fleet)
    wait_for_charts_on_screen(page)
    page.evaluate("window.__blank = []")  # from here on every card on screen has shown a chart

    first = cards_on_screen(page, 0)[0]
    page.wait_for_function("(s) => (window.__swaps[s] || []).length >= 3", arg=first, timeout=3 * WAIT_MS)

    assert page.evaluate("window.__blank") == []


def test_filter_group_and_sort_apply_and_survive_a_reload(fleet: DevhostProcess, tab: PageLog) -> None:
    page = open_fleet(tab, fleet)
    expect(page.locator("#shown")).to_have_text(SHOWN)

    page.get_by_label("Filter").fill("sensor-09")
    expect(page.locator("#shown")).to_have_text("Showing 1–48 of 100")  # sensor-0900 to sensor-0999
    assert all("sensor-09" in name for name in page.locator("#cards .card h3").all_inner_texts())
    page.get_by_label("Group by").select_option("metric")
    expect(page.locator("h2.group")).to_have_text(re.compile(r"^temperature\s*100 series"))
    page.get_by_label("Sort by").select_option("stalest")
    expect(page).to_have_url(re.compile(r"\?.*q=sensor-09"))
    assert all(part in page.url for part in ("group=metric", "sort=stalest"))

    # The longest silent first (each poll reorders the page as the series report).
    page.wait_for_function(
        """() => {
             const times = [...document.querySelectorAll("#cards .card time.ago")]
               .map((t) => t.getAttribute("datetime"));
             return times.length === 48 && times.every((t, i) => i === 0 || times[i - 1] <= t);
           }"""
    )

    page.reload()
    expect(page.get_by_label("Filter")).to_have_value("sensor-09")
    expect(page.get_by_label("Group by")).to_have_value("metric")
    expect(page.get_by_label("Sort by")).to_have_value("stalest")
    expect(page.locator("#shown")).to_have_text("Showing 1–48 of 100")


def test_next_and_previous_page_through_the_fleet(fleet: DevhostProcess, tab: PageLog) -> None:
    page = open_fleet(tab, fleet)
    expect(page.locator("#shown")).to_have_text(SHOWN)

    page.get_by_role("button", name="Next").click()
    expect(page.locator("#shown")).to_have_text("Showing 49–96 of 1,000")
    expect(page.locator("#cards .card h3").first).to_have_text("sensor-0049")
    expect(page.locator("#cards .card")).to_have_count(48)
    assert "cursor=" in page.url

    page.get_by_role("button", name="Previous").click()
    expect(page.locator("#shown")).to_have_text(SHOWN)
    expect(page.locator("#cards .card h3").first).to_have_text("sensor-0001")
    expect(page.get_by_role("button", name="Previous")).to_be_disabled()


@pytest.mark.parametrize("query", ["", "?group=metric&sort=newest"])
def test_the_page_has_no_serious_or_critical_accessibility_finding(
    fleet: DevhostProcess, tab: PageLog, query: str
) -> None:
    page = open_fleet(tab, fleet, query)
    wait_for_charts_on_screen(page)

    assert serious_accessibility_findings(page) == []
    for img in page.locator("#cards .card .chart img[src]").all():
        alt = img.get_attribute("alt") or ""
        assert re.search(r"latest min [\d.]+, avg [\d.]+, max [\d.]+ °C$", alt), alt


def test_every_control_is_reached_from_the_keyboard(fleet: DevhostProcess, tab: PageLog) -> None:
    page = open_fleet(tab, fleet)
    expect(page.locator("#shown")).to_have_text(SHOWN)

    reached: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                """() => {
                     const e = document.activeElement;
                     if (e.closest(".card")) return "tile:" + e.textContent;
                     return e.id || e.getAttribute("name") || e.tagName;
                   }"""
            )
        )

    for control in ("q", "group", "sort", "range", "next", "tile:sensor-0001"):
        assert control in reached, (control, reached)
    page.focus("#next")
    page.keyboard.press("Enter")
    expect(page.locator("#shown")).to_have_text("Showing 49–96 of 1,000")
    page.focus('#range input[value="1h"]')
    page.keyboard.press("Space")
    expect(page).to_have_url(re.compile(r"range=1h"))
