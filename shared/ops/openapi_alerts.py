"""The alert routes of the OpenAPI document (shared.ops.openapi merges them in): rules, the listing, a test
notification and platform alerts in."""

from __future__ import annotations

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

_RULE_NAME: Schema = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": f"^{RULE_NAME_PATTERN.pattern}$"},
}
_FIELD_ERROR = json_answer(ref("FieldError"), "the field at fault and why")


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
                "items": {"type": "array", "items": ref("Alert")},
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
                "security": ANONYMOUS,
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": list(STATES), "default": "firing"},
                    },
                    limit_param(50, MAX_LIMIT),
                    cursor_param("state"),
                ],
                "responses": {
                    "200": json_answer(ref("AlertPage"), "one page"),
                    "304": NOT_MODIFIED,
                    "400": error_answer("an invalid state, limit or cursor"),
                },
            }
        },
        "/api/alerts/rules": {
            "get": {
                "summary": "Every alert rule",
                "operationId": "list_alert_rules",
                "security": FUNCTION_KEY,
                "responses": {
                    "200": json_answer(
                        {"type": "object", "properties": {"rules": {"type": "array", "items": ref("AlertRule")}}},
                        "the rules by name",
                    ),
                    "401": NO_KEY,
                },
            }
        },
        "/api/alerts/rules/{name}": {
            "put": {
                "summary": "Create or replace an alert rule: a threshold with hysteresis, or a silence",
                "operationId": "put_alert_rule",
                "security": FUNCTION_KEY,
                "parameters": [_RULE_NAME],
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref("AlertRule")}}},
                "responses": {
                    "200": json_answer(ref("AlertRule"), "replaced"),
                    "201": json_answer(ref("AlertRule"), "created"),
                    "400": _FIELD_ERROR,
                    "401": NO_KEY,
                },
            },
            "delete": {
                "summary": "Delete an alert rule; what it was firing resolves (and is notified)",
                "operationId": "delete_alert_rule",
                "security": FUNCTION_KEY,
                "parameters": [_RULE_NAME],
                "responses": {
                    "204": {"description": "deleted"},
                    "400": _FIELD_ERROR,
                    "401": NO_KEY,
                    "404": error_answer("no such rule"),
                },
            },
        },
        "/api/alerts/test": {
            "post": {
                "summary": "Send a test notification to every webhook of ALERT_WEBHOOK_URLS and answer what each said",
                "operationId": "test_alert_webhooks",
                "security": FUNCTION_KEY,
                "responses": {
                    "200": json_answer(
                        {"type": "object", "properties": {"webhooks": {"type": "array"}}}, "each answer"
                    ),
                    "401": NO_KEY,
                    "409": error_answer("no webhook is configured"),
                },
            }
        },
        "/api/alerts/inbound": {
            "post": {
                "summary": "Receive platform alerts: an Alertmanager webhook (version 4) or Azure Monitor's common "
                "alert schema",
                "operationId": "receive_alerts",
                "security": FUNCTION_KEY,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "202": json_answer({"type": "object", "properties": {"received": {"type": "integer"}}}, "kept"),
                    "400": _FIELD_ERROR,
                    "401": NO_KEY,
                    "413": error_answer("the body is larger than 1 MiB"),
                    "415": error_answer("the Content-Type is not application/json"),
                },
            }
        },
    }
