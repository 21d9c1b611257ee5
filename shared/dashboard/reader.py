"""The dashboard's read side: series from window state, history from `summaries`, cached PNG charts, and each
series' alert state from the alert board."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.dashboard.fleet import (
    AlertLookup,
    FleetQuery,
    SortedFleet,
    Tile,
    chart_versions,
    tile_from_summary,
    tile_json,
)
from shared.dashboard.range_history import (
    CHART_FIELDS,
    MAX_RANGE_DOCUMENTS,
    ChartRange,
    RangeHistory,
    chart_range,
    max_gap,
)
from shared.ops.metrics import PipelineMetrics
from shared.readings.reading import epoch_ms, format_epoch_ms
from shared.readings.rules import SENSOR_ID_MESSAGE, SENSOR_ID_PATTERN
from shared.readings.summariser import summary_from_state
from shared.settings import DashboardSettings
from shared.storage.names import SUMMARIES, WINDOWS_TABLE
from shared.storage.ports import MAX_ENTITY_PAGE, DocumentStore, Entity, StateStore, public_fields

if TYPE_CHECKING:
    from shared.alerts.board import AlertBoard

CHART_POINTS = 120
MAX_SUMMARIES_LIMIT = 500
SENSOR_ALERTS = 20  # a sensor's answer (and page) lists its newest alerts, firing first
_SERIES_CACHE_SECONDS = 0.5  # every open page polls every 2 s; one table scan serves them all
_CHART_CACHE_ENTRIES = 512
_RATE_WINDOW_SECONDS = 60.0  # readings per minute: over the last minute
_MIN_RATE_SECONDS = 5.0
_RENDER_WAIT_SECONDS = 30.0
_HISTORY_ENTRIES = 1024  # (series, range) pairs whose bucketed history is kept between renders
_SORTED_ENTRIES = 32  # (query) orderings of the current snapshot kept for the pages that follow
IMMUTABLE = "public, max-age=31536000, immutable"


class UnknownSeries(LookupError):
    """No summary exists yet for this sensor (or sensor and metric)."""


@dataclass(frozen=True, slots=True)
class Chart:
    etag: str
    png: bytes
    cache_control: str = "no-cache"


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One scan of window state: every series with a summary, in key order."""

    tiles: list[Tile]
    readings_total: int
    taken_at: float  # clock
    # (sensor, metric) -> its tile, and (sensor, None) -> the sensor's first tile by metric
    by_sensor: dict[tuple[str, str | None], Tile] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for tile in reversed(self.tiles):  # in key order: the first metric of a sensor is set last
            self.by_sensor[(tile.sensor_id, tile.metric)] = tile
            self.by_sensor[(tile.sensor_id, None)] = tile


def check_sensor_id(sensor_id: str) -> str:
    if not SENSOR_ID_PATTERN.fullmatch(sensor_id):
        raise ValueError(f"sensor_id {SENSOR_ID_MESSAGE}")
    return sensor_id


def _readings_total(entity: Entity) -> int:
    total = entity.properties.get("readings_total")
    return total if isinstance(total, int) else 0


def _chart_title(tile: Tile) -> str:
    return f"{tile.sensor_id} · {tile.metric.replace('_', ' ')}"


