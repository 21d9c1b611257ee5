"""The series page of one sensor (`GET /sensors/{sensor_id}`): the sensor's alerts, then per metric its latest
figures and status, a large chart over the chosen range, its recent summaries and readings, and CSV downloads,
under the banner of firing alerts; the page's script keeps it live. Every URL on it is relative (`../api/...`),
so it works when the app is served under a path prefix.

Every value from the data is HTML-escaped; the script reads what it needs from data attributes, never from
markup it builds out of text.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Mapping
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

from shared.alerts.notifications import SOURCE
from shared.alerts.rules import SEVERITIES
from shared.dashboard.csv_export import READINGS_CSV, SUMMARIES_CSV, CsvKind
from shared.dashboard.page import alert_banner
from shared.dashboard.range_history import RANGES, ChartRange, chart_range
from shared.dashboard.reader import SENSOR_ALERTS
from shared.dashboard.series_view import PAGE_READINGS, PAGE_SUMMARIES, MetricHistory, SensorHistory
from shared.readings.reading import format_timestamp

SERIES_DEFAULT_RANGE = "1h"
_TITLE_MARK = "<!--title-->"
_HEADING_MARK = "<!--heading-->"
_RANGES_MARK = "<!--ranges-->"
_MAIN_MARK = "<!--main-->"
_BANNER_STYLE_MARK = "<!--alert-banner-style-->"
_BANNER_MARK = "<!--alert-banner-->"
_e = functools.partial(html.escape, quote=True)


@functools.cache
def _template() -> str:
    return resources.files("shared.dashboard").joinpath("series_page.html").read_text(encoding="utf-8")


def _fill(title: str, heading: str, ranges: str, main: str, banner: tuple[str, str] = ("", "")) -> str:
    """The template with its marks replaced; every argument is markup already escaped. `banner`: the alert
    banner's style and markup (page.alert_banner), or none."""
    page = _template()
    marks = (
        (_TITLE_MARK, title),
        (_HEADING_MARK, heading),
        (_RANGES_MARK, ranges),
        (_BANNER_STYLE_MARK, banner[0]),
        (_BANNER_MARK, banner[1]),
        (_MAIN_MARK, main),
    )
    for mark, markup in marks:
        page = page.replace(mark, markup, 1)
    return page


