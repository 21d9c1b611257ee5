"""A fleet on the dashboard: devhost with 1,000 simulated series at a 5 s cadence, watched by 1, 5 and 20 viewers
that follow the page's own polling rules, plus one real Chromium.

devhost runs as a subprocess on 127.0.0.1 and a temp data dir with SENSOR_COUNT=1000 and the simulator every
5 s (about 200 readings a second, summarised as they come), for the whole run. Nothing leaves the machine.

1. page: Debian's chromium through Playwright, 3 navigations to `/` in fresh 1280x720 contexts (cold browser
   cache). Per run, from navigation start: `tiles_seconds` until the first tile shows its numbers, and
   `charts_seconds` until every tile on screen shows a loaded chart. Targets on the medians: <= 1.5 s and
   <= 3 s. The first run finds devhost's chart cache cold.
2. idle: devhost's CPU with the simulator and no viewer (10 s), the floor the viewers add to.
3. viewers 1, 5 and 20 (bench/dashboard_load.py's viewers: the listing revalidated every 2 s, the overview
   every 5 s, the current chart version of the 6 tiles on screen loaded once each): devhost's CPU over 30 s
   after a 5 s warm-up, chart renders per minute as devhost counts them (sensorpulse_chart_renders_total),
   requests/s, latency per kind, errors. During the 20-viewer phase the Chromium page stays open too, polling
   as it does for a user. Targets: devhost CPU <= 50 % of one core with 20 viewers and the browser; renders
   per minute independent of the viewer count (20 viewers draw at most 1.5x what 1 viewer does: the same
   charts are looked at, only more often); no error in any phase.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import dashboard_load
from bench.common import log

SENSORS = 1000
SCHEDULE = "*/5 * * * * *"
VIEWER_COUNTS = (1, 5, 20)
PAGE_RUNS = 3
IDLE_SECONDS = 10.0
SERIES_TIMEOUT_SECONDS = 180.0
PAGE_TIMEOUT_MS = 20_000
TARGET_TILES_SECONDS = 1.5
TARGET_CHARTS_SECONDS = 3.0
TARGET_CPU_PERCENT = 50.0
TARGET_RENDER_RATIO = 1.5

_TILES_SHOWN = """() => {
  const figure = document.querySelector("#cards .card b[data-f=avg]");
  return figure && /^-?\\d/.test(figure.textContent) ? performance.now() : false;
}"""
_CHARTS_SHOWN = """() => {
  const onScreen = [...document.querySelectorAll("#cards .card")]
    .filter((card) => card.getBoundingClientRect().top < innerHeight);
  if (onScreen.length === 0) return false;
  for (const card of onScreen) {
    const img = card.querySelector(".chart img");
    if (!img.complete || img.naturalWidth === 0) return false;
  }
  return performance.now();
}"""


@contextmanager
def _chromium() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("chromium is not installed (make chromium installs Debian's package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def measure_page(browser: Any, base_url: str) -> dict[str, Any]:
    tiles: list[float] = []
    charts: list[float] = []
    chart_requests: list[int] = []
    for _ in range(PAGE_RUNS):
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        try:
            page = context.new_page()
            asked: list[str] = []
            page.on("request", lambda request, asked=asked: asked.append(request.url))
            page.goto(base_url + "/", wait_until="commit")
            tiles.append(float(page.wait_for_function(_TILES_SHOWN, timeout=PAGE_TIMEOUT_MS).json_value()) / 1000)
            charts.append(float(page.wait_for_function(_CHARTS_SHOWN, timeout=PAGE_TIMEOUT_MS).json_value()) / 1000)
            chart_requests.append(sum("/api/plots/" in url for url in asked))
        finally:
            context.close()
    return {
        "runs": PAGE_RUNS,
        "viewport": "1280x720",
        "tiles_seconds": [round(t, 3) for t in tiles],
        "charts_seconds": [round(c, 3) for c in charts],
        "tiles_median_seconds": round(statistics.median(tiles), 3),
        "charts_median_seconds": round(statistics.median(charts), 3),
        "chart_requests_per_load": chart_requests,
    }


def measure_idle(host: dashboard_load.Devhost) -> float:
    began, cpu = time.perf_counter(), dashboard_load.cpu_seconds(host.process.pid)
    time.sleep(IDLE_SECONDS)
    return round((dashboard_load.cpu_seconds(host.process.pid) - cpu) / (time.perf_counter() - began) * 100, 1)


def _phase(figures: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "devhost_cpu_percent_of_one_core",
        "chart_renders_per_minute",
        "requests_per_second",
        "latency",
        "polls",
        "polls_offered",
        "late_polls",
        "errors",
        "error_examples",
        "load_generator_cpu_percent_of_one_core",
    )
    return {name: figures[name] for name in keep}


def run() -> dict[str, Any]:
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as temp:
        work = Path(temp)
        renders = dashboard_load._Renders()
        with dashboard_load.devhost(
            work / "data", work / "devhost.log", simulate=True, sensors=SENSORS, schedule=SCHEDULE
        ) as host:
            waited = dashboard_load.wait_for_series(host, SENSORS, SERIES_TIMEOUT_SECONDS)
            log(f"{SENSORS} series after {waited:.1f} s")
            with _chromium() as browser:
                page = measure_page(browser, host.base_url)
                log(f"page: {page}")
                idle = measure_idle(host)
                log(f"idle: devhost {idle} % of one core")
                phases: dict[str, Any] = {}
                for count in VIEWER_COUNTS:
                    context = None
                    if count == max(VIEWER_COUNTS):  # plus one real browser, left open on the page
                        context = browser.new_context(viewport={"width": 1280, "height": 720})
                        context.new_page().goto(host.base_url + "/")
                    try:
                        figures = dashboard_load.measure_viewers(host, renders, seed=count, clients=count)
                    finally:
                        if context is not None:
                            context.close()
                    phases[str(count)] = {"browser_open": context is not None, **_phase(figures)}
                    log(
                        f"{count} viewers: {phases[str(count)]['devhost_cpu_percent_of_one_core']} % of one core, "
                        f"{phases[str(count)]['chart_renders_per_minute']} renders/min"
                    )
    renders_per_minute = [phases[str(n)]["chart_renders_per_minute"] for n in VIEWER_COUNTS]
    ratio = renders_per_minute[-1] / renders_per_minute[0] if renders_per_minute[0] else None
    most = phases[str(max(VIEWER_COUNTS))]
    meets = {
        "tiles": page["tiles_median_seconds"] <= TARGET_TILES_SECONDS,
        "charts": page["charts_median_seconds"] <= TARGET_CHARTS_SECONDS,
        "cpu": most["devhost_cpu_percent_of_one_core"] <= TARGET_CPU_PERCENT,
        "renders_independent_of_viewers": ratio is not None and ratio <= TARGET_RENDER_RATIO,
        "no_errors": all(p["errors"] == 0 for p in phases.values()),
    }
    return {
        "bench": "fleet",
        "sensors": SENSORS,
        "simulator": SCHEDULE,
        "page": page,
        "idle_devhost_cpu_percent_of_one_core": idle,
        "viewers": phases,
        "chart_renders_per_minute": dict(zip(map(str, VIEWER_COUNTS), renders_per_minute, strict=True)),
        "renders_ratio_most_to_one_viewer": None if ratio is None else round(ratio, 2),
        "targets": {
            "tiles_median_seconds": TARGET_TILES_SECONDS,
            "charts_median_seconds": TARGET_CHARTS_SECONDS,
            "devhost_cpu_percent_of_one_core_with_20_viewers_and_a_browser": TARGET_CPU_PERCENT,
            "renders_ratio": TARGET_RENDER_RATIO,
            "errors": 0,
        },
        "meets": meets,
        "meets_target": all(meets.values()),
        "seconds_total": round(time.perf_counter() - began, 1),
    }
