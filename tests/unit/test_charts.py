"""Charts: PNGs of the right size, the same bytes for the same data, text large enough to read, no pyplot."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from shared.dashboard.charts.render import CHART_SIZES, ChartPoint, check_size, render_chart

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


def test_the_large_chart_is_1200_by_420_and_scales_too() -> None:
    assert CHART_SIZES == {"card": (640, 260), "large": (1200, 420)}
    assert _size(render_chart(_points(120), title="t", unit="°C", size="large")) == (1200, 420)
    assert _size(render_chart(_points(120), title="t", unit="°C", size="large", scale=2)) == (2400, 840)
    assert _size(render_chart([], title="t", unit="°C", size="large")) == (1200, 420)


def test_an_unknown_size_is_refused_with_a_reason_a_client_can_read() -> None:
    assert check_size("card") == "card"
    assert check_size("large") == "large"
    for wrong in ("huge", "", "Card"):
        with pytest.raises(ValueError, match="^size must be one of card, large$"):
            check_size(wrong)
    with pytest.raises(ValueError, match="size must be one of card, large"):
        render_chart(_points(3), title="t", unit="°C", size="huge")


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
        "import sys; from shared.dashboard.charts.render import render_chart, ChartPoint;"
        "from datetime import datetime, UTC;"
        "render_chart([ChartPoint(datetime.now(UTC), 1, 2, 1.5)], title='t', unit='u');"
        "print('matplotlib.pyplot' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def _is_red(pixel: float | tuple[int, ...]) -> bool:
    assert isinstance(pixel, tuple)
    return pixel[0] > 180 and pixel[1] < 90 and pixel[2] < 90


def _axis_row(image: Image.Image) -> int:
    """The y of the time axis line: the lowest row dark over most of the image's width."""
    gray = image.convert("L")
    width, height = gray.size
    data = gray.tobytes()
    return max(y for y in range(height) if sum(v < 100 for v in data[y * width : (y + 1) * width]) > width // 2)


def _red_columns(png: bytes) -> set[int]:
    """The x of every pixel column where the max line (red) is drawn in the plot (not the legend below it)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, plot_bottom = image.width, _axis_row(image)
    pixels = image.load()
    assert pixels is not None
    return {x for x in range(width) for y in range(plot_bottom) if _is_red(pixels[x, y])}


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


# DejaVu Sans' digits are 0.73 of the font size tall: a font of `px` pixels draws them this many rows tall, and
# one a pixel smaller draws them at least a row shorter.
def _digit_rows(px: float) -> int:
    return round(px * 0.73)


def _text_rows(image: Image.Image, top: int, bottom: int, right: int) -> list[int]:
    """The rows from `top` to `bottom` (left of `right`) holding dark text pixels."""
    gray = image.convert("L")
    width = gray.width
    data = gray.tobytes()
    return [y for y in range(top, bottom) if any(v < 160 for v in data[y * width : y * width + right])]


def _first_run(rows: list[int]) -> int:
    """The length of the first run of consecutive rows."""
    length = 1
    while length < len(rows) and rows[length] == rows[0] + length:
        length += 1
    return length


@pytest.mark.parametrize("size", ["card", "large"])
@pytest.mark.parametrize("scale", [1, 2])
def test_tick_labels_and_title_are_large_enough_to_read_on_a_card(size: str, scale: int) -> None:
    """Shown 640 CSS pixels wide, a card's tick labels are at least 11 pixels and its title 12 (the card is
    often narrower, so these are the least that still reads there); a large chart's are no smaller."""
    # Digits only: no ascenders or descenders, so the height drawn is the digits' height.
    png = render_chart(_points(60), title="2026 0123456789", unit="°C", size=size, scale=scale)
    image = Image.open(io.BytesIO(png))
    axis = _axis_row(image)

    time_labels = _first_run(_text_rows(image, axis + 1, image.height, image.width))
    title = _first_run(_text_rows(image, 0, axis, image.width // 3))

    assert time_labels >= _digit_rows(11 * scale)
    assert title >= _digit_rows(12 * scale)
    assert title > time_labels


def _summaries(count: int) -> list[ChartPoint]:
    """Summaries as the summariser makes them: each the min, max and avg of the last ten readings of a random
    walk, five seconds apart."""
    rng = random.Random(11)
    readings: list[float] = []
    value = 24.0
    for _ in range(count + 9):
        value = min(40.0, max(15.0, value + rng.gauss(0.0, 0.6)))
        readings.append(round(value, 2))
    windows = [readings[n : n + 10] for n in range(count)]
    return [
        ChartPoint(START + timedelta(seconds=5 * n), min(w), max(w), round(sum(w) / 10, 4))
        for n, w in enumerate(windows)
    ]


def test_a_card_of_240_summaries_is_a_small_png() -> None:
    png = render_chart(_summaries(240), title="bench-sensor-01 · temperature", unit="°C")
    assert len(png) <= 15_000
    assert Image.open(io.BytesIO(png)).mode == "P"  # indexed colour


def test_a_chart_drawn_after_others_is_the_chart_drawn_first() -> None:
    """Figures are reused: nothing of a chart (lines, dots, band, limits, title, unit, an empty chart's message)
    may be left on the next one."""
    hour = (START, START + timedelta(hours=1))
    first: dict[str, Any] = {"points": _summaries(240), "title": "boiler-1 · temperature", "unit": "°C"}
    others: list[dict[str, Any]] = [
        {  # a gap, a lone point drawn as a dot, a fixed span, another unit and title
            "points": [*_points(4), ChartPoint(START + timedelta(minutes=30), 5.0, 90.0, 50.0)],
            "title": "other · humidity · last 1 hour",
            "unit": "%",
            "x_span": hour,
            "max_gap": timedelta(minutes=1),
        },
        {"points": [], "title": "empty", "unit": "°C"},
        {"points": _points(1), "title": "one point", "unit": "hPa"},
    ]

    for size in CHART_SIZES:
        before = render_chart(**first, size=size)
        between = [render_chart(**chart, size=size) for chart in others]
        after = render_chart(**first, size=size)

        assert after == before, size
        assert before not in between, size


def test_charts_drawn_at_once_on_many_threads_are_those_drawn_one_by_one() -> None:
    charts: list[dict[str, Any]] = [
        {"points": _summaries(120 + 10 * n), "title": f"sensor-{n} · temperature", "unit": "°C", "scale": 1 + n % 2}
        for n in range(6)
    ]
    one_by_one = [render_chart(**chart) for chart in charts]

    with ThreadPoolExecutor(max_workers=6) as pool:
        at_once = list(pool.map(lambda chart: render_chart(**chart), charts * 4))

    assert at_once == one_by_one * 4


def test_time_ticks_fall_on_round_clock_times_and_name_the_day_at_midnight() -> None:
    from shared.dashboard.charts.ticks import date_label, time_ticks, value_ticks

    evening = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
    ticks, labels = time_ticks(evening, evening + timedelta(hours=24), 5)
    assert labels == ["18:00", "3 Mar", "06:00", "12:00", "18:00"]
    assert ticks == [0.0, 21600.0, 43200.0, 64800.0, 86400.0]
    assert date_label(evening, evening + timedelta(hours=24)) == "UTC · 2 Mar – 3 Mar 2026"

    ticks, labels = time_ticks(START + timedelta(seconds=7), START + timedelta(minutes=3, seconds=20), 5)
    assert labels == ["12:01", "12:02", "12:03"]
    assert time_ticks(START, START + timedelta(seconds=40), 5)[1] == [
        "12:00:00",
        "12:00:10",
        "12:00:20",
        "12:00:30",
        "12:00:40",
    ]
    assert date_label(START, START + timedelta(minutes=10)) == "UTC · 1 Mar 2026"

    assert value_ticks(19.6, 28.4, 5)[1] == ["20", "22", "24", "26", "28"]
    assert value_ticks(-0.26, 0.31, 5)[1] == ["\N{MINUS SIGN}0.2", "0.0", "0.2"]


def test_the_time_axis_is_utc_whatever_the_host_zone() -> None:
    code = (
        "import sys; from datetime import datetime, timedelta, UTC; from shared.dashboard.charts.render import "
        "render_chart, ChartPoint; t = datetime(2026, 3, 1, 23, 50, tzinfo=UTC); "
        "sys.stdout.buffer.write(render_chart([ChartPoint(t + timedelta(minutes=m), 1, 3, 2) for m in range(20)], "
        "title='t', unit='u'))"
    )
    zones = ("UTC0", "EST+05", "IST-05:30")  # POSIX zones: five hours behind UTC, five and a half ahead
    drawn = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, check=True, env={**os.environ, "TZ": zone}
        ).stdout
        for zone in zones
    }
    assert len(drawn) == 1