def figure(value: object) -> str:
    """A summary's min, avg or max as the page's headline shows it (one decimal)."""
    return f"{value:.1f}" if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def _table_figure(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def _plain(value: object) -> str:
    """A reading's value as sent, as the script's String(value) shows it (21.0 as 21)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def _shown_time(iso: object) -> str:
    """2024-05-01T10:00:07.000Z as 2024-05-01 10:00:07 (the tables say their times are UTC)."""
    text = str(iso or "")
    return text[:19].replace("T", " ") if len(text) >= 19 else text


def _metric_name(metric: str) -> str:
    return metric.replace("_", " ")


def chart_alt(sensor_id: str, metric: str, range_label: str, latest: Mapping[str, Any], unit: str) -> str:
    """What the large chart shows, with the latest figures: its text for those who cannot see it."""
    low, mean, high = (figure(latest.get(name)) for name in ("min", "avg", "max"))
    figures = f"latest min {low}, avg {mean}, max {high}"
    return f"{_metric_name(metric)} of {sensor_id} over the last {range_label}; {figures} {unit}".rstrip()


def chart_src(sensor_id: str, metric: str, range_name: str, version: object) -> str:
    return (
        f"../api/plots/{quote(sensor_id, safe='')}.png?metric={quote(metric, safe='')}&range={range_name}"
        f"&size=large&v={quote(str(version), safe='')}"
    )


def csv_href(sensor_id: str, kind: CsvKind, metric: str, start: datetime, end: datetime) -> str:
    query = urlencode({"metric": metric, "from": format_timestamp(start), "to": format_timestamp(end)})
    return f"../api/sensors/{quote(sensor_id, safe='')}/{kind.name}.csv?{query}"


def _ago(computed_at: object, now: datetime) -> str:
    try:
        then = datetime.fromisoformat(str(computed_at))
        seconds = max(0, round((now - then).total_seconds()))
    except (TypeError, ValueError):
        return ""
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def duration(seconds: float) -> str:
    """How long an alert fired, as the page's script writes it too: 42 s, 7 min, 3 h 5 min, 2 days."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 172800:
        hours, minutes = divmod(whole // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{whole // 86400} days"


def _moment(iso: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(iso))
    except ValueError:
        return None


def _alert_duration(alert: Mapping[str, Any], now: datetime) -> str:
    started = _moment(alert.get("starts_at"))
    ended = now if alert.get("status") == "firing" else _moment(alert.get("ends_at"))
    return "" if started is None or ended is None else duration((ended - started).total_seconds())


def _time_cell(iso: object) -> str:
    return f'<td><time datetime="{_e(str(iso or ""))}">{_e(_shown_time(iso))}</time></td>'


def _alert_row(alert: Mapping[str, Any], now: datetime) -> str:
    firing = alert.get("status") == "firing"
    severity = str(alert.get("severity", ""))
    source = str(alert.get("source", ""))
    from_elsewhere = f' <small class="source">from {_e(source)}</small>' if source and source != SOURCE else ""
    ended = "<td>firing</td>" if firing else _time_cell(alert.get("ends_at"))
    since = f' data-since="{_e(str(alert.get("starts_at", "")))}"' if firing else ""
    return (
        f'<tr class="{"firing" if firing else "resolved"}"><td>{_e(str(alert.get("name", "")))}{from_elsewhere}</td>'
        f'<td><span class="sev sev-{severity if severity in SEVERITIES else "warning"}">{_e(severity)}</span></td>'
        f"<td>{'firing' if firing else 'resolved'}</td><td>{_e(str(alert.get('summary', '')))}</td>"
        f"{_time_cell(alert.get('starts_at'))}{ended}"
        f'<td class="duration"{since}>{_e(_alert_duration(alert, now))}</td></tr>'
    )


def _alerts_section(sensor_id: str, alerts: list[dict[str, Any]], now: datetime) -> str:
    """The sensor's alerts, firing first, then newest first; a plain sentence when it has none."""
    rows = "".join(_alert_row(alert, now) for alert in alerts)
    return (
        '<section id="alert-history" class="card" aria-labelledby="h-alerts"><header><h2 id="h-alerts">Alerts</h2>'
        "</header>"
        f'<p class="no-alerts"{"" if not alerts else " hidden"}>No alerts recorded for {_e(sensor_id)}.</p>'
        f'<table class="alerts"{" hidden" if not alerts else ""}><caption>The newest {SENSOR_ALERTS} alerts of '
        f"{_e(sensor_id)}, firing first, times in UTC</caption><thead><tr>"
        '<th scope="col">Rule</th><th scope="col">Severity</th><th scope="col">State</th>'
        '<th scope="col">Summary</th><th scope="col">Started</th><th scope="col">Ended</th>'
        f'<th scope="col">Duration</th></tr></thead><tbody>{rows}</tbody></table></section>'
    )


def ranges_html(chosen: ChartRange) -> str:
    """The range choice: one radio button per range (arrow keys move between them), kept in the address."""
    buttons = "".join(
        f'<label><input type="radio" name="range" value="{r.name}" data-label="{_e(r.label)}" '
        f'data-seconds="{int(r.span.total_seconds())}"{" checked" if r is chosen else ""}>'
        f"<span>{_e(r.label)}</span></label>"
        for r in RANGES.values()
    )
    return f'<fieldset id="range"><legend>Charts over the last</legend>{buttons}</fieldset>'


def _summaries_table(history: MetricHistory, metric: str, unit: str) -> str:
    rows = "".join(
        f'<tr><td><time datetime="{_e(str(s.get("window_end", "")))}">{_e(_shown_time(s.get("window_end")))}</time>'
        f"</td><td>{_e(str(s.get('count', '–')))}</td><td>{_table_figure(s.get('min'))}</td>"
        f"<td>{_table_figure(s.get('avg'))}</td><td>{_table_figure(s.get('max'))}</td></tr>"
        for s in history.summaries
    )
    unit_note = f" ({_e(unit)})" if unit else ""
    return (
        f'<table class="summaries"><caption>Latest {PAGE_SUMMARIES} summaries of {_e(_metric_name(metric))}'
        f"{unit_note}, times in UTC</caption><thead><tr>"
        '<th scope="col">Window end</th><th scope="col">Count</th><th scope="col">Min</th>'
        f'<th scope="col">Avg</th><th scope="col">Max</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _readings_table(history: MetricHistory, metric: str) -> str:
    rows = "".join(
        f'<tr><td><time datetime="{_e(str(r.get("timestamp", "")))}">{_e(_shown_time(r.get("timestamp")))}</time>'
        f"</td><td>{_e(_plain(r.get('value')))}</td><td>{_e(str(r.get('unit', '')))}</td>"
        f"<td>{_e(str(r.get('source', '')))}</td></tr>"
        for r in history.readings
    )
    return (
        f'<table class="readings"><caption>Latest {PAGE_READINGS} readings of {_e(_metric_name(metric))}, '
        "times in UTC</caption><thead><tr>"
        '<th scope="col">Time</th><th scope="col">Value</th><th scope="col">Unit</th><th scope="col">Source</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _downloads(sensor_id: str, metric: str, chosen: ChartRange, now: datetime) -> str:
    start = now - chosen.span
    links = "".join(
        f'<a class="csv" data-csv="{kind.name}" href="{_e(csv_href(sensor_id, kind, metric, start, now))}" download>'
        f'{text}, last <span class="range-label">{_e(chosen.label)}</span> (CSV)</a>'
        for kind, text in ((READINGS_CSV, "Readings"), (SUMMARIES_CSV, "Summaries"))
    )
    return f'<p class="downloads">Download: {links}</p>'


def _section(sensor_id: str, history: MetricHistory, chosen: ChartRange, now: datetime) -> str:
    tile = history.tile
    metric = str(tile["metric"])
    unit = str(tile.get("unit", ""))
    latest: Mapping[str, Any] = tile.get("latest") or {}
    status = "stale" if tile.get("status") == "stale" else "ok"
    charts: Mapping[str, Any] = tile.get("charts") or {}
    src = chart_src(sensor_id, metric, chosen.name, charts.get(chosen.name, ""))
    computed_at = str(latest.get("computed_at", ""))
    return (
        f'<section class="series card" data-metric="{_e(metric)}" data-unit="{_e(unit)}" '
        f'data-latest="{_e(str(latest.get("id", "")))}" data-charts="{_e(json.dumps(charts))}" '
        f'data-shown="{_e(src)}" aria-labelledby="h-{_e(metric)}">'
        f'<header><span class="dot {status}" aria-hidden="true"></span><h2 id="h-{_e(metric)}">'
        f"{_e(_metric_name(metric))}</h2>"
        f'<span class="state {status}" data-status>{status}</span></header>'
        f'<p class="stats">min <b data-f="min">{figure(latest.get("min"))}</b> · '
        f'avg <b data-f="avg">{figure(latest.get("avg"))}</b> · '
        f'max <b data-f="max">{figure(latest.get("max"))}</b> <span class="unit">{_e(unit)}</span> · '
        f'count <b data-f="count">{_e(str(latest.get("count", "–")))}</b> · '
        f'updated <time class="ago" datetime="{_e(computed_at)}">{_e(_ago(computed_at, now))}</time></p>'
        f'<img class="chart" src="{_e(src)}" srcset="{_e(src)}&amp;scale=2 2x" width="1200" height="420" '
        f'alt="{_e(chart_alt(sensor_id, metric, chosen.label, latest, unit))}">'
        f"{_downloads(sensor_id, metric, chosen, now)}"
        f'<div class="tables">{_summaries_table(history, metric, unit)}{_readings_table(history, metric)}</div>'
        "</section>"
    )


def render_series_page(history: SensorHistory, range_name: str, firing: Mapping[str, Any] | None = None) -> str:
    """The page of a sensor with at least one series, its charts over `range_name`, under the banner of the
    alerts `firing` (a page of GET /api/alerts?state=firing; None: the banner asks for it)."""
    chosen = chart_range(range_name)
    sensor_id = history.sensor_id
    sections = "".join(_section(sensor_id, h, chosen, history.now) for h in history.series)
    alerts = _alerts_section(sensor_id, history.alerts, history.now)
    main = (
        f'<main id="series" data-sensor="{_e(sensor_id)}" data-summaries="{PAGE_SUMMARIES}" '
        f'data-readings="{PAGE_READINGS}">{alerts}{sections}</main>'
    )
    banner = alert_banner(firing, "../")
    return _fill(f"{_e(sensor_id)} · Sensor Pulse", _e(sensor_id), ranges_html(chosen), main, banner)


def render_problem_page(heading: str, message: str) -> str:
    """The page for a sensor that cannot be shown (unknown, or a malformed id or range): why, and the way back."""
    main = f'<main id="problem"><p>{_e(message)}</p><p><a href="../">Back to the dashboard</a></p></main>'
    return _fill(f"{_e(heading)} · Sensor Pulse", _e(heading), "", main)
