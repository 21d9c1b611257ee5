"""Pieces every part of the OpenAPI document uses: references, JSON answers, the limit parameter, security."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

FUNCTION_KEY: list[Schema] = [{"functionKey": []}, {"functionKeyQuery": []}]
ANONYMOUS: list[Schema] = []
NO_KEY: Schema = {"description": "no valid function key"}
NOT_MODIFIED: Schema = {"description": "unchanged since the ETag in If-None-Match"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def json_answer(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_answer(description: str) -> Schema:
    return json_answer(ref("Error"), description)


def limit_param(default: int, high: int) -> Schema:
    schema = {"type": "integer", "minimum": 1, "maximum": high, "default": default}
    return {"name": "limit", "in": "query", "required": False, "schema": schema}


def cursor_param(same: str) -> Schema:
    """The `cursor` of a paged listing; `same` names what must not change between pages."""
    description = f"next_cursor of the previous page, with the same {same}"
    return {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }
