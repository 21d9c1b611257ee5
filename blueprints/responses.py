"""JSON answers every HTTP blueprint gives: UTF-8, never cached (or revalidated by ETag), errors as
{"error": "<reason>"}."""

import hashlib
import json
from typing import Any

import azure.functions as func
import orjson


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def revalidated_json(req: func.HttpRequest, body: Any) -> func.HttpResponse:
    """JSON with an ETag of its bytes: a client that sends it back as If-None-Match gets an empty 304 while the
    answer is the same, so a poll when nothing changed costs a few headers."""
    data = json.dumps(body, ensure_ascii=False).encode()
    etag = '"' + hashlib.sha256(data).hexdigest()[:24] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in {tag.strip() for tag in req.headers.get("If-None-Match", "").split(",")}:
        return func.HttpResponse(status_code=304, headers=headers)
    return func.HttpResponse(data, status_code=200, mimetype="application/json", charset="utf-8", headers=headers)


def error_response(status: int, message: str) -> func.HttpResponse:
    return json_response({"error": message}, status)


def request_json(req: func.HttpRequest) -> Any:
    """The body as JSON; ValueError when it is not. (HttpRequest.get_json uses the json module, whose recursion
    on a deeply nested body escapes as RecursionError; orjson refuses more than 1024 levels with its own error.)"""
    try:
        return orjson.loads(req.get_body())
    except orjson.JSONDecodeError:
        raise ValueError("the body is not valid JSON") from None
