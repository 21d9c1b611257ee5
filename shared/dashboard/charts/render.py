"""Summary charts: the max, avg and min of a series' sliding-window summaries over time, as PNG bytes.

Two sizes, in CSS pixels: `card` (640x260, the dashboard's cards) and `large` (1200x420, a series page);
`scale` multiplies the pixels for high-DPI screens.

The plot (band, lines, grid, axis lines) is drawn by matplotlib's Agg renderer, for its anti-aliased lines;
the text (title, tick labels, unit, dates, legend) by Pillow, which draws text many times faster. Rendering runs
on many request threads at once, so only matplotlib's object API is used, never `matplotlib.pyplot`, whose global
figure registry and current-axes state are shared between threads. Making a figure and running matplotlib's axis
machinery (tick objects, date locators, label layout) cost most of a render, so ticks are chosen here for the
span shown and each figure is made once and reused: a render takes one from a pool (no two threads ever hold
the same one), sets everything that depends on the chart (line and band data, limits, grid, margins), draws and
hands it back. matplotlib and Pillow are imported on the first render: importing matplotlib costs far more than
the rest of the app's cold start, and most invocations never draw a chart.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.dashboard.charts.png import indexed_png, rgb
from shared.dashboard.charts.ticks import date_label, time_ticks, value_ticks

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.ImageDraw import ImageDraw
    from PIL.ImageFont import FreeTypeFont

# One colour per statistic, the same on every chart so a reader learns them once.
MAX_COLOR = "#d62728"  # red: the hot end
AVG_COLOR = "#1f3b73"  # dark blue: the line the eye should follow
MIN_COLOR = "#6baed6"  # light blue: the cold end
RANGE_FILL_COLOR = "#9ecae1"
RANGE_FILL_ALPHA = 0.25
GRID_COLOR = "#e6e6e6"
TEXT_COLOR = "#000000"  # the title and the axis lines
MUTED_TEXT_COLOR = "#555555"
BACKGROUND_COLOR = "#ffffff"

# Width and height in CSS pixels at scale 1.
CHART_SIZES: dict[str, tuple[int, int]] = {"card": (640, 260), "large": (1200, 420)}
BASE_DPI = 100.0  # figure pixels per inch at scale 1: one per CSS pixel
MIN_SCALE = 1.0
MAX_SCALE = 3.0  # beyond 3x no screen gains anything and the PNG only grows

EMPTY_MESSAGE = "No summaries yet"


@dataclass(frozen=True, slots=True)
class ChartLayout:
    """Font sizes in CSS pixels at the chart's own width, and how many ticks fit along each axis."""

    title_px: float
    text_px: float  # tick labels, the unit, the dates, the legend
    x_ticks: int
    y_ticks: int


# The card is often shown narrower than its 640 CSS pixels (down to about 340), so its text is as large as its
# height allows.
CHART_LAYOUTS: dict[str, ChartLayout] = {
    "card": ChartLayout(title_px=14.0, text_px=12.0, x_ticks=5, y_ticks=5),
    "large": ChartLayout(title_px=16.0, text_px=13.0, x_ticks=10, y_ticks=8),
}

# Spacing in CSS pixels.
_EDGE = 5.0  # between the figure's edge and any text
_GAP = 5.0  # between the plot and its tick labels, and between rows of text
_LINE_WIDTH = 1.5  # points
_GRID_WIDTH = 0.6  # points
_LEGEND_SAMPLE = 2.0  # a legend's line sample, in font sizes

# A single instant (one point, or only duplicate timestamps) has no extent of its own: ten minutes either side.
_SINGLE_INSTANT_PAD = timedelta(minutes=10)
# Past the end of a chosen range, so the latest point (often right at its end) is not cut in half by the edge.
_SPAN_RIGHT_PAD = 0.015
# Above and below the values, as a share of their range, so the extremes are not drawn on the plot's edge.
_VALUE_PAD = 0.05

# Steps between time ticks, in seconds; each divides a day, so ticks fall on round clock times.


