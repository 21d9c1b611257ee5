"""Charts: PNGs of the right size, the same bytes for the same data, and no pyplot."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from PIL import Image

from shared.dashboard.charts import ChartPoint, render_chart

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _points(n: int) -> list[ChartPoint]:
    return [
        ChartPoint(START + timedelta(seconds=5 * i), 20.0 + i % 3, 24.0 + i % 5, 22.0 + (i % 4) / 2) for i in range(n)
    ]


def _size(png: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image.size


def test_chart_is_640_by_260_and_scales_for_high_dpi_screens() -> None:
    assert _size(render_chart(_points(120), title="sensor-01 · temperature", unit="°C")) == (640, 260)
    assert _size(render_chart(_points(120), title="t", unit="°C", scale=2)) == (1280, 520)
    assert _size(render_chart(_points(3), title="t", unit="°C", scale=50)) == (1920, 780)


def test_same_data_in_any_order_gives_the_same_bytes() -> None:
    points = _points(40)
    assert render_chart(points, title="t", unit="°C") == render_chart(points[::-1], title="t", unit="°C")


def test_different_data_gives_a_different_chart() -> None:
    assert render_chart(_points(40), title="t", unit="°C") != render_chart(_points(41), title="t", unit="°C")


def test_empty_and_single_point_charts_render() -> None:
    assert _size(render_chart([], title="t", unit="°C")) == (640, 260)
    assert _size(render_chart(_points(1), title="$x$ <b>", unit="°C")) == (640, 260)


def test_rendering_never_loads_pyplot() -> None:
    code = (
        "import sys; from shared.dashboard.charts import render_chart, ChartPoint; from datetime import datetime, UTC;"
        "render_chart([ChartPoint(datetime.now(UTC), 1, 2, 1.5)], title='t', unit='u');"
        "print('matplotlib.pyplot' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def _is_red(pixel: float | tuple[int, ...]) -> bool:
    assert isinstance(pixel, tuple)
    return pixel[0] > 180 and pixel[1] < 90 and pixel[2] < 90


def _red_columns(png: bytes) -> set[int]:
    """The x of every pixel column where the max line (red) is drawn."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    return {x for x in range(width) for y in range(height) if _is_red(pixels[x, y])}


def test_a_silent_stretch_is_a_gap_not_a_line_and_the_axis_spans_the_chosen_range() -> None:
    # Readings for the first and last ten minutes of an hour, silence between.
    early = [ChartPoint(START + timedelta(seconds=15 * i), 20.0, 30.0, 25.0) for i in range(40)]
    late = [ChartPoint(START + timedelta(minutes=50, seconds=15 * i), 20.0, 30.0, 25.0) for i in range(41)]
    span = (START, START + timedelta(hours=1))

    joined = _red_columns(render_chart(early + late, title="t", unit="°C", x_span=span))
    broken = _red_columns(render_chart(early + late, title="t", unit="°C", x_span=span, max_gap=timedelta(minutes=1)))
    # Only the first ten minutes: the axis still spans the hour, so the line stops a sixth of the way across.
    alone = _red_columns(render_chart(early, title="t", unit="°C", x_span=span))

    middle = set(range(300, 380))  # the middle of the plot, half an hour in
    assert middle <= joined
    assert not middle & broken
    assert len(broken) > 100  # both stretches are still drawn
    assert max(alone) < 200


def test_a_point_alone_between_gaps_is_drawn_as_a_dot() -> None:
    lone = ChartPoint(START + timedelta(minutes=30), 20.0, 30.0, 25.0)
    edges = [ChartPoint(START + timedelta(seconds=15 * i), 20.0, 30.0, 25.0) for i in range(4)]
    span = (START, START + timedelta(hours=1))

    with_dot = _red_columns(
        render_chart([*edges, lone], title="t", unit="°C", x_span=span, max_gap=timedelta(minutes=1))
    )
    without = _red_columns(render_chart(edges, title="t", unit="°C", x_span=span, max_gap=timedelta(minutes=1)))

    assert with_dot - without  # red pixels near the middle, where the lone point is
    assert all(280 <= x <= 400 for x in with_dot - without)


def _gray_columns(png: bytes) -> list[list[int]]:
    """The image in gray levels (255 is the white background), one list per pixel column."""
    image = Image.open(io.BytesIO(png)).convert("L")
    width, height = image.size
    data = list(image.tobytes())  # mode L: one byte per pixel, row by row
    return [data[x::width] for x in range(width)]


def _first_drawn_column(png: bytes) -> int:
    return next(x for x, column in enumerate(_gray_columns(png)) if any(v != 255 for v in column))


def _spine_column(png: bytes) -> int:
    """The x of the y axis line: the first column dark over most of the plot's height."""
    columns = _gray_columns(png)
    return next(x for x, column in enumerate(columns) if sum(v < 100 for v in column) > len(column) // 2)


def test_the_left_margin_makes_room_for_wide_tick_labels_and_no_more() -> None:
    narrow = [ChartPoint(p.time, p.min, p.max, p.avg) for p in _points(30)]
    wide = [
        ChartPoint(p.time, -150_000 + p.min * 10_000, -140_000 + p.max * 10_000, p.avg * 10_000) for p in _points(30)
    ]

    narrow_png = render_chart(narrow, title="t", unit="°C")
    wide_png = render_chart(wide, title="t", unit="°C")

    assert _spine_column(wide_png) > _spine_column(narrow_png) + 15  # the axis moved right for "−150000"
    for png in (narrow_png, wide_png):
        assert 3 <= _first_drawn_column(png) <= 12  # the unit label is whole, near the edge, never cut off
