"""The alert routes of the OpenAPI document (shared.ops.openapi merges them in): rules, the listing, a test
notification and platform alerts in."""

from __future__ import annotations

from typing import Any

from shared.alerts.board import MAX_LIMIT, STATES
from shared.alerts.rules import (
    FIELDS,
    MAX_DESCRIPTION,
    MAX_FOR_SUMMARIES,
    MAX_SILENCE_SECONDS,
    MAX_THRESHOLD_SECONDS,
    METRIC_PATTERN,
    MIN_SILENCE_SECONDS,
    OPERATORS,
    RULE_NAME_PATTERN,
    SENSOR_PATTERN,
    SEVERITIES,
    SILENCE,
    THRESHOLD,
)

Schema = dict[str, Any]
_ANONYMOUS: list[Schema] = []
_FUNCTION_KEY: list[Schema] = [{"functionKey": []}, {"functionKeyQuery": []}]
_NO_KEY: Schema = {"description": "no valid function key"}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_RULE_NAME: Schema = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": f"^{RULE_NAME_PATTERN.pattern}$"},
}
_FIELD_ERROR = _json(_ref("FieldError"), "the field at fault and why")


def alert_schemas() -> dict[str, Schema]:
    common: dict[str, Schema] = {
        "name": {"type": "string"},
        "metric": {"type": "string", "pattern": f"^{METRIC_PATTERN.pattern}$"},
        "sensors": {"type": "string", "pattern": f"^{SENSOR_PATTERN.pattern}$", "default": "*"},
        "severity": {"type": "string", "enum": list(SEVERITIES), "default": "warning"},
        "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
    }
    threshold: Schema = {
        "type": "object",
        "required": ["kind", "metric", "op", "value"],
        "additionalProperties": False,
        "properties": {
            **common,
            "kind": {"const": THRESHOLD},
            "field": {"type": "string", "enum": list(FIELDS), "default": "avg"},
            "op": {"type": "string", "enum": list(OPERATORS)},
            "value": {"type": "number"},
            "clear": {"type": "number", "description": "the level it resolves at (default: value)"},
            "for_summaries": {"type": "integer", "minimum": 1, "maximum": MAX_FOR_SUMMARIES},
            "for_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_THRESHOLD_SECONDS},
        },
    }
    silence: Schema = {
        "type": "object",
        "required": ["kind", "metric", "for_seconds"],
        "additionalProperties": False,
        "properties": {
            **common,
            "kind": {"const": SILENCE},
            "for_seconds": {"type": "integer", "minimum": MIN_SILENCE_SECONDS, "maximum": MAX_SILENCE_SECONDS},
        },
    }
    return {
        "AlertRule": {"oneOf": [threshold, silence]},
        "FieldError": {
            "type": "object",
            "required": ["error", "field"],
            "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
        },
        "AlertPage": {
            "type": "object",
            "required": ["items", "next_cursor", "total", "firing"],
            "properties": {
                "items": {"type": "array", "items": _ref("Alert")},
                "next_cursor": {"type": ["string", "null"]},
                "total": {"type": "integer", "minimum": 0},
                "firing": {"type": "integer", "minimum": 0},
            },
        },
    }


def alert_paths() -> dict[str, Schema]:
    return {
        "/api/alerts": {
            "get": {
                "summary": "Alerts, ours and received ones: firing first, then newest change first; ETag and 304",
                "operationId": "list_alerts",
                "security": _ANONYMOUS,
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": list(STATES), "default": "firing"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "description": "next_cursor of the previous page, with the same state",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json(_ref("AlertPage"), "one page"),
                    "304": {"description": "unchanged since the ETag in If-None-Match"},
                    "400": _json(_ref("Error"), "an invalid state, limit or cursor"),
                },
            }
        },
        "/api/alerts/rules": {
            "get": {
                "summary": "Every alert rule",
                "operationId": "list_alert_rules",
                "security": _FUNCTION_KEY,
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"rules": {"type": "array", "items": _ref("AlertRule")}}},
                        "the rules by name",
                    ),
                    "401": _NO_KEY,
                },
            }
        },
        "/api/alerts/rules/{name}": {
            "put": {
                "summary": "Create or replace an alert rule: a threshold with hysteresis, or a silence",
                "operationId": "put_alert_rule",
                "security": _FUNCTION_KEY,
                "parameters": [_RULE_NAME],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("AlertRule")}}},
                "responses": {
                    "200": _json(_ref("AlertRule"), "replaced"),
                    "201": _json(_ref("AlertRule"), "created"),
                    "400": _FIELD_ERROR,
                    "401": _NO_KEY,
                },
            },
            "delete": {
                "summary": "Delete an alert rule; what it was firing resolves (and is notified)",
                "operationId": "delete_alert_rule",
                "security": _FUNCTION_KEY,
                "parameters": [_RULE_NAME],
                "responses": {
                    "204": {"description": "deleted"},
                    "400": _FIELD_ERROR,
                    "401": _NO_KEY,
                    "404": _json(_ref("Error"), "no such rule"),
                },
            },
        },
        "/api/alerts/test": {
            "post": {
                "summary": "Send a test notification to every webhook of ALERT_WEBHOOK_URLS and answer what each said",
                "operationId": "test_alert_webhooks",
                "security": _FUNCTION_KEY,
                "responses": {
                    "200": _json({"type": "object", "properties": {"webhooks": {"type": "array"}}}, "each answer"),
                    "401": _NO_KEY,
                    "409": _json(_ref("Error"), "no webhook is configured"),
                },
            }
        },
        "/api/alerts/inbound": {
            "post": {
                "summary": "Receive platform alerts: an Alertmanager webhook (version 4) or Azure Monitor's common "
                "alert schema",
                "operationId": "receive_alerts",
                "security": _FUNCTION_KEY,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "202": _json({"type": "object", "properties": {"received": {"type": "integer"}}}, "kept"),
                    "400": _FIELD_ERROR,
                    "401": _NO_KEY,
                    "413": _json(_ref("Error"), "the body is larger than 1 MiB"),
                    "415": _json(_ref("Error"), "the Content-Type is not application/json"),
                },
            }
        },
    }