@dataclass(frozen=True, slots=True)
class ChartPoint:
    time: datetime  # timezone-aware UTC: the window_end of one summary
    min: float
    max: float
    avg: float


def check_size(name: str) -> str:
    """`name` if it is one of CHART_SIZES; otherwise ValueError with a reason fit for a 400 answer."""
    if name not in CHART_SIZES:
        raise ValueError(f"size must be one of {', '.join(CHART_SIZES)}")
    return name


def _clamp_scale(scale: float) -> float:
    if math.isnan(scale):
        return MIN_SCALE
    return min(max(scale, MIN_SCALE), MAX_SCALE)


def render_chart(
    points: Sequence[ChartPoint],
    *,
    title: str,
    unit: str,
    scale: float = 1.0,
    size: str = "card",
    x_span: tuple[datetime, datetime] | None = None,
    max_gap: timedelta | None = None,
) -> bytes:
    """PNG of max, min and avg lines over time.

    `size` is a name from CHART_SIZES; `scale` (clamped to [1, 3]) multiplies its pixel size for high-DPI
    screens. `x_span` fixes the time axis (a chosen range) instead of fitting it to the points; lines break
    where two points are more than `max_gap` apart, so a sensor that was silent shows a gap, not a straight
    line, and a point with a gap on both sides is drawn as a dot. The same input always gives the same bytes,
    whatever the order of `points`.
    """
    kind = (check_size(size), _clamp_scale(scale))
    with _POOL_LOCK:
        idle = _IDLE.get(kind)
        chart = idle.pop() if idle else None
    if chart is None:
        chart = _ChartFigure(*kind)
    png = chart.render(points, title=title, unit=unit, x_span=x_span, max_gap=max_gap)
    # Only after a render that completed: a figure left half set by an error is dropped, never reused.
    with _POOL_LOCK:
        idle = _IDLE.get(kind)
        if idle is None and len(_IDLE) < _POOL_KINDS:
            idle = _IDLE[kind] = []
        if idle is not None and len(idle) < _IDLE_PER_KIND:
            idle.append(chart)
    return png


def warm_up() -> None:
    """Load matplotlib, Pillow and the fonts and make a card figure by drawing one small chart, so that the first
    viewer's charts do not also pay for that (a few tenths of a second, once per process)."""
    render_chart([ChartPoint(datetime(2000, 1, 1, tzinfo=UTC), 0.0, 1.0, 0.5)], title="warm-up", unit="°C")


_POOL_LOCK = threading.Lock()
_IDLE: dict[tuple[str, float], list[_ChartFigure]] = {}
# Figures kept per size and scale: as many as threads usually draw at once; a busier moment makes more and
# drops them afterwards. Scales beyond the first few in use are not kept at all.
_IDLE_PER_KIND = 4
_POOL_KINDS = 8


@dataclass(frozen=True, slots=True)
class _Series:
    """Points in drawing order, as x (seconds from the time axis' left edge) and values, NaN where lines break."""

    xs: list[float]
    mins: list[float]
    maxs: list[float]
    avgs: list[float]
    alone: list[int]  # indexes into xs of points with a gap on both sides
    left: datetime  # the time axis' left edge
    right: datetime  # the last time the axis must show, before any padding


def _as_utc(moment: datetime) -> datetime:
    # A naive time is taken as UTC, never as the host's zone.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _series(
    points: Sequence[ChartPoint], x_span: tuple[datetime, datetime] | None, max_gap: timedelta | None
) -> _Series:
    # Sorting on every field, not only on time, makes points with the same timestamp come out in the same
    # order whatever order they arrived in, so the PNG (and any cache keyed on it) does not flicker.
    ordered = sorted(points, key=lambda p: (_as_utc(p.time), p.min, p.avg, p.max))
    times = [_as_utc(p.time) for p in ordered]
    left, right = (_as_utc(x_span[0]), _as_utc(x_span[1])) if x_span else (times[0], times[-1])
    if right <= left:
        left, right = left - _SINGLE_INSTANT_PAD, left + _SINGLE_INSTANT_PAD
    series = _Series([], [], [], [], [], left, right)
    last = len(ordered) - 1
    for n, point in enumerate(ordered):
        before = n > 0 and max_gap is not None and times[n] - times[n - 1] > max_gap
        after = n < last and max_gap is not None and times[n + 1] - times[n] > max_gap
        if before:
            for values in (series.xs, series.mins, series.maxs, series.avgs):
                values.append(math.nan)  # NaN breaks the lines and the band
        if (before or n == 0) and (after or n == last) and last > 0:
            series.alone.append(len(series.xs))
        series.xs.append((times[n] - left).total_seconds())
        series.mins.append(point.min)
        series.maxs.append(point.max)
        series.avgs.append(point.avg)
    return series


