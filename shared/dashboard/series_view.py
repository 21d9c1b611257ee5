"""One sensor's series, read for its page and its CSV downloads: the tiles and alerts the dashboard reader gives,
recent history from `summaries` and recent raw readings from `readings` (the one place the dashboard reads raw
readings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.dashboard.csv_export import READINGS_CSV, SUMMARIES_CSV, CsvExport, CsvKind, TimeSpan, export
from shared.dashboard.reader import DashboardReader
from shared.storage.names import READINGS, SUMMARIES
from shared.storage.ports import DocumentStore, public_fields

PAGE_SUMMARIES = 20  # the page's table of recent summaries, per metric
PAGE_READINGS = 50  # the page's table of recent readings, per metric


@dataclass(frozen=True, slots=True)
class MetricHistory:
    """One series of the sensor: its tile (as GET /api/sensors/{sensor_id} gives it) and its recent history."""

    tile: Mapping[str, Any]
    summaries: list[dict[str, Any]]  # newest first
    readings: list[dict[str, Any]]  # newest first


@dataclass(frozen=True, slots=True)
class SensorHistory:
    sensor_id: str
    series: list[MetricHistory]  # by metric
    now: datetime  # when it was read: the page's "updated N s ago" and its downloads' time span count from it
    alerts: list[dict[str, Any]] = field(default_factory=list)  # as GET /api/sensors/{sensor_id} lists them


class SeriesView:
    def __init__(self, documents: DocumentStore, dashboard: DashboardReader, csv_max_rows: int) -> None:
        self._documents = documents
        self._dashboard = dashboard
        self.csv_max_rows = csv_max_rows

    def sensor(self, sensor_id: str, now: datetime) -> SensorHistory:
        """Every series of the sensor with its latest summaries and readings, and the sensor's alerts; UnknownSeries
        when it has none."""
        answer = self._dashboard.sensor(sensor_id, now)
        tiles = answer["series"]
        series = []
        for tile in tiles:
            metric = {"metric": str(tile["metric"])}
            summaries = self._documents.latest(SUMMARIES, sensor_id, "window_end", PAGE_SUMMARIES, equals=metric)
            readings = self._documents.latest(READINGS, sensor_id, "timestamp", PAGE_READINGS, equals=metric)
            series.append(
                MetricHistory(tile, [public_fields(d) for d in summaries], [public_fields(d) for d in readings])
            )
        return SensorHistory(sensor_id, series, now, answer["alerts"])

    def readings_csv(self, sensor_id: str, metric: str | None, span: TimeSpan) -> CsvExport:
        """The sensor's readings in the span, of one metric or (None) of every metric it has."""
        chosen = self._metric(sensor_id, metric)  # UnknownSeries for a sensor (or metric) with no summary
        return self._export(READINGS_CSV, sensor_id, None if metric is None else chosen, span)

    def summaries_csv(self, sensor_id: str, metric: str | None, span: TimeSpan) -> CsvExport:
        """The summaries of one series in the span: `metric`, or the sensor's first as GET .../summaries picks."""
        return self._export(SUMMARIES_CSV, sensor_id, self._metric(sensor_id, metric), span)

    def _metric(self, sensor_id: str, metric: str | None) -> str:
        """`metric` when the sensor has that series, else its first by name; UnknownSeries when it has none."""
        return self._dashboard.tile(sensor_id, metric).metric

    def _export(self, kind: CsvKind, sensor_id: str, metric: str | None, span: TimeSpan) -> CsvExport:
        # Whole documents, not a projection: "value" is a reserved word of Cosmos DB's SQL, and both kinds of
        # document are a few hundred bytes.
        found = self._documents.latest(
            kind.container,
            sensor_id,
            kind.order_by,
            self.csv_max_rows + 1,
            equals=None if metric is None else {"metric": metric},
            since=span.since,
            until=span.until,
        )
        return export(kind, found, self.csv_max_rows, sensor_id, metric, span)
