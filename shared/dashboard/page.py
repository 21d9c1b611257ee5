"""The dashboard page: server-rendered cards for the series known now; the page's script adds the rest."""

from __future__ import annotations

import functools
import html
from collections.abc import Mapping
from importlib import resources
from typing import Any
from urllib.parse import quote

from shared.dashboard.range_history import CARD_RANGES, RANGES, chart_range

_CARDS_MARK = "<!--cards-->"
_RANGES_MARK = "<!--ranges-->"


@functools.cache
def _template() -> str:
    return resources.files("shared.dashboard").joinpath("page.html").read_text(encoding="utf-8")


def _number(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "–"


def chart_alt(sensor_id: str, metric: str, range_label: str) -> str:
    return f"{metric} of {sensor_id} over the last {range_label}: min, average and max of the latest readings"


def card_html(series: dict[str, Any], range_name: str) -> str:
    sensor_id = str(series["sensor_id"])
    metric = str(series["metric"])
    latest = series.get("latest") or {}
    latest_id = str(latest.get("id", ""))
    unit = html.escape(str(series.get("unit", "")))
    src = (
        f"api/plots/{quote(sensor_id, safe='')}.png?metric={quote(metric)}&range={range_name}"
        f"&v={quote(latest_id, safe='')}"
    )
    computed_at = str(latest.get("computed_at", ""))
    e = html.escape
    return (
        f'<article class="card" data-key="{e(sensor_id)}|{e(metric)}" data-sensor="{e(sensor_id)}" '
        f'data-metric="{e(metric)}" data-latest="{e(latest_id)}" data-chart="{e(latest_id)}|{range_name}">'
        f'<header><span class="dot" aria-hidden="true"></span><h2>{e(sensor_id)}</h2>'
        f'<span class="metric">{e(metric.replace("_", " "))} ({unit})</span></header>'
        f'<p class="stats">min <b data-f="min">{_number(latest.get("min"))}</b> · '
        f'avg <b data-f="avg">{_number(latest.get("avg"))}</b> · '
        f'max <b data-f="max">{_number(latest.get("max"))}</b> {unit} '
        f'<time class="ago" datetime="{e(computed_at)}">{e(computed_at)}</time></p>'
        f'<img src="{e(src)}" srcset="{e(src)}&amp;scale=2 2x" '
        f'alt="{e(chart_alt(sensor_id, metric, RANGES[range_name].label))}" width="640" height="260">'
        f"</article>"
    )


def ranges_html(chosen: str, refresh_seconds: Mapping[str, int]) -> str:
    """The range choice: one radio button per range, with how often its charts are redrawn."""
    buttons = "".join(
        f'<label><input type="radio" name="range" value="{r.name}" data-label="{html.escape(r.label)}" '
        f'data-refresh="{refresh_seconds[r.name]}"{" checked" if r.name == chosen else ""}>'
        f"<span>{html.escape(r.label)}</span></label>"
        for r in RANGES.values()
        if r.name in CARD_RANGES
    )
    return f'<fieldset id="range"><legend>Charts over the last</legend>{buttons}</fieldset>'


def render_page(series: list[dict[str, Any]], range_name: str, refresh_seconds: Mapping[str, int]) -> str:
    chosen = chart_range(range_name).name
    cards = "".join(card_html(s, chosen) for s in series if s.get("latest"))
    return _template().replace(_RANGES_MARK, ranges_html(chosen, refresh_seconds)).replace(_CARDS_MARK, cards)
