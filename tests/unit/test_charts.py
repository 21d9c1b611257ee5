"""Charts: PNGs of the right size, the same bytes for the same data, and no pyplot."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from PIL import Image

from shared.charts import ChartPoint, render_chart

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
        "import sys; from shared.charts import render_chart, ChartPoint; from datetime import datetime, UTC;"
        "render_chart([ChartPoint(datetime.now(UTC), 1, 2, 1.5)], title='t', unit='u');"
        "print('matplotlib.pyplot' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
