"""The fleet overview: one tile per series (its latest figures, age and status), filtered, grouped, sorted and
paged, for the dashboard page and `GET /api/sensors`.

Pure: no I/O. The reader hands in the tiles it read from window state; everything here is a function of them,
the query and the time, and of each series' alert badge where the caller hands in a way to look it up.

A page's cursor names the sort key of the last tile it held, so the next page starts after that key even when
series were added or moved meanwhile (no tile is skipped because the list grew ahead of it). It also carries a
digest of the query, so a cursor is refused with another filter, grouping or sort.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.readings.reading import epoch_ms, format_epoch_ms
from shared.readings.rules import METRIC_MESSAGE, METRIC_PATTERN

STALE_AFTER_INTERVALS = 3  # a series is stale when silent for more than this many of its usual intervals
# A series whose window holds one reading has no usual interval yet: stale after this long without another.
UNKNOWN_INTERVAL_STALE_MS = 15 * 60 * 1000
GROUPINGS = ("none", "location", "metric")
SORTS = ("name", "newest", "stalest")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_FILTER_LENGTH = 100
NO_LOCATION = ""  # the group of a series whose id is not a dotted location path
# (sensor, metric) -> the series' alert badge ({"state": "firing" or "pending", "severity", "name", "count"}), or
# None while no rule fires or is pending on it
AlertLookup = Callable[[str, str], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class Tile:
    sensor_id: str
    metric: str
    unit: str
    latest: Mapping[str, Any]  # the series' latest summary document
    end_ms: int  # its window_end: the newest reading summarised
    interval_ms: int | None  # the usual time between two readings, over the window; None with one reading

    @property
    def location(self) -> str:
        """Where an occupancy series sits: its dotted location path without the last part ("Building-A.Floor-2"
        for "Building-A.Floor-2.Zone-3"); NO_LOCATION for an id that is not a path."""
        parent, dot, _ = self.sensor_id.rpartition(".")
        return parent if dot else NO_LOCATION

    @property
    def stale_after_ms(self) -> int:
        """When the series turns stale without another reading."""
        if self.interval_ms is None:
            return self.end_ms + UNKNOWN_INTERVAL_STALE_MS
        return self.end_ms + STALE_AFTER_INTERVALS * self.interval_ms

    def stale(self, now_ms: int) -> bool:
        return now_ms > self.stale_after_ms


def tile_from_summary(summary: Mapping[str, Any]) -> Tile | None:
    """The tile of a series from its latest summary; None for a summary without usable times."""
    try:
        end_ms = epoch_ms(datetime.fromisoformat(str(summary["window_end"])))
        start_ms = epoch_ms(datetime.fromisoformat(str(summary["window_start"])))
        count = int(summary["count"])
    except (KeyError, TypeError, ValueError):
        return None
    interval = (end_ms - start_ms) // (count - 1) if count > 1 and end_ms > start_ms else None
    return Tile(
        sensor_id=str(summary["sensor_id"]),
        metric=str(summary["metric"]),
        unit=str(summary.get("unit", "")),
        latest=summary,
        end_ms=end_ms,
        interval_ms=interval,
    )


def chart_versions(end_ms: int, refresh_seconds: Mapping[str, int]) -> dict[str, int]:
    """Per range, the version of the series' chart: the refresh period its newest reading falls in. Every viewer
    computes the same one, and it changes at most once per period however often the series reports."""
    return {name: end_ms // (seconds * 1000) for name, seconds in refresh_seconds.items()}


@dataclass(frozen=True, slots=True)
class FleetQuery:
    q: str = ""  # case-insensitive; matches within the sensor id, metric or location
    metric: str | None = None  # exactly this metric
    group: str = "none"
    sort: str = "name"

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> FleetQuery:
        """From query-string values; ValueError names the bad parameter."""
        q = params.get("q", "").strip()
        if len(q) > MAX_FILTER_LENGTH:
            raise ValueError(f"q must be at most {MAX_FILTER_LENGTH} characters")
        metric = params.get("metric") or None
        if metric is not None and not METRIC_PATTERN.fullmatch(metric):
            raise ValueError(f"metric {METRIC_MESSAGE}")
        group = params.get("group") or "none"
        if group not in GROUPINGS:
            raise ValueError(f"group must be one of {', '.join(GROUPINGS)}")
        sort = params.get("sort") or "name"
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        return cls(q, metric, group, sort)

    def matches(self, tile: Tile) -> bool:
        if self.metric is not None and tile.metric != self.metric:
            return False
        if not self.q:
            return True
        needle = self.q.casefold()
        return any(needle in text.casefold() for text in (tile.sensor_id, tile.metric, tile.location))

    def group_of(self, tile: Tile) -> str:
        if self.group == "location":
            return tile.location
        if self.group == "metric":
            return tile.metric
        return ""

    def sort_key(self, tile: Tile) -> tuple[str, int, str, str]:
        """Group first, then the chosen order; sensor and metric make every key unique."""
        primary = {"name": 0, "newest": -tile.end_ms, "stalest": tile.end_ms}[self.sort]
        return (self.group_of(tile), primary, tile.sensor_id, tile.metric)

    def digest(self) -> str:
        raw = "\x1f".join((self.q, self.metric or "", self.group, self.sort))
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


def encode_cursor(key: tuple[str, int, str, str], query: FleetQuery) -> str:
    raw = json.dumps({"k": list(key), "d": query.digest()}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, query: FleetQuery) -> tuple[str, int, str, str]:
    """The key a cursor names; ValueError for one this listing did not issue, or issued for another query."""
    invalid = ValueError("cursor is not one this listing gave out")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    if not isinstance(decoded, dict):
        raise invalid
    key, digest = decoded.get("k"), decoded.get("d")
    if not (
        isinstance(key, list)
        and len(key) == 4
        and isinstance(key[0], str)
        and isinstance(key[1], int)
        and isinstance(key[2], str)
        and isinstance(key[3], str)
    ):
        raise invalid
    if digest != query.digest():
        raise ValueError("cursor belongs to a listing with another q, metric, group or sort; start without it")
    return (key[0], key[1], key[2], key[3])


class SortedFleet:
    """The tiles that match one query, in its order: built once per (snapshot, query), shared by every page."""

    def __init__(self, tiles: Sequence[Tile], query: FleetQuery) -> None:
        self.query = query
        ordered = sorted((query.sort_key(t), t) for t in tiles if query.matches(t))
        self._keys = [key for key, _ in ordered]
        self.tiles = [tile for _, tile in ordered]

    def page(
        self,
        limit: int,
        cursor: str | None,
        now_ms: int,
        refresh_seconds: Mapping[str, int],
        alerts: AlertLookup | None = None,
    ) -> dict[str, Any]:
        """One page of the listing as the API answers it. The answer holds no clock reading, only data times,
        statuses and alert badges, so the same data gives the same bytes (and ETag) from one poll to the next, and
        an alert that fires or resolves changes them."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        start = 0 if cursor is None else bisect.bisect_right(self._keys, decode_cursor(cursor, self.query))
        chosen = self.tiles[start : start + limit]
        following = start + limit < len(self.tiles)
        answer: dict[str, Any] = {
            "items": [tile_json(t, self.query, now_ms, refresh_seconds, alerts) for t in chosen],
            "next_cursor": encode_cursor(self._keys[start + limit - 1], self.query) if following else None,
            "total": len(self.tiles),
            "stale": sum(1 for t in self.tiles if t.stale(now_ms)),
        }
        if self.query.group != "none":
            answer["groups"] = self._groups(now_ms)
        return answer

    def _groups(self, now_ms: int) -> list[dict[str, Any]]:
        counts: dict[str, list[int]] = {}
        for key, tile in zip(self._keys, self.tiles, strict=True):
            count = counts.setdefault(key[0], [0, 0])
            count[0] += 1
            count[1] += tile.stale(now_ms)
        return [{"name": name, "count": n, "stale": stale} for name, (n, stale) in counts.items()]


def tile_json(
    tile: Tile,
    query: FleetQuery,
    now_ms: int,
    refresh_seconds: Mapping[str, int],
    alerts: AlertLookup | None = None,
) -> dict[str, Any]:
    alert = None if alerts is None else alerts(tile.sensor_id, tile.metric)
    return {
        "sensor_id": tile.sensor_id,
        "metric": tile.metric,
        "unit": tile.unit,
        "location": tile.location,
        "group": query.group_of(tile),
        "status": "stale" if tile.stale(now_ms) else "ok",
        "interval_seconds": None if tile.interval_ms is None else tile.interval_ms / 1000,
        "stale_after": format_epoch_ms(tile.stale_after_ms),
        "latest": dict(tile.latest),
        "charts": chart_versions(tile.end_ms, refresh_seconds),
        "alert": None if alert is None else dict(alert),
    }
