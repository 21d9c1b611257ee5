"""JSON answers every HTTP blueprint gives: UTF-8, never cached, errors as {"error": "<reason>"}."""

import json
from typing import Any

import azure.functions as func


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def error_response(status: int, message: str) -> func.HttpResponse:
    return json_response({"error": message}, status)
