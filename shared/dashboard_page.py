"""The dashboard page: server-rendered cards for the series known now; the page's script adds the rest."""

from __future__ import annotations

import functools
import html
from importlib import resources
from typing import Any
from urllib.parse import quote

_CARDS_MARK = "<!--cards-->"


@functools.cache
def _template() -> str:
    return resources.files("shared").joinpath("dashboard_page.html").read_text(encoding="utf-8")


def _number(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "–"


def card_html(series: dict[str, Any]) -> str:
    sensor_id = str(series["sensor_id"])
    metric = str(series["metric"])
    latest = series.get("latest") or {}
    unit = html.escape(str(series.get("unit", "")))
    src = f"api/plots/{quote(sensor_id, safe='')}.png?metric={quote(metric)}&v={quote(str(latest.get('id', '')))}"
    computed_at = str(latest.get("computed_at", ""))
    e = html.escape
    return (
        f'<article class="card" data-key="{e(sensor_id)}|{e(metric)}" data-latest="{e(str(latest.get("id", "")))}">'
        f'<header><span class="dot" aria-hidden="true"></span><h2>{e(sensor_id)}</h2>'
        f'<span class="metric">{e(metric.replace("_", " "))} ({unit})</span></header>'
        f'<p class="stats">min <b data-f="min">{_number(latest.get("min"))}</b> · '
        f'avg <b data-f="avg">{_number(latest.get("avg"))}</b> · '
        f'max <b data-f="max">{_number(latest.get("max"))}</b> {unit} '
        f'<time class="ago" datetime="{e(computed_at)}">{e(computed_at)}</time></p>'
        f'<img src="{e(src)}" srcset="{e(src)}&amp;scale=2 2x" '
        f'alt="{e(metric)} of {e(sensor_id)}: min, average and max of the latest readings" '
        f'width="640" height="260">'
        f"</article>"
    )


def render_page(series: list[dict[str, Any]]) -> str:
    cards = "".join(card_html(s) for s in series if s.get("latest"))
    return _template().replace(_CARDS_MARK, cards)