def _value_limits(series: _Series) -> tuple[float, float]:
    values = [v for v in (*series.mins, *series.maxs, *series.avgs) if math.isfinite(v)]
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if low == high:  # a flat series: one either side, or a twentieth of the value when that is more
        pad = max(1.0, abs(low) / 20)
        return low - pad, high + pad
    pad = (high - low) * _VALUE_PAD
    return low - pad, high + pad


@dataclass(frozen=True, slots=True)
class _Label:
    """A text to draw: at (x, y) pixels from the top left, placed by its Pillow anchor (e.g. "la": left,
    ascender), turned a quarter counter-clockwise if `upward`."""

    x: float
    y: float
    text: str
    anchor: str
    font: FreeTypeFont
    colour: str
    upward: bool = False


def _font(px: float) -> FreeTypeFont:
    # DejaVu Sans as matplotlib ships it, so the text does not depend on the host's fonts. The basic layout
    # (no HarfBuzz shaping) gives the same result wherever Pillow was built with or without it.
    from pathlib import Path

    import matplotlib
    from PIL import ImageFont

    path = Path(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
    return ImageFont.truetype(str(path), px, layout_engine=ImageFont.Layout.BASIC)


class _ChartFigure:
    """A figure of one size and scale: matplotlib's plot and the fonts for its text. `render` sets, every time,
    each thing that depends on the chart, so nothing of one chart is left on the next."""

    def __init__(self, size: str, scale: float) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection, PolyCollection
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        width, height = CHART_SIZES[size]
        self.layout = layout = CHART_LAYOUTS[size]
        self.scale = scale  # pixels per CSS pixel
        self.figure = fig = Figure(
            figsize=(width / BASE_DPI, height / BASE_DPI), dpi=BASE_DPI * scale, facecolor=BACKGROUND_COLOR
        )
        self.canvas = FigureCanvasAgg(fig)
        self.width, self.height = self.canvas.get_width_height(physical=True)
        self.title_font = _font(layout.title_px * scale)
        self.text_font = _font(layout.text_px * scale)

        # Rows, in pixels from the top: the title, the plot, the time tick labels, then the dates and the legend.
        # The plot's edges are on whole pixels, so its axis lines are sharp.
        text_row = sum(self.text_font.getmetrics())
        self.plot_top = round((_EDGE + _GAP) * scale + sum(self.title_font.getmetrics()))
        self.plot_bottom = round(self.height - (_EDGE + _GAP + _GAP) * scale - 2 * text_row)

        self.axes = ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        # matplotlib draws only the plot and its two axis lines; ticks and their labels are drawn here.
        ax.xaxis.set_visible(False)
        ax.yaxis.set_visible(False)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        self.grid = LineCollection([], colors=GRID_COLOR, linewidths=_GRID_WIDTH, zorder=0.5)
        ax.add_collection(self.grid, autolim=False)
        self.band = PolyCollection([], facecolors=RANGE_FILL_COLOR, alpha=RANGE_FILL_ALPHA, linewidths=0, zorder=1)
        ax.add_collection(self.band, autolim=False)
        # Drawn min, avg, max so the max line is on top where lines meet; the legend lists them the other way.
        self.lines = [
            Line2D([], [], color=colour, linewidth=_LINE_WIDTH) for colour in (MIN_COLOR, AVG_COLOR, MAX_COLOR)
        ]
        for line in self.lines:
            ax.add_line(line)
        self.legend, self.samples = self._legend()

    def render(
        self,
        points: Sequence[ChartPoint],
        *,
        title: str,
        unit: str,
        x_span: tuple[datetime, datetime] | None,
        max_gap: timedelta | None,
    ) -> bytes:
        from PIL import Image, ImageDraw

        edge = _EDGE * self.scale
        heading = _Label(edge, edge, self._fitted(title), "la", self.title_font, TEXT_COLOR)
        if points:
            self.axes.set_visible(True)
            labels = [heading, *self._set_series(_series(points, x_span, max_gap), unit, x_span is not None)]
            labels += self.legend
        else:
            self.axes.set_visible(False)
            message = _Label(self.width / 2, self.height / 2, EMPTY_MESSAGE, "mm", self.text_font, MUTED_TEXT_COLOR)
            labels = [replace(heading, colour=MUTED_TEXT_COLOR), message]
        self.canvas.draw()
        rgba = self.canvas.buffer_rgba()
        image = Image.frombuffer("RGBA", (self.width, self.height), rgba, "raw", "RGBA", 0, 1).convert("RGB")
        draw = ImageDraw.Draw(image)
        for label in labels:
            _draw_label(image, draw, label)
        if points:
            for box, colour in self.samples:
                draw.rectangle(box, fill=colour)
        return indexed_png(image, _EXACT_COLOURS)

    def _fitted(self, title: str) -> str:
        """`title`, cut short with an ellipsis if it is wider than the figure."""
        room = self.width - 2 * _EDGE * self.scale
        if self.title_font.getlength(title) <= room:
            return title
        low, high = 0, len(title)  # the longest prefix that fits with the ellipsis is in [low, high)
        while high - low > 1:
            middle = (low + high) // 2
            if self.title_font.getlength(title[:middle] + "…") <= room:
                low = middle
            else:
                high = middle
        return title[:low].rstrip() + "…"

    def _set_series(self, series: _Series, unit: str, fixed_span: bool) -> list[_Label]:
        """Set the plot for `series`; the labels to draw on it."""
        span = (series.right - series.left).total_seconds()
        x_high = span * (1 + _SPAN_RIGHT_PAD) if fixed_span else span
        y_low, y_high = _value_limits(series)
        x_ticks, x_texts = time_ticks(series.left, series.left + timedelta(seconds=x_high), self.layout.x_ticks)
        y_ticks, y_texts = value_ticks(y_low, y_high, self.layout.y_ticks)

        # Left: room for the unit (turned upward) and the widest value label; right: for half the widest time
        # label, which may sit on the plot's right edge.
        font, edge, gap = self.text_font, _EDGE * self.scale, _GAP * self.scale
        unit_width = sum(font.getmetrics()) + gap if unit else 0.0
        widest_value = max((font.getlength(text) for text in y_texts), default=0.0)
        widest_time = max((font.getlength(text) for text in x_texts), default=0.0)
        left = round(edge + unit_width + widest_value + gap)
        right = round(self.width - max(2 * edge, edge + widest_time / 2))
        top, bottom = self.plot_top, self.plot_bottom
        self.axes.set_position(
            (left / self.width, 1 - bottom / self.height, (right - left) / self.width, (bottom - top) / self.height)
        )
        self.axes.set_xlim(0.0, x_high)
        self.axes.set_ylim(y_low, y_high)
        self.grid.set_segments(
            [[(x, y_low), (x, y_high)] for x in x_ticks] + [[(0.0, y), (x_high, y)] for y in y_ticks]
        )
        self.band.set_verts(_band(series))
        marker, marker_size, every = "None", 0.0, None
        if len(series.xs) == 1:  # a lone point is invisible as a line: a dot shows it
            marker, marker_size = "o", 3.0
        elif series.alone:  # and so is a point with a gap on both sides
            marker, marker_size, every = "o", 2.5, series.alone
        for line, values in zip(self.lines, (series.mins, series.avgs, series.maxs), strict=True):
            line.set_data(series.xs, values)
            line.set_marker(marker)
            line.set_markersize(marker_size)
            line.set_markevery(every)

        def x_at(seconds: float) -> float:
            return left + (right - left) * seconds / x_high

        def y_at(value: float) -> float:
            return bottom - (bottom - top) * (value - y_low) / (y_high - y_low)

        muted = MUTED_TEXT_COLOR
        return [
            *(_Label(x_at(x), bottom + gap, text, "ma", font, muted) for x, text in zip(x_ticks, x_texts, strict=True)),
            *(_Label(left - gap, y_at(y), text, "rm", font, muted) for y, text in zip(y_ticks, y_texts, strict=True)),
            _Label(edge, (top + bottom) / 2, unit, "lm", font, muted, upward=True),
            _Label(edge, self.height - edge, date_label(series.left, series.right), "ld", font, muted),
        ]

    def _legend(self) -> tuple[list[_Label], list[tuple[tuple[float, float, float, float], str]]]:
        """The legend at the bottom right, "max", "avg" and "min" each after a sample of its line, laid out once:
        the labels and the samples' boxes."""
        font, scale = self.text_font, self.scale
        baseline = self.height - _EDGE * scale - font.getmetrics()[1]
        middle = baseline - 0.3 * self.layout.text_px * scale  # half a lowercase letter's height above the baseline
        thickness = round(_LINE_WIDTH / 72 * BASE_DPI * scale)
        labels: list[_Label] = []
        samples: list[tuple[tuple[float, float, float, float], str]] = []
        right = self.width - _EDGE * scale
        for name, colour in (("min", MIN_COLOR), ("avg", AVG_COLOR), ("max", MAX_COLOR)):
            labels.append(_Label(right, baseline, name, "rs", font, MUTED_TEXT_COLOR))
            end = right - font.getlength(name) - _GAP * scale
            start = end - _LEGEND_SAMPLE * self.layout.text_px * scale
            top = round(middle - thickness / 2)
            samples.append(((round(start), top, round(end) - 1, top + thickness - 1), colour))
            right = start - self.layout.text_px * scale
        return labels, samples


def _draw_label(image: Image, draw: ImageDraw, label: _Label) -> None:
    if not label.text:
        return
    if not label.upward:
        draw.text((label.x, label.y), label.text, fill=label.colour, font=label.font, anchor=label.anchor)
        return
    # Pillow draws text only across: draw it on a mask, turn the mask and paint through it. Placed by the
    # left and the vertical middle of the turned text.
    from PIL import Image as Images
    from PIL import ImageDraw as Drawing

    ascent, descent = label.font.getmetrics()
    mask = Images.new("L", (math.ceil(label.font.getlength(label.text)), ascent + descent))
    Drawing.Draw(mask).text((0, 0), label.text, fill=255, font=label.font, anchor="la")
    mask = mask.transpose(Images.Transpose.ROTATE_90)
    image.paste(label.colour, (round(label.x), round(label.y - mask.height / 2)), mask)


def _band(series: _Series) -> list[list[tuple[float, float]]]:
    """The min-max band: one polygon per run of points between line breaks."""
    polygons: list[list[tuple[float, float]]] = []
    run: list[int] = []
    for n in range(len(series.xs) + 1):
        if n < len(series.xs) and not math.isnan(series.xs[n]):
            run.append(n)
            continue
        if run:
            upper = [(series.xs[i], series.maxs[i]) for i in run]
            lower = [(series.xs[i], series.mins[i]) for i in reversed(run)]
            polygons.append(upper + lower)
        run = []
    return polygons


# The chart's own colours, kept exact in the indexed PNG.
_EXACT_COLOURS = [
    rgb(colour)
    for colour in (BACKGROUND_COLOR, TEXT_COLOR, MUTED_TEXT_COLOR, MAX_COLOR, AVG_COLOR, MIN_COLOR, GRID_COLOR)
]
