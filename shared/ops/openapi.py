"""The OpenAPI 3.1 document of the HTTP API, served at /api/openapi.json.

Written by hand next to the routes it describes; tests/unit/test_openapi.py fails when a route, a method, a path
parameter or an auth level here differs from the app's own binding metadata.
"""

from __future__ import annotations

from typing import Any

from shared.alerts.rules import SEVERITIES
from shared.dashboard.charts.render import CHART_SIZES
from shared.dashboard.csv_export import MAX_SPAN, READINGS_CSV, SUMMARIES_CSV
from shared.dashboard.fleet import DEFAULT_PAGE_SIZE, GROUPINGS, MAX_FILTER_LENGTH, MAX_PAGE_SIZE, SORTS
from shared.dashboard.range_history import CARD_RANGES, DEFAULT_RANGE, RANGES
from shared.dashboard.reader import MAX_SUMMARIES_LIMIT, SENSOR_ALERTS
from shared.dashboard.series_page import SERIES_DEFAULT_RANGE
from shared.intake.ingest import IngestLimits
from shared.intake.reading_intake import MAX_READINGS_LIMIT
from shared.ops.openapi_alerts import alert_paths, alert_schemas
from shared.ops.openapi_imports import import_paths, import_schemas
from shared.ops.openapi_parts import (
    ANONYMOUS,
    FUNCTION_KEY,
    NO_KEY,
    NOT_MODIFIED,
    Schema,
    cursor_param,
    error_answer,
    json_answer,
    limit_param,
    ref,
)
from shared.readings.rules import (
    METRIC_PATTERN,
    READING_ID_PATTERN,
    SENSOR_ID_MAX_LENGTH,
    SENSOR_ID_PATTERN,
    SOURCE_MAX_LENGTH,
)

_SENSOR_ID: Schema = {
    "name": "sensor_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": f"^{SENSOR_ID_PATTERN.pattern}$", "maxLength": SENSOR_ID_MAX_LENGTH},
}
_METRIC: Schema = {
    "name": "metric",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "pattern": f"^{METRIC_PATTERN.pattern}$"},
}

_RANGE: Schema = {
    "name": "range",
    "in": "query",
    "required": False,
    "description": "a time range: the chart's summaries over the last 10 minutes, hour, day or week, bucketed",
    "schema": {"type": "string", "enum": list(RANGES)},
}


_FLEET_QUERY: list[Schema] = [
    {
        "name": "q",
        "in": "query",
        "required": False,
        "description": "only series whose sensor id, metric or location contains this (any case)",
        "schema": {"type": "string", "maxLength": MAX_FILTER_LENGTH},
    },
    {**_METRIC, "description": "only this metric"},
    {
        "name": "group",
        "in": "query",
        "required": False,
        "description": "list by parent location (occupancy series) or by metric first",
        "schema": {"type": "string", "enum": list(GROUPINGS), "default": "none"},
    },
    {
        "name": "sort",
        "in": "query",
        "required": False,
        "description": "name; newest or stalest by each series' newest reading",
        "schema": {"type": "string", "enum": list(SORTS), "default": "name"},
    },
]


def _time(name: str, default: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"ISO 8601 with a UTC offset or Z (a '+' sent as %2B); default: {default}",
        "schema": {"type": "string", "format": "date-time"},
    }


def _csv_download(what: str, operation_id: str, columns: tuple[str, ...], metric: str) -> Schema:
    truncated = "present when the span held more than CSV_MAX_ROWS rows: only the newest were answered"
    return {
        "get": {
            "summary": f"{what} from `from` to `to` (both included) as CSV, oldest first; at most CSV_MAX_ROWS rows",
            "operationId": operation_id,
            "security": ANONYMOUS,
            "parameters": [
                _SENSOR_ID,
                {**_METRIC, "description": metric},
                _time("from", "a day before `to`"),
                _time("to", "now"),
            ],
            "responses": {
                "200": {
                    "description": f"CSV (UTF-8) with the header {','.join(columns)}; a downloadable file",
                    "headers": {
                        "Content-Disposition": {"schema": {"type": "string"}},
                        "X-Truncated": {"description": truncated, "schema": {"type": "string", "enum": ["true"]}},
                        "X-Earliest-Included": {
                            "description": "with X-Truncated: the oldest time answered; ask again with `to` before it",
                            "schema": {"type": "string", "format": "date-time"},
                        },
                    },
                    "content": {"text/csv": {"schema": {"type": "string"}}},
                },
                "400": error_answer(
                    f"a malformed parameter, a time without offset, `from` not before `to`, or more than "
                    f"{MAX_SPAN.days} days between them"
                ),
                "404": error_answer("no summaries for this sensor (or metric)"),
            },
        }
    }


_HTML: Schema = {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}


def _schemas(limits: IngestLimits) -> dict[str, Schema]:
    metrics = sorted(limits.metrics)
    reading_in: Schema = {
        "type": "object",
        "required": ["sensor_id", "metric", "value", "timestamp"],
        "additionalProperties": False,
        "properties": {
            "id": {
                "type": "string",
                "pattern": f"^{READING_ID_PATTERN.pattern}$",
                "description": "client-chosen id: a retry with the same id and content writes nothing again; the "
                "same id with other content is refused (409)",
            },
            "sensor_id": _SENSOR_ID["schema"],
            "metric": {"type": "string", "enum": metrics},
            "value": {"type": "number", "description": "finite, within the metric's bounds"},
            "unit": {"type": "string", "description": "the metric's unit (or an accepted spelling of it)"},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "ISO 8601 with a UTC offset, at most INGEST_MAX_FUTURE_SECONDS ahead and at most "
                "READING_MAX_AGE_SECONDS old",
            },
            "source": {"type": "string", "minLength": 1, "maxLength": SOURCE_MAX_LENGTH},
        },
    }
    summary: Schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "sensor_id": {"type": "string"},
            "metric": {"type": "string"},
            "unit": {"type": "string"},
            "count": {"type": "integer"},
            "min": {"type": "number"},
            "max": {"type": "number"},
            "avg": {"type": "number"},
            "window_start": {"type": "string", "format": "date-time"},
            "window_end": {"type": "string", "format": "date-time"},
            "newest_reading_id": {"type": "string"},
            "computed_at": {"type": "string", "format": "date-time"},
        },
    }
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Overview": {
            "type": "object",
            "required": ["series", "stale", "readings_total", "readings_per_minute", "window_end"],
            "properties": {
                "series": {"type": "integer", "minimum": 0},
                "stale": {"type": "integer", "minimum": 0},
                "readings_total": {"type": "integer", "minimum": 0},
                "readings_per_minute": {"type": ["integer", "null"], "minimum": 0},
                "window_end": {
                    "type": "object",
                    "description": "the newest summarised reading of the median and of the furthest-behind series; "
                    "lag is now minus these",
                    "properties": {
                        "median": {"type": ["string", "null"], "format": "date-time"},
                        "oldest": {"type": ["string", "null"], "format": "date-time"},
                    },
                },
            },
        },
        "Readiness": {
            "type": "object",
            "required": ["status", "checks"],
            "properties": {
                "status": {"enum": ["ready", "not ready"]},
                "checks": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["status", "ms"],
                        "properties": {
                            "status": {"enum": ["ok", "failed", "not configured"]},
                            "ms": {"type": "number"},
                            "error": {"type": "string"},
                        },
                    },
                },
                "failed": {"type": "array", "items": {"type": "string"}},
            },
        },
        "IngestError": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        },
        "IngestConflict": {
            "type": "object",
            "required": ["error", "ids"],
            "properties": {
                "error": {"type": "string", "description": "names the first conflicting id"},
                "ids": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            },
        },
        "ReadingIn": reading_in,
        "Reading": {
            "type": "object",
            "properties": {
                name: {"type": "string"} for name in ("id", "sensor_id", "metric", "unit", "timestamp", "source")
            }
            | {"value": {"type": "number"}},
        },
        "Accepted": {
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "ids": {"type": "array", "items": {"type": "string"}},
                "received_at": {"type": "string", "format": "date-time"},
            },
        },
        "Summary": summary,
        "Tile": {
            "type": "object",
            "properties": {
                "sensor_id": {"type": "string"},
                "metric": {"type": "string"},
                "unit": {"type": "string"},
                "location": {"type": "string", "description": "an occupancy series' parent location path, or empty"},
                "group": {"type": "string", "description": "the group it is listed under (empty without group)"},
                "status": {"enum": ["ok", "stale"]},
                "interval_seconds": {
                    "type": ["number", "null"],
                    "description": "the usual time between its readings; null with one reading in the window",
                },
                "stale_after": {
                    "type": "string",
                    "format": "date-time",
                    "description": "when it turns stale without another reading",
                },
                "latest": summary,
                "charts": {
                    "type": "object",
                    "description": "per range, the current version of its chart: the `v` of /api/plots",
                    "additionalProperties": {"type": "integer"},
                },
                "alert": {
                    "type": ["object", "null"],
                    "description": "null while no alert rule fires or is pending on the series; firing: its most "
                    "severe firing alert (the rule's name and severity) and how many fire; pending: a rule's "
                    "condition holds but not yet for long enough",
                    "required": ["state", "severity", "name", "count"],
                    "properties": {
                        "state": {"enum": ["firing", "pending"]},
                        "severity": {"enum": [*SEVERITIES, None], "description": "null while pending"},
                        "name": {"type": ["string", "null"], "description": "null while pending"},
                        "count": {"type": "integer", "minimum": 0, "description": "alerts firing; 0 while pending"},
                    },
                },
            },
        },
        "FleetPage": {
            "type": "object",
            "required": ["items", "next_cursor", "total", "stale"],
            "properties": {
                "items": {"type": "array", "items": ref("Tile")},
                "next_cursor": {"type": ["string", "null"], "description": "pass as ?cursor for the next page"},
                "total": {"type": "integer", "description": "series matching q and metric"},
                "stale": {"type": "integer", "description": "of those, how many are stale"},
                "groups": {
                    "type": "array",
                    "description": "with group: each group's name, series and stale series",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "count": {"type": "integer"},
                            "stale": {"type": "integer"},
                        },
                    },
                },
            },
        },
        "SensorSeries": {
            "type": "object",
            "properties": {
                "sensor_id": {"type": "string"},
                "series": {"type": "array", "items": ref("Tile")},
                "alerts": {
                    "type": "array",
                    "maxItems": SENSOR_ALERTS,
                    "description": "the sensor's alerts (received ones too), firing first, then newest first",
                    "items": ref("Alert"),
                },
            },
        },
        "Alert": {
            "type": "object",
            "required": [
                "fingerprint",
                "status",
                "name",
                "severity",
                "summary",
                "sensor_id",
                "metric",
                "starts_at",
                "ends_at",
                "source",
            ],
            "properties": {
                "fingerprint": {"type": "string", "description": "stable id of the alert, from its labels"},
                "status": {"enum": ["firing", "resolved"]},
                "name": {"type": "string", "description": "the rule's name (the alertname label)"},
                "severity": {"enum": list(SEVERITIES)},
                "summary": {"type": "string"},
                "description": {"type": "string"},
                "sensor_id": {"type": ["string", "null"]},
                "metric": {"type": ["string", "null"]},
                "value": {"type": ["number", "null"], "description": "what was observed at the last transition"},
                "starts_at": {"type": ["string", "null"], "format": "date-time"},
                "ends_at": {"type": ["string", "null"], "format": "date-time", "description": "null while firing"},
                "source": {
                    "type": "string",
                    "description": "sensorpulse for the app's own rules; alertmanager or azure-monitor for alerts "
                    "received at /api/alerts/inbound",
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                "url": {"type": ["string", "null"]},
                "changed_at": {"type": ["string", "null"], "format": "date-time"},
            },
        },
        "Devices": {
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "devices": {"type": "array", "items": {"type": "object"}},
            },
        },
        "BackfillRequest": {
            "type": "object",
            "required": ["recType", "from", "to"],
            "additionalProperties": False,
            "properties": {
                "recType": {"type": "string"},
                "from": {"type": "string", "format": "date-time"},
                "to": {"type": "string", "format": "date-time"},
            },
        },
        "BackfillStatus": {"type": "object", "properties": {"id": {"type": "string"}, "runtimeStatus": {}}},
    }


