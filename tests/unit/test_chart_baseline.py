"""The chart a user sees, held against a committed picture: a chart rendered from fixed summaries must match
tests/baselines/ within a tolerance (anti-aliasing may move by a shade; a changed colour, a lost legend, a
lost label or a shifted axis does not pass). After an intended change of the chart's look, write new baselines with
SENSORPULSE_UPDATE_BASELINES=1 and look at them before committing."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from shared.dashboard.charts.render import (
    AVG_COLOR,
    BACKGROUND_COLOR,
    CHART_SIZES,
    MAX_COLOR,
    MIN_COLOR,
    MUTED_TEXT_COLOR,
    ChartPoint,
    render_chart,
)

BASELINES = Path(__file__).resolve().parents[1] / "baselines"
UPDATE = os.environ.get("SENSORPULSE_UPDATE_BASELINES", "") not in ("", "0")
MEAN_DIFFERENCE_MAX = 0.5  # per channel, 0-255, over the whole image
CHANGED_PIXELS_MAX = 0.002  # share of pixels differing by more than a quarter of full scale in any channel
# The same share in the worst square a twentieth of the image wide: a lost word is too small to move the whole
# image's figures, not a square's.
CHANGED_IN_A_SQUARE_MAX = 0.005

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
    side = got.width // 20
    squares = largest.point(lambda v: 255 if v > 64 else 0).resize(
        (got.width // side, got.height // side), Image.Resampling.BOX, box=(0, 0, got.width, got.height // side * side)
    )
    worst = max(squares.tobytes()) / 255
    assert mean <= MEAN_DIFFERENCE_MAX, f"{name}: mean difference {mean:.2f} per channel"
    assert changed <= CHANGED_PIXELS_MAX, f"{name}: {changed:.2%} of pixels changed"
    assert worst <= CHANGED_IN_A_SQUARE_MAX, f"{name}: {worst:.2%} of pixels changed in one square"


# The card at both scales the page asks for, and the large chart.
BASELINE_CHARTS = {
    "chart-temperature-1x.png": ("card", 1),
    "chart-temperature-2x.png": ("card", 2),
    "chart-temperature-large-1x.png": ("large", 1),
}


@pytest.mark.parametrize("name", list(BASELINE_CHARTS))
def test_a_chart_from_fixed_summaries_matches_its_baseline(name: str) -> None:
    size, scale = BASELINE_CHARTS[name]
    png = render_chart(fixed_points(), title="boiler-1 · temperature", unit="°C", size=size, scale=scale)
    compare(name, png)


def test_the_comparison_catches_a_changed_chart() -> None:
    baseline = BASELINES / "chart-temperature-1x.png"
    if UPDATE or not baseline.exists():
        pytest.skip("needs the committed baseline")
    shifted = [ChartPoint(p.time, p.min, p.max + 1.5, p.avg) for p in fixed_points()]
    png = render_chart(shifted, title="boiler-1 · temperature", unit="°C", scale=1)
    with pytest.raises(AssertionError, match="difference|changed"):
        compare("chart-temperature-1x.png", png)


@pytest.mark.parametrize("name", list(BASELINE_CHARTS))
def test_the_baseline_shows_the_three_series_and_the_text_in_their_colours(name: str) -> None:
    """The PNG is indexed (a palette of at most 256 colours), yet the lines, the text and the background keep
    their exact colours."""
    image = decoded((BASELINES / name).read_bytes())
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20) or []}

    def rgb(hex_colour: str) -> tuple[int, int, int]:
        return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))

    for colour in (MAX_COLOR, AVG_COLOR, MIN_COLOR, MUTED_TEXT_COLOR, BACKGROUND_COLOR):
        assert rgb(colour) in colours, colour
    size, scale = BASELINE_CHARTS[name]
    width, height = CHART_SIZES[size]
    assert image.size == (width * scale, height * scale)
