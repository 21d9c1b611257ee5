"""The dashboard's read side: series from window state, history from `summaries`, cached PNG charts."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.dashboard.range_history import (
    CHART_FIELDS,
    MAX_RANGE_DOCUMENTS,
    ChartRange,
    RangeHistory,
    chart_range,
    max_gap,
)
from shared.readings.reading import format_timestamp
from shared.readings.rules import SENSOR_ID_MESSAGE, SENSOR_ID_PATTERN
from shared.readings.summariser import summary_from_state
from shared.storage.names import SUMMARIES, WINDOWS_TABLE
from shared.storage.ports import DocumentStore, Entity, StateStore, public_fields

CHART_POINTS = 120
MAX_SUMMARIES_LIMIT = 500
_SERIES_CACHE_SECONDS = 0.5  # every open page polls every 2 s; one table scan serves them all
_CHART_CACHE_ENTRIES = 512
_RATE_WINDOW_SECONDS = 60.0  # readings per minute: over the last minute
_MIN_RATE_SECONDS = 5.0
_RENDER_WAIT_SECONDS = 30.0
_HISTORY_ENTRIES = 1024  # (series, range) pairs whose bucketed history is kept between renders


class UnknownSeries(LookupError):
    """No summary exists yet for this sensor (or sensor and metric)."""


@dataclass(frozen=True, slots=True)
class Chart:
    etag: str
    png: bytes


def check_sensor_id(sensor_id: str) -> str:
    if not SENSOR_ID_PATTERN.fullmatch(sensor_id):
        raise ValueError(f"sensor_id {SENSOR_ID_MESSAGE}")
    return sensor_id


def _readings_total(entity: Entity) -> int:
    total = entity.properties.get("readings_total")
    return total if isinstance(total, int) else 0


def _series(entity: Entity) -> dict[str, Any]:
    return {
        "sensor_id": entity.partition_key,
        "metric": entity.row_key,
        "unit": entity.properties.get("unit", ""),
        "latest": summary_from_state(entity.partition_key, entity.row_key, entity.properties),
    }


def _chart_title(series: dict[str, Any]) -> str:
    return f"{series['sensor_id']} · {series['metric'].replace('_', ' ')}"


class DashboardReader:
    def __init__(
        self,
        documents: DocumentStore,
        state: StateStore,
        render: Callable[..., bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._documents = documents
        self._state = state
        self._render = render
        self._clock = clock
        self._series_cache: tuple[float, list[dict[str, Any]], int] | None = None
        self._totals: deque[tuple[float, int]] = deque()  # (clock, readings_total over every series)
        self._charts: OrderedDict[str, bytes] = OrderedDict()
        self._rendering: dict[str, threading.Event] = {}  # ETag -> set when its render ends
        self._histories: OrderedDict[tuple[str, str, str], RangeHistory] = OrderedDict()
        # (sensor, metric, range, scale) -> (ETag, clock) of the last render of a range that is redrawn at
        # most every refresh_seconds
        self._last_render: dict[tuple[str, str, str, int], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def series(self) -> list[dict[str, Any]]:
        """Every series with its latest summary, sorted by sensor then metric."""
        return self._read_series()[0]

    def _read_series(self) -> tuple[list[dict[str, Any]], int]:
        now = self._clock()
        cached = self._series_cache
        if cached is not None and now - cached[0] < _SERIES_CACHE_SECONDS:
            return cached[1], cached[2]
        entities = self._state.query(WINDOWS_TABLE)
        listed = [_series(e) for e in entities]
        total = sum(_readings_total(e) for e in entities)
        self._series_cache = (now, listed, total)
        with self._lock:
            self._totals.append((now, total))
            while len(self._totals) > 1 and now - self._totals[1][0] >= _RATE_WINDOW_SECONDS:
                self._totals.popleft()  # keep the newest sample at least a window old
        return listed, total

    def overview(self, now: datetime) -> dict[str, Any]:
        """The page header: how many series, readings per minute over the last minute (None until two reads
        at least _MIN_RATE_SECONDS apart), and how far behind the series are (now minus each one's newest
        summarised reading: the median and the worst)."""
        series, total = self._read_series()
        with self._lock:
            since, then = self._totals[0]
        seconds = self._clock() - since
        per_minute = (total - then) / seconds * 60.0 if seconds >= _MIN_RATE_SECONDS else None
        behind = sorted(
            max(0.0, (now - datetime.fromisoformat(s["latest"]["window_end"])).total_seconds())
            for s in series
            if s["latest"]
        )
        return {
            "series": len(series),
            "readings_total": total,
            "readings_per_minute": None if per_minute is None else round(max(0.0, per_minute), 1),
            "lag_seconds": {
                "median": round(behind[len(behind) // 2], 1) if behind else None,
                "max": round(behind[-1], 1) if behind else None,
            },
            "time": format_timestamp(now),
        }

    def _sensor_series(self, sensor_id: str, metric: str | None) -> dict[str, Any]:
        entities = self._state.query(WINDOWS_TABLE, check_sensor_id(sensor_id))
        if metric is not None:
            entities = [e for e in entities if e.row_key == metric]
        found = [s for s in map(_series, entities) if s["latest"] is not None]
        if not found:
            raise UnknownSeries(
                f"no summaries for sensor {sensor_id!r}" + (f" and metric {metric!r}" if metric else "")
            )
        return found[0]

    def summaries(self, sensor_id: str, metric: str | None, limit: int) -> list[dict[str, Any]]:
        """Newest first; raises UnknownSeries for a sensor with no summary."""
        if not 1 <= limit <= MAX_SUMMARIES_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_SUMMARIES_LIMIT}")
        series = self._sensor_series(sensor_id, metric)
        docs = self._documents.latest(SUMMARIES, sensor_id, "window_end", limit, equals={"metric": series["metric"]})
        return [public_fields(d) for d in docs]

    def chart_etag(
        self, sensor_id: str, metric: str | None, scale: int, range_name: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """The ETag of the chart as it would be answered now: cheap, one partition read. Without a range the
        chart shows the last CHART_POINTS summaries; with one, the summaries in that range (see chart_history)."""
        series = self._sensor_series(sensor_id, metric)
        if range_name is not None:
            refresh = chart_range(range_name).refresh_seconds
            with self._lock:
                last = self._last_render.get((sensor_id, series["metric"], range_name, scale))
            if last is not None and self._clock() - last[1] < refresh:
                return last[0], series  # drawn moments ago: the same chart until refresh_seconds have passed
        key = "\x1f".join((sensor_id, series["metric"], series["latest"]["id"], str(scale), range_name or ""))
        return '"' + hashlib.sha256(key.encode()).hexdigest()[:24] + '"', series

    def chart(self, sensor_id: str, metric: str | None, scale: int, range_name: str | None = None) -> Chart:
        """The PNG of the series' chart, rendered once per new summary (per refresh_seconds for a range)."""
        etag, series = self.chart_etag(sensor_id, metric, scale, range_name)
        while True:
            with self._lock:
                png = self._charts.get(etag)
                if png is not None:
                    self._charts.move_to_end(etag)
                    return Chart(etag, png)
                rendering = self._rendering.get(etag)
                if rendering is None:
                    # Single flight: the viewers that ask while this render runs wait for it, not render too.
                    self._rendering[etag] = threading.Event()
                    break
            rendering.wait(_RENDER_WAIT_SECONDS)  # then the cache has it, or that render failed: try again
        try:
            if range_name is None:
                png = self._render_series(series, scale)
            else:
                png = self._render_range(series, scale, chart_range(range_name))
            with self._lock:
                self._charts[etag] = png
                while len(self._charts) > _CHART_CACHE_ENTRIES:
                    self._charts.popitem(last=False)
                if range_name is not None:
                    self._last_render[(sensor_id, series["metric"], range_name, scale)] = (etag, self._clock())
                    while len(self._last_render) > _HISTORY_ENTRIES:
                        self._last_render.pop(next(iter(self._last_render)))
        finally:
            with self._lock:
                self._rendering.pop(etag).set()
        return Chart(etag, png)

    def _render_series(self, series: dict[str, Any], scale: int) -> bytes:
        from shared.dashboard.charts import ChartPoint, render_chart  # matplotlib loads on the first chart only

        docs = self._documents.latest(
            SUMMARIES, series["sensor_id"], "window_end", CHART_POINTS, equals={"metric": series["metric"]}
        )
        points = [
            ChartPoint(datetime.fromisoformat(d["window_end"]), float(d["min"]), float(d["max"]), float(d["avg"]))
            for d in docs
        ]
        render = self._render or render_chart
        return render(points, title=_chart_title(series), unit=series["unit"], scale=scale)

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

    def _render_range(self, series: dict[str, Any], scale: int, chosen: ChartRange) -> bytes:
        from shared.dashboard.charts import render_chart  # matplotlib loads on the first chart only

        sensor_id, metric = series["sensor_id"], series["metric"]

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

        end = datetime.fromisoformat(series["latest"]["window_end"])
        points = self._history(sensor_id, metric, chosen).update(end, read)
        render = self._render or render_chart
        return render(
            points,
            title=f"{_chart_title(series)} · last {chosen.label}",
            unit=series["unit"],
            scale=scale,
            x_span=(end - chosen.span, end),
            max_gap=max_gap(points, chosen),
        )