class DashboardReader:
    def __init__(
        self,
        documents: DocumentStore,
        state: StateStore,
        refresh_seconds: Mapping[str, int] | None = None,
        render: Callable[..., bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
        metrics: PipelineMetrics | None = None,
        alerts: AlertBoard | None = None,
    ) -> None:
        self._documents = documents
        self._alerts = alerts  # None: tiles carry no alert state ("alert": null)
        self._metrics = metrics
        self._state = state
        self.refresh_seconds: Mapping[str, int] = dict(
            refresh_seconds or DashboardSettings.from_env({}).chart_refresh_seconds
        )
        self._render = render
        self._clock = clock
        self._snapshot: _Snapshot | None = None
        self._scan_lock = threading.Lock()  # one scan at a time; the others wait for it and share it
        self._tiles: dict[tuple[str, str], tuple[str, Tile | None]] = {}  # (sensor, metric) -> (etag, tile)
        self._sorted: OrderedDict[FleetQuery, SortedFleet] = OrderedDict()
        self._totals: deque[tuple[float, int]] = deque()  # (clock, readings_total over every series)
        self._charts: OrderedDict[str, bytes] = OrderedDict()
        self._rendering: dict[str, threading.Event] = {}  # ETag -> set when its render ends
        self._histories: OrderedDict[tuple[str, str, str], RangeHistory] = OrderedDict()
        # (sensor, metric, range, size, scale) -> (ETag, clock) of the last render of an unversioned range chart,
        # which is redrawn at most every refresh_seconds
        self._last_render: dict[tuple[str, str, str, str, int], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _read(self) -> _Snapshot:
        """The latest scan of window state, at most _SERIES_CACHE_SECONDS old. A series whose entity is unchanged
        since the last scan keeps its tile (its window is not parsed again)."""
        cached = self._snapshot
        if cached is not None and self._clock() - cached.taken_at < _SERIES_CACHE_SECONDS:
            return cached
        with self._scan_lock:
            cached = self._snapshot
            now = self._clock()
            if cached is not None and now - cached.taken_at < _SERIES_CACHE_SECONDS:
                return cached  # another request scanned while this one waited
            tiles: list[Tile] = []
            known: dict[tuple[str, str], tuple[str, Tile | None]] = {}
            total = 0
            for entity in self._window_states():
                total += _readings_total(entity)
                key = (entity.partition_key, entity.row_key)
                seen = self._tiles.get(key)
                if seen is not None and seen[0] == entity.etag:
                    tile = seen[1]
                else:
                    summary = summary_from_state(entity.partition_key, entity.row_key, entity.properties)
                    tile = None if summary is None else tile_from_summary(summary)
                known[key] = (entity.etag, tile)
                if tile is not None:
                    tiles.append(tile)
            tiles.sort(key=lambda t: (t.sensor_id, t.metric))
            self._tiles = known
            snapshot = self._snapshot = _Snapshot(tiles, total, now)
            with self._lock:
                self._sorted.clear()
                self._totals.append((now, total))
                while len(self._totals) > 1 and now - self._totals[1][0] >= _RATE_WINDOW_SECONDS:
                    self._totals.popleft()  # keep the newest sample at least a window old
            return snapshot

    def _window_states(self) -> Iterator[Entity]:
        """Every window state, a page at a time: a fleet of any size is never one answer from the store."""
        continuation: str | None = None
        while True:
            page = self._state.query_page(WINDOWS_TABLE, MAX_ENTITY_PAGE, continuation)
            yield from page.entities
            continuation = page.continuation
            if continuation is None:
                return

    def fleet(self, query: FleetQuery) -> SortedFleet:
        """The series matching `query`, in its order; one sort per scan and query, shared by every viewer."""
        snapshot = self._read()
        with self._lock:
            ordered = self._sorted.get(query)
            if ordered is not None:
                self._sorted.move_to_end(query)
                return ordered
        ordered = SortedFleet(snapshot.tiles, query)
        with self._lock:
            if self._snapshot is snapshot:
                self._sorted[query] = ordered
                while len(self._sorted) > _SORTED_ENTRIES:
                    self._sorted.popitem(last=False)
        return ordered

    def fleet_page(self, query: FleetQuery, limit: int, cursor: str | None, now: datetime) -> dict[str, Any]:
        """One page of the fleet listing (see fleet.SortedFleet.page); ValueError for a bad limit or cursor."""
        return self.fleet(query).page(limit, cursor, epoch_ms(now), self.refresh_seconds, self._alert_badges())

    def _alert_badges(self) -> AlertLookup | None:
        """Each series' alert badge, from one read of the alert board (every tile of a page from the same read)."""
        return None if self._alerts is None else self._alerts.board().series_status

    def sensor(self, sensor_id: str, now: datetime) -> dict[str, Any]:
        """Every series of one sensor as fleet tiles, and the sensor's alerts (firing first, then newest first, at
        most SENSOR_ALERTS); raises UnknownSeries for a sensor with no summary."""
        entities = self._state.query(WINDOWS_TABLE, check_sensor_id(sensor_id))
        tiles = [self._parsed_tile(sensor_id, entity) for entity in entities]
        found = sorted((t for t in tiles if t is not None), key=lambda t: t.metric)
        if not found:
            raise UnknownSeries(f"no summaries for sensor {sensor_id!r}")
        plain = FleetQuery()
        board = None if self._alerts is None else self._alerts.board()  # one read for the badges and the history
        badges = None if board is None else board.series_status
        return {
            "sensor_id": sensor_id,
            "series": [tile_json(t, plain, epoch_ms(now), self.refresh_seconds, badges) for t in found],
            "alerts": [] if board is None else board.series_history(sensor_id, SENSOR_ALERTS),
        }

    def overview(self, now: datetime) -> dict[str, Any]:
        """The page header: how many series and how many of them are stale, readings per minute over the last
        minute (None until two reads at least _MIN_RATE_SECONDS apart), and the newest summarised reading of the
        median and of the furthest-behind series (lag is now minus these). No clock reading in the answer, so a
        quiet fleet answers the same bytes to every poll."""
        snapshot = self._read()
        with self._lock:
            since, then = self._totals[0]
        seconds = snapshot.taken_at - since
        per_minute = (snapshot.readings_total - then) / seconds * 60.0 if seconds >= _MIN_RATE_SECONDS else None
        ends = sorted(t.end_ms for t in snapshot.tiles)
        now_ms = epoch_ms(now)
        return {
            "series": len(ends),
            "stale": sum(1 for t in snapshot.tiles if t.stale(now_ms)),
            "readings_total": snapshot.readings_total,
            "readings_per_minute": None if per_minute is None else round(max(0.0, per_minute)),
            "window_end": {
                "median": format_epoch_ms(ends[(len(ends) - 1) // 2]) if ends else None,
                "oldest": format_epoch_ms(ends[0]) if ends else None,
            },
        }

    def _parsed_tile(self, sensor_id: str, entity: Entity) -> Tile | None:
        summary = summary_from_state(sensor_id, entity.row_key, entity.properties)
        return None if summary is None else tile_from_summary(summary)

    def _listed(self, sensor_id: str, metric: str | None) -> Tile | None:
        """The series as the latest scan has it (the first metric by name without `metric`); None if not in it."""
        return self._read().by_sensor.get((sensor_id, metric))

    def tile(self, sensor_id: str, metric: str | None) -> Tile:
        """The series of `metric`, or the sensor's first by metric name; UnknownSeries when there is none."""
        entities = self._state.query(WINDOWS_TABLE, check_sensor_id(sensor_id))
        if metric is not None:
            entities = [e for e in entities if e.row_key == metric]
        found = [t for t in (self._parsed_tile(sensor_id, e) for e in entities) if t is not None]
        if not found:
            raise UnknownSeries(
                f"no summaries for sensor {sensor_id!r}" + (f" and metric {metric!r}" if metric else "")
            )
        return found[0]

    def summaries(self, sensor_id: str, metric: str | None, limit: int) -> list[dict[str, Any]]:
        """Newest first; raises UnknownSeries for a sensor with no summary."""
        if not 1 <= limit <= MAX_SUMMARIES_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_SUMMARIES_LIMIT}")
        tile = self.tile(sensor_id, metric)
        docs = self._documents.latest(SUMMARIES, sensor_id, "window_end", limit, equals={"metric": tile.metric})
        return [public_fields(d) for d in docs]

    def chart_etag(
        self,
        sensor_id: str,
        metric: str | None,
        scale: int,
        range_name: str | None = None,
        size: str = "card",
        version: int | None = None,
    ) -> tuple[str, str, Tile]:
        """(ETag, Cache-Control, series) of the chart as it would be answered now: cheap, one partition read.

        Without a range the chart shows the last CHART_POINTS summaries; with one, the summaries in that range
        (see range_history). With the range's current `version` (fleet.chart_versions) the URL names its content:
        rendered once, kept, and answered as immutable for browsers and a CDN to keep; an earlier version is
        answered the same way while its chart is still in the render cache. Any other version (a page that has
        not polled lately) gets the current chart, which browsers must not keep as that URL's."""
        # A versioned URL came from a listing: judge it by the scan that listing was answered from, or a chart
        # asked for right after a poll would find its version already outdated.
        listed = self._listed(sensor_id, metric) if version is not None else None
        tile = listed or self.tile(sensor_id, metric)
        cache_control = "no-cache"
        if range_name is not None:
            refresh = self.refresh_seconds[chart_range(range_name).name]
            current = chart_versions(tile.end_ms, {range_name: refresh})[range_name]
            if version is not None:
                key = "\x1f".join((sensor_id, tile.metric, range_name, size, str(scale), "v", str(version)))
                with self._lock:
                    drawn = _etag(key) in self._charts
                if version == current or drawn:  # the current version, or an earlier one still held as drawn
                    return _etag(key), IMMUTABLE, tile
            with self._lock:
                last = self._last_render.get((sensor_id, tile.metric, range_name, size, scale))
            if last is not None and self._clock() - last[1] < refresh:
                return last[0], cache_control, tile  # drawn moments ago: the same until refresh_seconds have passed
        key = "\x1f".join((sensor_id, tile.metric, str(tile.latest["id"]), str(scale), range_name or "", size))
        return _etag(key), cache_control, tile

    def chart(
        self,
        sensor_id: str,
        metric: str | None,
        scale: int,
        range_name: str | None = None,
        size: str = "card",
        version: int | None = None,
    ) -> Chart:
        """The PNG of the series' chart, rendered once per ETag (see chart_etag) however many viewers ask."""
        etag, cache_control, tile = self.chart_etag(sensor_id, metric, scale, range_name, size, version)
        while True:
            with self._lock:
                png = self._charts.get(etag)
                if png is not None:
                    self._charts.move_to_end(etag)
                    return Chart(etag, png, cache_control)
                rendering = self._rendering.get(etag)
                if rendering is None:
                    # Single flight: the viewers that ask while this render runs wait for it, not render too.
                    self._rendering[etag] = threading.Event()
                    break
            rendering.wait(_RENDER_WAIT_SECONDS)  # then the cache has it, or that render failed: try again
        try:
            if range_name is None:
                png = self._render_series(tile, scale, size)
            else:
                png = self._render_range(tile, scale, size, chart_range(range_name))
            with self._lock:
                self._charts[etag] = png
                while len(self._charts) > _CHART_CACHE_ENTRIES:
                    self._charts.popitem(last=False)
                if range_name is not None and cache_control != IMMUTABLE:
                    self._last_render[(sensor_id, tile.metric, range_name, size, scale)] = (etag, self._clock())
                    while len(self._last_render) > _HISTORY_ENTRIES:
                        self._last_render.pop(next(iter(self._last_render)))
        finally:
            with self._lock:
                self._rendering.pop(etag).set()
        if self._metrics is not None:
            self._metrics.chart_renders.labels(range_name or "latest").inc()
        return Chart(etag, png, cache_control)

    def _draw(self, points: list[Any], size: str, **options: Any) -> bytes:
        from shared.dashboard.charts.render import render_chart  # matplotlib loads on the first chart only

        render = self._render or render_chart
        return render(points, size=size, **options)

    def _render_series(self, tile: Tile, scale: int, size: str) -> bytes:
        from shared.dashboard.charts.render import ChartPoint

        docs = self._documents.latest(
            SUMMARIES, tile.sensor_id, "window_end", CHART_POINTS, equals={"metric": tile.metric}
        )
        points = [
            ChartPoint(datetime.fromisoformat(d["window_end"]), float(d["min"]), float(d["max"]), float(d["avg"]))
            for d in docs
        ]
        return self._draw(points, size, title=_chart_title(tile), unit=tile.unit, scale=scale)

    def _history(self, sensor_id: str, metric: str, chosen: ChartRange) -> RangeHistory:
        key = (sensor_id, metric, chosen.name)
        with self._lock:
            history = self._histories.get(key)
            if history is None:
                history = self._histories[key] = RangeHistory(chosen, self._clock)
                while len(self._histories) > _HISTORY_ENTRIES:
                    self._histories.popitem(last=False)
            else:
                self._histories.move_to_end(key)
            return history

    def _render_range(self, tile: Tile, scale: int, size: str, chosen: ChartRange) -> bytes:
        sensor_id, metric = tile.sensor_id, tile.metric

        def read(since: str) -> list[dict[str, Any]]:
            return self._documents.latest(
                SUMMARIES,
                sensor_id,
                "window_end",
                MAX_RANGE_DOCUMENTS,
                equals={"metric": metric},
                since=since,
                fields=CHART_FIELDS,
            )

        end = datetime.fromisoformat(str(tile.latest["window_end"]))
        points = self._history(sensor_id, metric, chosen).update(end, read)
        return self._draw(
            points,
            size,
            title=f"{_chart_title(tile)} · last {chosen.label}",
            unit=tile.unit,
            scale=scale,
            x_span=(end - chosen.span, end),
            max_gap=max_gap(points, chosen),
        )


def _etag(key: str) -> str:
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:24] + '"'
