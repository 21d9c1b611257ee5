"""Where a chart's ticks go and what they say: round clock times on the time axis (a date at midnight), round
values 1, 2 or 5 times a power of ten apart on the value axis, and the axis' UTC date label. Pure arithmetic,
no drawing."""

from __future__ import annotations

import math
from datetime import UTC, datetime

_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_DAY = 86400
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MINUS = "\N{MINUS SIGN}"


def time_ticks(left: datetime, right: datetime, most: int) -> tuple[list[float], list[str]]:
    """Up to `most` ticks on round UTC clock times from `left` to `right`, as seconds from `left`, with labels:
    hours and minutes (and seconds for short spans), the date at midnight and when ticks are days apart."""
    start, end = left.timestamp(), right.timestamp()
    span = end - start
    step = next((s for s in _TIME_STEPS if span / s < most), _TIME_STEPS[-1])
    while span / step >= most:  # longer than the table: whole days, doubled until they fit
        step *= 2
    ticks: list[float] = []
    labels: list[str] = []
    at = math.ceil(start / step) * step
    while at <= end:
        moment = datetime.fromtimestamp(at, UTC)
        if step >= _DAY or at % _DAY == 0:
            labels.append(f"{moment.day} {_MONTHS[moment.month - 1]}")
        else:
            labels.append(f"{moment:%H:%M:%S}" if step < 60 else f"{moment:%H:%M}")
        ticks.append(at - start)
        at += step
    return ticks, labels


def date_label(left: datetime, right: datetime) -> str:
    """The time axis' label: its zone and the dates it covers, e.g. "UTC · 2 Mar 2026"."""

    def day(moment: datetime, year: bool) -> str:
        text = f"{moment.day} {_MONTHS[moment.month - 1]}"
        return f"{text} {moment.year}" if year else text

    if left.date() == right.date():
        return f"UTC · {day(left, True)}"
    return f"UTC · {day(left, left.year != right.year)} – {day(right, True)}"


def value_ticks(low: float, high: float, most: int) -> tuple[list[float], list[str]]:
    """Up to `most` ticks at round values (1, 2 or 5 times a power of ten apart) from `low` to `high`."""
    if not math.isfinite(high - low):
        return [], []
    magnitude = 10.0 ** math.floor(math.log10((high - low) / most))
    step = magnitude
    first = last = 0
    for multiple in (1, 2, 5, 10):  # 10 always fits: then fewer than `most` steps span the range
        step = multiple * magnitude
        first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
        if last - first < most:
            break
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    ticks = [k * step for k in range(first, last + 1)]
    return ticks, [f"{tick:.{decimals}f}".replace("-", _MINUS) for tick in ticks]
