"""The bulk-import routes of the OpenAPI document (shared.ops.openapi merges them in): upload, listing, status."""

from __future__ import annotations

from shared.imports.names import INSTANCE_ID, UPLOAD_NAME
from shared.imports.records import MAX_LISTED, STATES
from shared.ops.openapi_parts import FUNCTION_KEY, NO_KEY, Schema, error_answer, json_answer, limit_param, ref

_BINARY: Schema = {"schema": {"type": "string", "format": "binary"}}


def import_schemas() -> dict[str, Schema]:
    counts = {name: {"type": "integer", "minimum": 0} for name in ("rows", "imported", "rejected")}
    maybe_text: Schema = {"type": ["string", "null"]}
    record: Schema = {
        "type": "object",
        "required": ["id", "name", "etag", "size", "state", "created", "updated", "rows", "imported", "rejected"],
        "properties": {
            "id": {"type": "string", "pattern": f"^{INSTANCE_ID.pattern}$"},
            "name": {"type": "string"},
            "etag": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "state": {"type": "string", "enum": list(STATES)},
            "created": {"type": "string"},
            "updated": {"type": "string"},
            **counts,
            "reason": maybe_text,
            "finished": maybe_text,
            "seconds": {"type": ["number", "null"]},
            "errors": maybe_text,
            "result": maybe_text,
        },
    }
    status: Schema = {
        "allOf": [
            ref("ImportRecord"),
            {
                "type": "object",
                "properties": {
                    "runtimeStatus": maybe_text,
                    "progress": {"type": ["object", "null"]},
                },
            },
        ]
    }
    uploaded: Schema = {
        "type": "object",
        "required": ["id", "name", "etag", "size", "statusUrl"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "etag": {"type": "string"},
            "size": {"type": "integer"},
            "statusUrl": {"type": "string"},
        },
    }
    listing: Schema = {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": ref("ImportRecord")}},
    }
    return {"ImportRecord": record, "ImportStatus": status, "ImportUploaded": uploaded, "ImportList": listing}


def import_paths() -> dict[str, Schema]:
    return {
        "/api/imports": {
            "post": {
                "summary": "Upload a file of readings (CSV, JSON Lines or a JSON array, optionally gzip) to import",
                "operationId": "upload_import",
                "security": FUNCTION_KEY,
                "parameters": [
                    {
                        "name": "name",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "pattern": f"^{UPLOAD_NAME.pattern}$"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/octet-stream": _BINARY, "text/csv": _BINARY, "application/json": _BINARY},
                },
                "responses": {
                    "202": json_answer(ref("ImportUploaded"), "stored; its import starts when its event arrives"),
                    "400": error_answer("a missing or invalid name, or an empty body"),
                    "401": NO_KEY,
                    "413": error_answer("larger than IMPORT_UPLOAD_MAX_BYTES"),
                },
            },
            "get": {
                "summary": "Recent imports, newest first, with their state and counts",
                "operationId": "list_imports",
                "security": FUNCTION_KEY,
                "parameters": [limit_param(50, MAX_LISTED)],
                "responses": {
                    "200": json_answer(ref("ImportList"), "the newest imports"),
                    "400": error_answer("an invalid limit"),
                    "401": NO_KEY,
                },
            },
        },
        "/api/imports/{import_id}": {
            "get": {
                "summary": "One import: its state, counts, progress and where its report and result are",
                "operationId": "import_status",
                "security": FUNCTION_KEY,
                "parameters": [{"name": "import_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": json_answer(ref("ImportStatus"), "the import"),
                    "400": error_answer("not an import id"),
                    "401": NO_KEY,
                    "404": error_answer("no such import"),
                },
            }
        },
    }
