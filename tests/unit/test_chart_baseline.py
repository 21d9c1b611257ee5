"""The chart a user sees, held against a committed picture: a chart rendered from fixed summaries must match
tests/baselines/ within a tolerance (anti-aliasing may move by a shade; a changed colour, a lost legend or
a shifted axis does not pass). After an intended change of the chart's look, write new baselines with
SENSORPULSE_UPDATE_BASELINES=1 and look at them before committing."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from shared.dashboard.charts import AVG_COLOR, MAX_COLOR, MIN_COLOR, ChartPoint, render_chart

BASELINES = Path(__file__).resolve().parents[1] / "baselines"
UPDATE = os.environ.get("SENSORPULSE_UPDATE_BASELINES", "") not in ("", "0")
MEAN_DIFFERENCE_MAX = 0.5  # per channel, 0-255, over the whole image
CHANGED_PIXELS_MAX = 0.002  # share of pixels differing by more than a quarter of full scale in any channel

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def fixed_points() -> list[ChartPoint]:
    """Forty summaries five seconds apart: a warm-up, a dip and a recovery, with the spread a window has."""
    points = []
    for n in range(40):
        avg = 21.0 + 0.15 * n - (2.5 if 18 <= n <= 24 else 0.0)
        points.append(ChartPoint(T0 + timedelta(seconds=5 * n), min=avg - 0.8, max=avg + 1.1, avg=avg))
    return points


def decoded(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def compare(name: str, png: bytes) -> None:
    path = BASELINES / name
    if UPDATE:
        path.write_bytes(png)
        pytest.skip(f"wrote {path.name}; look at it before committing")
    assert path.exists(), f"no baseline {path.name}: run with SENSORPULSE_UPDATE_BASELINES=1 and review it"
    got, want = decoded(png), decoded(path.read_bytes())
    assert got.size == want.size
    difference = ImageChops.difference(got, want)
    mean = max(ImageStat.Stat(difference).mean)
    red, green, blue = difference.split()
    largest = ImageChops.lighter(ImageChops.lighter(red, green), blue)  # per pixel, the channel that moved most
    changed = sum(largest.histogram()[65:]) / (got.width * got.height)
    assert mean <= MEAN_DIFFERENCE_MAX, f"{name}: mean difference {mean:.2f} per channel"
    assert changed <= CHANGED_PIXELS_MAX, f"{name}: {changed:.2%} of pixels changed"


@pytest.mark.parametrize("scale", [1, 2])
def test_a_chart_from_fixed_summaries_matches_its_baseline(scale: int) -> None:
    png = render_chart(fixed_points(), title="boiler-1 · temperature", unit="°C", scale=scale)
    compare(f"chart-temperature-{scale}x.png", png)


def test_the_comparison_catches_a_changed_chart() -> None:
    baseline = BASELINES / "chart-temperature-1x.png"
    if UPDATE or not baseline.exists():
        pytest.skip("needs the committed baseline")
    shifted = [ChartPoint(p.time, p.min, p.max + 1.5, p.avg) for p in fixed_points()]
    png = render_chart(shifted, title="boiler-1 · temperature", unit="°C", scale=1)
    with pytest.raises(AssertionError, match="difference|changed"):
        compare("chart-temperature-1x.png", png)


def test_the_baseline_shows_the_three_series_in_their_colours() -> None:
    image = decoded((BASELINES / "chart-temperature-1x.png").read_bytes())
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20) or []}

    def rgb(hex_colour: str) -> tuple[int, int, int]:
        return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))

    for colour in (MAX_COLOR, AVG_COLOR, MIN_COLOR):
        assert rgb(colour) in colours, colour
    assert image.size == (640, 260)
