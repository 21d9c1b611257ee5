"""The dashboard page: the fleet's first page of tiles travels inside the document, so the first numbers show
without waiting for a second request; the page's script draws the tiles and keeps them live.

The banner of firing alerts (alert_banner.html, its style alert_banner.css) sits at the top of this page and of
every series page; the alerts firing when the page was asked for travel inside it the same way."""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from shared.dashboard.range_history import CARD_RANGES, RANGES, chart_range

PAGE_SIZE = 48  # tiles per page: two to four columns of whole rows; the DOM never holds the whole fleet
BANNER_ALERTS = 20  # the firing alerts a banner asks for; it lists the 5 most severe and counts the rest
_RANGES_MARK = "<!--ranges-->"
_FIRST_PAGE_MARK = "<!--first-page-->"
_PAGE_SIZE_MARK = "<!--page-size-->"
_BANNER_MARK = "<!--alert-banner-->"
_BANNER_STYLE_MARK = "<!--alert-banner-style-->"


@functools.cache
def _template(name: str = "page.html") -> str:
    return resources.files("shared.dashboard").joinpath(name).read_text(encoding="utf-8")


def ranges_html(chosen: str, refresh_seconds: Mapping[str, int]) -> str:
    """The range choice: one radio button per range, with how often its charts may change."""
    buttons = "".join(
        f'<label><input type="radio" name="range" value="{r.name}" data-label="{html.escape(r.label)}" '
        f'data-refresh="{refresh_seconds[r.name]}"{" checked" if r.name == chosen else ""}>'
        f"<span>{html.escape(r.label)}</span></label>"
        for r in RANGES.values()
        if r.name in CARD_RANGES
    )
    return f'<fieldset id="range"><legend>Charts over the last</legend>{buttons}</fieldset>'


def script_json(value: Any) -> str:
    """JSON to sit inside a <script> element: no '<' can close it, whatever the data holds."""
    return (
        json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def alert_banner(firing: Mapping[str, Any] | None, base: str) -> tuple[str, str]:
    """The banner's style, for the head, and its markup and script, for the top of the body; with `firing` (a
    page of GET /api/alerts?state=firing) to show at once (None: the banner asks for it). `base` leads from the
    page to the site root ("" or "../")."""
    style = f"<style>\n{_template('alert_banner.css')}</style>"
    markup = (
        _template("alert_banner.html")
        .replace("<!--alerts-base-->", html.escape(base), 1)
        .replace("<!--alerts-limit-->", str(BANNER_ALERTS), 1)
        .replace("<!--first-alerts-->", script_json(firing), 1)
    )
    return style, markup


def render_page(
    first_page: Mapping[str, Any],
    range_name: str,
    refresh_seconds: Mapping[str, int],
    firing: Mapping[str, Any] | None = None,
) -> str:
    chosen = chart_range(range_name).name
    if chosen not in CARD_RANGES:
        raise ValueError(f"range must be one of {', '.join(CARD_RANGES)} on this page")
    style, banner = alert_banner(firing, "")
    return (
        _template()
        .replace(_RANGES_MARK, ranges_html(chosen, refresh_seconds))
        .replace(_FIRST_PAGE_MARK, script_json(first_page))
        .replace(_PAGE_SIZE_MARK, str(PAGE_SIZE))
        .replace(_BANNER_STYLE_MARK, style, 1)
        .replace(_BANNER_MARK, banner, 1)
    )
