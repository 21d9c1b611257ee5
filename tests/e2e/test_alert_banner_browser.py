"""Alerts on the dashboard in a real browser (Debian's Chromium through Playwright) against devhost.

What someone watching the dashboard would notice: with no rule there is no banner; a rule that fires puts a banner
at the top of the open fleet page without a reload, naming the rule, and the tiles of the series it fires on show
a firing badge; the series page lists the alert in its history (and has the banner from its first paint); deleting
the rule clears the banner and the badges without a reload, and the history shows the alert resolved. The page
with the banner passes axe-core with no serious or critical finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import ARTIFACTS, WAIT_MS, PageLog, origin, serious_accessibility_findings
from tests.e2e.devhost_process import DevhostProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

SENSORS = [f"sensor-{n:02d}" for n in range(1, 13)]
WATCHED = [s for s in SENSORS if re.fullmatch(r"sensor-0\d", s)]  # what the rule's pattern below matches
SETTINGS = {
    "SENSOR_COUNT": str(len(SENSORS)),
    "SIMULATOR_SCHEDULE": "*/1 * * * * *",
    # Binding expressions of the alert timers: every app setting a binding names must be set for devhost to start.
    "ALERT_SILENCE_SCHEDULE": "*/2 * * * * *",
    "ALERT_SENDER_SCHEDULE": "*/2 * * * * *",
}
RULE = "browser-warm-room"
# The simulated rooms report 15-40 °C: every summary of a watched series is above 0, so it fires at once.
RULE_BODY = {
    "kind": "threshold",
    "metric": "temperature",
    "sensors": "sensor-0?",
    "field": "avg",
    "op": ">",
    "value": 0,
    "for_summaries": 1,
    "severity": "critical",
    "description": "Any room above freezing, so that it fires at once.",
}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    process = DevhostProcess(tmp_path_factory.mktemp("alert-banner"), SETTINGS)  # no --demo-alerts: no rule
    try:
        wait_for(lambda: process.get_json("/api/overview")["series"] == len(SENSORS), WAIT_MS / 1000, "every series")
        yield process
    finally:
        process.kill()


def firing(host: DevhostProcess) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = host.get_json("/api/alerts?state=firing&limit=100")["items"]
    return items


def badges(page: Page) -> dict[str, str]:
    """Each tile's alert badge as shown: its text, or "" while it is hidden."""
    shown: dict[str, str] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("#cards .card")].map((card) => {
             const badge = card.querySelector(".alert-badge");
             return [card.dataset.sensor, badge.hidden ? "" : badge.textContent];
           }))"""
    )
    return shown


def open_page(page: Page, host: DevhostProcess, path: str) -> None:
    response = page.goto(host.base_url + path, wait_until="domcontentloaded")
    assert response is not None and response.status == 200
    page.evaluate("window.__marker = 1")  # gone if the page is reloaded


def assert_clean(log: PageLog, host: DevhostProcess) -> None:
    assert log.console_errors == []
    assert log.failed == []
    assert [url for url in log.requests if origin(url) != host.base_url] == []


def test_the_banner_appears_when_a_rule_fires_and_clears_when_it_is_deleted(host: DevhostProcess, tab: PageLog) -> None:
    fleet = tab.page
    open_page(fleet, host, "/")
    expect(fleet.locator("#cards .card")).to_have_count(len(SENSORS))
    banner = fleet.locator("#alerts")
    expect(fleet.locator("#status")).to_contain_text("updated")  # a poll has answered
    expect(banner).to_be_hidden()
    assert set(badges(fleet).values()) == {""}

    status, _ = host.send_json("PUT", f"/api/alerts/rules/{RULE}", RULE_BODY)
    assert status == 201

    # Without a reload: the banner appears naming the rule, the watched tiles show it firing.
    expect(banner).to_be_visible()
    expect(banner.locator("li").first).to_contain_text(RULE)
    wait_for(lambda: len(firing(host)) == len(WATCHED), 3 * WAIT_MS / 1000, "every watched series firing")
    expect(banner.locator("h2")).to_have_text(f"{len(WATCHED)} alerts firing")
    items = banner.locator("#alerts-list li")
    expect(items).to_have_count(5)  # the most severe five are listed, the rest counted
    expect(banner.locator("#alerts-more")).to_have_text(f"and {len(WATCHED) - 5} more")
    for item in items.all():
        expect(item.locator(".sev")).to_have_text("critical")
        expect(item.locator(".rule")).to_have_text(RULE)
        expect(item.locator(".when")).to_have_text(re.compile(r"^started \d+ (s|min) ago$"))
        href = item.locator("a.summary").get_attribute("href") or ""
        assert re.fullmatch(r"sensors/sensor-0\d", href), href
    expect(fleet.locator("#alerts-news")).to_contain_text(f"Alert firing: critical, {RULE}: ")
    wait_for(lambda: all(badges(fleet)[s] == "firing: critical" for s in WATCHED), WAIT_MS / 1000, "firing badges")
    assert all(badges(fleet)[s] == "" for s in SENSORS if s not in WATCHED)
    assert fleet.evaluate("window.__marker") == 1, "the page was reloaded"

    assert serious_accessibility_findings(fleet) == []
    ARTIFACTS.mkdir(exist_ok=True)
    fleet.screenshot(path=str(ARTIFACTS / "alert-banner.png"))

    # The series page: the banner from its first paint, the alert in the sensor's history.
    series = fleet.context.new_page()
    series_log = PageLog.watch(series)
    open_page(series, host, "/sensors/sensor-01")
    assert series.evaluate("!document.getElementById('alerts').hidden"), "the banner waited for a poll"
    history = series.locator("#alert-history table.alerts tbody tr")
    expect(history).to_have_count(1)
    cells = history.first.locator("td")
    expect(cells.nth(0)).to_have_text(RULE)
    expect(cells.nth(1)).to_have_text("critical")
    expect(cells.nth(2)).to_have_text("firing")
    expect(cells.nth(3)).to_contain_text("sensor-01 temperature avg")
    expect(cells.nth(5)).to_have_text("firing")
    assert serious_accessibility_findings(series) == []

    status, _ = host.send_json("DELETE", f"/api/alerts/rules/{RULE}")
    assert status == 204

    # Without a reload, on both pages: the banner clears; the badges go; the history shows the alert resolved.
    expect(series.locator("#alerts")).to_be_hidden()
    expect(cells.nth(2)).to_have_text("resolved")
    expect(cells.nth(5)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"))
    expect(cells.nth(6)).to_have_text(re.compile(r"^\d+ (s|min)"))
    expect(banner).to_be_hidden()
    expect(fleet.locator("#alerts-news")).to_have_text("No alert is firing any more.")
    wait_for(lambda: set(badges(fleet).values()) == {""}, WAIT_MS / 1000, "the badges cleared")
    assert fleet.evaluate("window.__marker") == 1 and series.evaluate("window.__marker") == 1, "a page was reloaded"
    assert_clean(tab, host)
    assert_clean(series_log, host)
