"""Summary charts: the max, avg and min of a series' sliding-window summaries over time, as PNG bytes.

Rendering runs on many request threads at once, so it uses only matplotlib's object API (a `Figure` per
call with its own Agg canvas) and never `matplotlib.pyplot`, whose global figure registry and current-axes
state are shared between threads. matplotlib is imported inside `render_chart`: importing it costs far more
than the rest of the app's cold start, and most invocations never draw a chart.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# One colour per statistic, the same on every chart so a reader learns them once.
MAX_COLOR = "#d62728"  # red: the hot end
AVG_COLOR = "#1f3b73"  # dark blue: the line the eye should follow
MIN_COLOR = "#6baed6"  # light blue: the cold end
RANGE_FILL_COLOR = "#9ecae1"
RANGE_FILL_ALPHA = 0.25
GRID_COLOR = "#e6e6e6"
MUTED_TEXT_COLOR = "#555555"
BACKGROUND_COLOR = "#ffffff"

WIDTH_INCHES = 6.4  # 640 CSS pixels at 100 dpi
HEIGHT_INCHES = 2.6  # 260 CSS pixels at 100 dpi
BASE_DPI = 100.0
MIN_SCALE = 1.0
MAX_SCALE = 3.0  # beyond 3x no screen gains anything and the PNG only grows

EMPTY_MESSAGE = "No summaries yet"

CHART_SIZES: dict[str, tuple[int, int]] = {"card": (640, 260), "large": (1200, 420)}  # CSS pixels at scale 1


def check_size(name: str) -> str:
    if name not in CHART_SIZES:
        raise ValueError(f"size must be one of {', '.join(CHART_SIZES)}")
    return name


# A single instant (one point, or only duplicate timestamps) has no extent of its own; without padding
# matplotlib widens the x range to years. Ten minutes either side keeps the tick labels as clock times.
_SINGLE_INSTANT_PAD = timedelta(minutes=10)

# Past the end of a chosen range, so the latest point (often right at its end) is not cut in half by the edge.
_SPAN_RIGHT_PAD = 0.015

# What tight_layout(pad=0.4) gives this chart's layout (title above, legend inside, "UTC" under the axis), as
# fractions of the figure, which hold at every scale; the left edge is this many points plus the widest y tick
# label (_fit_margins).
_LEFT_MARGIN_POINTS = 23.0
_RIGHT_EDGE = 0.9913
_BOTTOM_EDGE = 0.1629
_TOP_EDGE = 0.905

# Text sizes in points, so they scale with dpi and a 2x chart looks the same, only sharper.
_TITLE_SIZE = 9.0
_LABEL_SIZE = 8.0
_TICK_SIZE = 7.5
_LEGEND_SIZE = 7.5
_LINE_WIDTH = 1.5


@dataclass(frozen=True, slots=True)
class ChartPoint:
    time: datetime  # timezone-aware UTC: the window_end of one summary
    min: float
    max: float
    avg: float


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
    x_span: tuple[datetime, datetime] | None = None,
    max_gap: timedelta | None = None,
) -> bytes:
    """PNG of max, min and avg lines over time.

    640x260 pixels at `scale` 1; `scale` (clamped to [1, 3]) multiplies the pixel size for high-DPI screens.
    `x_span` fixes the time axis (a chosen range) instead of fitting it to the points; lines break where two
    points are more than `max_gap` apart, so a sensor that was silent shows a gap, not a straight line, and a
    point with a gap on both sides is drawn as a dot. The same input always gives the same bytes, whatever the
    order of `points`.
    """
    # Imported here, not at module level: see the module docstring.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = BASE_DPI * _clamp_scale(scale)
    fig = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=dpi, facecolor=BACKGROUND_COLOR)
    canvas = FigureCanvasAgg(fig)

    if points:
        _draw_series(fig, points, title=title, unit=unit, x_span=x_span, max_gap=max_gap)
    else:
        _draw_empty(fig, title=title)

    buffer = io.BytesIO()
    # print_png rather than fig.savefig: savefig consults global rcParams (savefig.bbox, savefig.dpi, ...)
    # that could change the pixel size. Dropping "Software" leaves no version stamp in the file, and
    # print_png writes no time stamp, so equal input gives equal bytes.
    canvas.print_png(buffer, metadata={"Software": None}, pil_kwargs={"compress_level": 3})
    return buffer.getvalue()


def _draw_empty(fig: Figure, *, title: str) -> None:
    # parse_math=False throughout: a "$" in a sensor id or unit is text, not the start of a formula.
    fig.text(
        0.015,
        0.96,
        title,
        ha="left",
        va="top",
        fontsize=_TITLE_SIZE,
        color=MUTED_TEXT_COLOR,
        parse_math=False,
    )
    fig.text(0.5, 0.5, EMPTY_MESSAGE, ha="center", va="center", fontsize=10.0, color=MUTED_TEXT_COLOR)


def _draw_series(
    fig: Figure,
    points: Sequence[ChartPoint],
    *,
    title: str,
    unit: str,
    x_span: tuple[datetime, datetime] | None,
    max_gap: timedelta | None,
) -> None:
    from matplotlib import dates as mdates

    # Sorting on every field, not only on time, makes points with the same timestamp come out in the same
    # order whatever order they arrived in, so the PNG (and any cache keyed on it) does not flicker.
    ordered = sorted(points, key=lambda p: (p.time, p.min, p.avg, p.max))
    # date2num turns aware datetimes into UTC day numbers; the axis then shows UTC whatever the host's zone.
    times = [float(x) for x in mdates.date2num([p.time for p in ordered])]
    xs: list[float] = []
    mins: list[float] = []
    maxs: list[float] = []
    avgs: list[float] = []
    alone: list[int] = []  # indexes into xs of points with a gap on both sides
    gap_days = None if max_gap is None else max_gap / timedelta(days=1)
    for n, point in enumerate(ordered):
        before = n > 0 and gap_days is not None and times[n] - times[n - 1] > gap_days
        after = n + 1 < len(ordered) and gap_days is not None and times[n + 1] - times[n] > gap_days
        if before:
            xs.append(math.nan)  # NaN breaks the lines and the band
            mins.append(math.nan)
            maxs.append(math.nan)
            avgs.append(math.nan)
        if (before or n == 0) and (after or n + 1 == len(ordered)) and len(ordered) > 1:
            alone.append(len(xs))
        xs.append(times[n])
        mins.append(point.min)
        maxs.append(point.max)
        avgs.append(point.avg)

    ax: Axes = fig.add_subplot()
    ax.fill_between(xs, mins, maxs, color=RANGE_FILL_COLOR, alpha=RANGE_FILL_ALPHA, linewidth=0)
    # Drawn min, avg, max so the max line is on top where lines meet; the legend lists them top-down.
    (min_line,) = ax.plot(xs, mins, color=MIN_COLOR, linewidth=_LINE_WIDTH, label="min")
    (avg_line,) = ax.plot(xs, avgs, color=AVG_COLOR, linewidth=_LINE_WIDTH, label="avg")
    (max_line,) = ax.plot(xs, maxs, color=MAX_COLOR, linewidth=_LINE_WIDTH, label="max")
    if len(ordered) == 1:
        # A lone point is invisible as a line; a marker shows it.
        for line in (min_line, avg_line, max_line):
            line.set_marker("o")
            line.set_markersize(3.0)
    elif alone:
        for line in (min_line, avg_line, max_line):
            line.set_marker("o")
            line.set_markersize(2.5)
            line.set_markevery(alone)

    first, last = ordered[0].time, ordered[-1].time
    if x_span is not None:
        left, right = (float(x) for x in mdates.date2num(list(x_span)))
        ax.set_xlim(left, right + (right - left) * _SPAN_RIGHT_PAD)
    elif first == last:
        ax.set_xlim(
            float(mdates.date2num(first - _SINGLE_INSTANT_PAD)),
            float(mdates.date2num(last + _SINGLE_INSTANT_PAD)),
        )
    else:
        ax.set_xlim(times[0], times[-1])

    # tz given explicitly rather than taken from rcParams["timezone"], which any code may change.
    locator = mdates.AutoDateLocator(tz=UTC, minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    ax.set_xlabel("UTC", fontsize=_LABEL_SIZE, color=MUTED_TEXT_COLOR)
    ax.set_ylabel(unit, fontsize=_LABEL_SIZE, color=MUTED_TEXT_COLOR, parse_math=False)
    ax.set_title(title, loc="left", fontsize=_TITLE_SIZE, parse_math=False, y=1.0, pad=6.0)
    ax.tick_params(labelsize=_TICK_SIZE, colors=MUTED_TEXT_COLOR)
    ax.xaxis.get_offset_text().set_fontsize(_TICK_SIZE)
    ax.yaxis.get_offset_text().set_fontsize(_TICK_SIZE)
    ax.grid(True, color=GRID_COLOR, linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    # A fixed location: loc="best" would search the data for a free corner on every render, which is slow.
    ax.legend(
        handles=[max_line, avg_line, min_line],
        loc="upper left",
        fontsize=_LEGEND_SIZE,
        frameon=False,
        ncols=3,
        handlelength=1.6,
        columnspacing=1.2,
    )
    _fit_margins(fig, ax)


def _fit_margins(fig: Figure, ax: Axes) -> None:
    """The margins `fig.tight_layout(pad=0.4)` gives this layout, without its extra pass that lays out and
    measures every artist (a third of a render's time). Only the left margin depends on the data, through
    the widest y tick label; it is measured with the same renderer that then draws the chart."""
    from matplotlib.font_manager import FontProperties

    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # FigureCanvasAgg's, set in render_chart
    # The labels the y axis will draw, from its own locator and formatter; not get_yticklabels(), which builds
    # Tick artists only to be rebuilt for the new axes size.
    low, high = sorted(ax.get_ylim())
    values = [value for value in ax.yaxis.get_major_locator()() if low <= value <= high]
    font = FontProperties(size=_TICK_SIZE)
    widest = max(
        (
            renderer.get_text_width_height_descent(text, font, ismath=False)[0]
            for text in ax.yaxis.get_major_formatter().format_ticks(values)
            if text
        ),
        default=0.0,
    )
    left = (_LEFT_MARGIN_POINTS * fig.dpi / 72.0 + widest) / fig.bbox.width
    fig.subplots_adjust(left=left, right=_RIGHT_EDGE, bottom=_BOTTOM_EDGE, top=_TOP_EDGE)


def warm_up() -> None:
    """Load matplotlib, its fonts and the Agg renderer by drawing one small chart, so that the first viewer's
    charts do not also pay for that (a few tenths of a second, once per process)."""
    render_chart([ChartPoint(datetime(2000, 1, 1, tzinfo=UTC), 0.0, 1.0, 0.5)], title="warm-up", unit="°C")
