"""The dashboard's read side: series from window state, history from `summaries`, cached PNG charts."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.readings import SENSOR_ID_PATTERN
from shared.storage.names import SUMMARIES, WINDOWS_TABLE
from shared.storage.ports import DocumentStore, Entity, StateStore

CHART_POINTS = 120
MAX_SUMMARIES_LIMIT = 500
_SERIES_CACHE_SECONDS = 0.5  # every open page polls every 2 s; one table scan serves them all
_CHART_CACHE_ENTRIES = 512


class UnknownSeries(LookupError):
    """No summary exists yet for this sensor (or sensor and metric)."""


@dataclass(frozen=True, slots=True)
class Chart:
    etag: str
    png: bytes


def check_sensor_id(sensor_id: str) -> str:
    if not SENSOR_ID_PATTERN.fullmatch(sensor_id):
        raise ValueError(
            "sensor_id must be 1-64 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"
        )
    return sensor_id


def _series(entity: Entity) -> dict[str, Any]:
    latest = entity.properties.get("latest")
    return {
        "sensor_id": entity.partition_key,
        "metric": entity.row_key,
        "unit": entity.properties.get("unit", ""),
        "latest": json.loads(latest) if isinstance(latest, str) else None,
    }


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
        self._series_cache: tuple[float, list[dict[str, Any]]] | None = None
        self._charts: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def series(self) -> list[dict[str, Any]]:
        """Every series with its latest summary, sorted by sensor then metric."""
        now = self._clock()
        cached = self._series_cache
        if cached is not None and now - cached[0] < _SERIES_CACHE_SECONDS:
            return cached[1]
        listed = [_series(e) for e in self._state.query(WINDOWS_TABLE)]
        self._series_cache = (now, listed)
        return listed

    def _sensor_series(self, sensor_id: str, metric: str | None) -> dict[str, Any]:
        entities = self._state.query(WINDOWS_TABLE, check_sensor_id(sensor_id))
        if metric is not None:
            entities = [e for e in entities if e.row_key == metric]
        found = [_series(e) for e in entities if e.properties.get("latest")]
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
        return [{k: v for k, v in d.items() if not k.startswith("_")} for d in docs]

    def chart_etag(self, sensor_id: str, metric: str | None, scale: int) -> tuple[str, dict[str, Any]]:
        """The ETag of the chart as it would be rendered now: cheap, one partition read."""
        series = self._sensor_series(sensor_id, metric)
        key = f"{sensor_id}\x1f{series['metric']}\x1f{series['latest']['id']}\x1f{scale}"
        return '"' + hashlib.sha256(key.encode()).hexdigest()[:24] + '"', series

    def chart(self, sensor_id: str, metric: str | None, scale: int) -> Chart:
        """The PNG for the series' last CHART_POINTS summaries, rendered once per new summary."""
        etag, series = self.chart_etag(sensor_id, metric, scale)
        with self._lock:
            png = self._charts.get(etag)
            if png is not None:
                self._charts.move_to_end(etag)
                return Chart(etag, png)
        png = self._render_series(series, scale)
        with self._lock:
            self._charts[etag] = png
            while len(self._charts) > _CHART_CACHE_ENTRIES:
                self._charts.popitem(last=False)
        return Chart(etag, png)

    def _render_series(self, series: dict[str, Any], scale: int) -> bytes:
        from shared.charts import ChartPoint, render_chart  # matplotlib loads on the first chart only

        docs = self._documents.latest(
            SUMMARIES, series["sensor_id"], "window_end", CHART_POINTS, equals={"metric": series["metric"]}
        )
        points = [
            ChartPoint(datetime.fromisoformat(d["window_end"]), float(d["min"]), float(d["max"]), float(d["avg"]))
            for d in docs
        ]
        title = f"{series['sensor_id']} · {series['metric'].replace('_', ' ')}"
        render = self._render or render_chart
        return render(points, title=title, unit=series["unit"], scale=scale)