def openapi_document(limits: IngestLimits) -> dict[str, Any]:
    """The document; `limits` puts the configured batch size and metrics into it."""
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "summary": "The live dashboard page",
                "operationId": "dashboard_page",
                "security": ANONYMOUS,
                "parameters": [
                    {**_RANGE, "schema": {"type": "string", "enum": list(CARD_RANGES), "default": DEFAULT_RANGE}},
                    *_FLEET_QUERY,
                    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
                    "400": error_answer("an unknown range, group or sort, or a cursor of another listing"),
                },
            }
        },
        "/sensors/{sensor_id}": {
            "get": {
                "summary": "A sensor's page: per metric its figures, a large chart over the range, recent history, CSV",
                "operationId": "series_page",
                "security": ANONYMOUS,
                "parameters": [_SENSOR_ID, {**_RANGE, "schema": {**_RANGE["schema"], "default": SERIES_DEFAULT_RANGE}}],
                "responses": {
                    "200": _HTML,
                    "400": {**_HTML, "description": "HTML: a malformed sensor id or an unknown range"},
                    "404": {**_HTML, "description": "HTML: no summaries for this sensor"},
                },
            }
        },
        "/api/readings": {
            "post": {
                "summary": f"Post one reading, or a batch of at most {limits.max_batch} (all or nothing)",
                "operationId": "post_readings",
                "security": FUNCTION_KEY,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    ref("ReadingIn"),
                                    {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": limits.max_batch,
                                        "items": ref("ReadingIn"),
                                    },
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "201": json_answer(
                        ref("Accepted"), "every reading is stored (those already stored alike are unchanged); their ids"
                    ),
                    "400": json_answer(ref("IngestError"), "some reading is invalid; nothing was written"),
                    "401": NO_KEY,
                    "409": json_answer(
                        ref("IngestConflict"), "some id is already stored with other content; nothing was written"
                    ),
                    "413": error_answer(f"the body is larger than {limits.max_body_bytes} bytes"),
                    "415": error_answer("the Content-Type is not application/json"),
                },
            }
        },
        "/api/sensors": {
            "get": {
                "summary": "One page of the fleet: a tile per series with its latest summary, status and chart "
                "versions; ETag and 304",
                "operationId": "list_sensors",
                "security": ANONYMOUS,
                "parameters": [
                    limit_param(DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
                    cursor_param("q, metric, group and sort"),
                    *_FLEET_QUERY,
                ],
                "responses": {
                    "200": json_answer(ref("FleetPage"), "the page"),
                    "304": NOT_MODIFIED,
                    "400": error_answer("an invalid parameter, or a cursor of another listing"),
                },
            }
        },
        "/api/sensors/{sensor_id}": {
            "get": {
                "summary": "Every series of one sensor as the listing shows them, and its alerts; ETag and 304",
                "operationId": "sensor_series",
                "security": ANONYMOUS,
                "parameters": [_SENSOR_ID],
                "responses": {
                    "200": json_answer(ref("SensorSeries"), "the sensor's series"),
                    "304": NOT_MODIFIED,
                    "400": error_answer("an invalid sensor id"),
                    "404": error_answer("no summaries for this sensor"),
                },
            }
        },
        "/api/sensors/{sensor_id}/summaries": {
            "get": {
                "summary": "A series' summaries, newest first",
                "operationId": "list_summaries",
                "security": ANONYMOUS,
                "parameters": [_SENSOR_ID, _METRIC, limit_param(20, MAX_SUMMARIES_LIMIT)],
                "responses": {
                    "200": json_answer({"type": "array", "items": ref("Summary")}, "summaries"),
                    "400": error_answer("an invalid parameter"),
                    "404": error_answer("no such series"),
                },
            }
        },
        "/api/sensors/{sensor_id}/readings": {
            "get": {
                "summary": "A sensor's latest readings, newest first",
                "operationId": "list_readings",
                "security": ANONYMOUS,
                "parameters": [_SENSOR_ID, _METRIC, limit_param(20, MAX_READINGS_LIMIT)],
                "responses": {
                    "200": json_answer({"type": "array", "items": ref("Reading")}, "readings"),
                    "400": error_answer("an invalid parameter"),
                    "404": error_answer("no readings for this sensor"),
                },
            }
        },
        "/api/sensors/{sensor_id}/readings.csv": _csv_download(
            "A sensor's readings",
            "readings_csv",
            READINGS_CSV.columns,
            "one metric; without it, every metric of the sensor",
        ),
        "/api/sensors/{sensor_id}/summaries.csv": _csv_download(
            "A series' summaries",
            "summaries_csv",
            SUMMARIES_CSV.columns,
            "the series; without it, the sensor's first metric by name (as the summaries route picks)",
        ),
        "/api/plots/{sensor_id}.png": {
            "get": {
                "summary": "Chart of a series' max, min and avg: its last 120 summaries, or a time range; with the "
                "range's current version (v) it is immutable for browsers and a CDN, otherwise ETag and 304",
                "operationId": "sensor_chart",
                "security": ANONYMOUS,
                "parameters": [
                    _SENSOR_ID,
                    _METRIC,
                    {
                        "name": "scale",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 3, "default": 1},
                    },
                    _RANGE,
                    {
                        "name": "size",
                        "in": "query",
                        "required": False,
                        "description": "card: 640x260 at scale 1; large: 1200x420",
                        "schema": {"type": "string", "enum": list(CHART_SIZES), "default": "card"},
                    },
                    {
                        "name": "v",
                        "in": "query",
                        "required": False,
                        "description": "the chart's version from a tile's `charts` (needs range)",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],
                "responses": {
                    "200": {"description": "PNG", "content": {"image/png": {"schema": {"type": "string"}}}},
                    "304": NOT_MODIFIED,
                    "400": error_answer("an invalid parameter"),
                    "404": error_answer("no such series"),
                },
            }
        },
        "/api/devices": {
            "get": {
                "summary": "Devices seen on Event Hubs",
                "operationId": "list_devices",
                "security": ANONYMOUS,
                "responses": {"200": json_answer(ref("Devices"), "devices")},
            }
        },
        "/api/health": {
            "get": {
                "summary": "Liveness (touches no backend)",
                "operationId": "health",
                "security": ANONYMOUS,
                "responses": {"200": json_answer({"type": "object"}, "alive")},
            }
        },
        "/api/overview": {
            "get": {
                "summary": "The dashboard header: series, stale series, readings per minute, how far behind; ETag "
                "and 304",
                "operationId": "overview",
                "security": ANONYMOUS,
                "responses": {
                    "200": json_answer(ref("Overview"), "totals"),
                    "304": NOT_MODIFIED,
                },
            }
        },
        "/api/ready": {
            "get": {
                "summary": "Readiness: every backend answers (documents, state, each event hub)",
                "operationId": "ready",
                "security": ANONYMOUS,
                "responses": {
                    "200": json_answer(ref("Readiness"), "every backend answered"),
                    "503": json_answer(ref("Readiness"), "a backend did not answer; `failed` names it"),
                },
            }
        },
        "/api/metrics": {
            "get": {
                "summary": "This process's metrics in the Prometheus text format",
                "operationId": "metrics",
                "security": FUNCTION_KEY,
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": NO_KEY,
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi_json",
                "security": ANONYMOUS,
                "responses": {"200": json_answer({"type": "object"}, "OpenAPI 3.1")},
            }
        },
        "/api/microshare/backfill": {
            "post": {
                "summary": "Start a Durable backfill of a recType over a time range",
                "operationId": "start_backfill",
                "security": FUNCTION_KEY,
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref("BackfillRequest")}}},
                "responses": {
                    "202": json_answer({"type": "object"}, "started; statusUrl and the management URLs"),
                    "400": error_answer("an invalid request"),
                    "401": NO_KEY,
                    "409": json_answer({"type": "object"}, "a backfill of this recType is running"),
                    "503": error_answer("Microshare forwarding is not configured"),
                },
            }
        },
        "/api/microshare/backfill/{instance_id}": {
            "get": {
                "summary": "Status, progress and result of a backfill",
                "operationId": "backfill_status",
                "security": FUNCTION_KEY,
                "parameters": [{"name": "instance_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": json_answer(ref("BackfillStatus"), "status"),
                    "400": error_answer("not a backfill instance id"),
                    "401": NO_KEY,
                    "404": error_answer("no such backfill"),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sensor Pulse",
            "version": "1.0.0",
            "description": "Readings in, sliding-window summaries and charts out.",
        },
        "servers": [{"url": "/"}],
        "paths": {**paths, **alert_paths(), **import_paths()},
        "components": {
            "schemas": {**_schemas(limits), **alert_schemas(), **import_schemas()},
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
        },
    }
