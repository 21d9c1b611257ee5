"""devhost's HTTP front: routePrefix, route parameters, methods, bodies and failures, over a real socket."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import azure.functions as func
import pytest

from devhost.app.function_index import FunctionSpec
from devhost.app.invoker import Invoker
from devhost.http.front import DevHostHttpServer, http_routes


def _echo(req: func.HttpRequest) -> func.HttpResponse:
    body = {"method": req.method, "route": dict(req.route_params), "params": dict(req.params)}
    if req.get_body():
        body["body"] = req.get_json()
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


def _boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("kaput")


def _spec(name: str, route: str, methods: list[str], function: object) -> FunctionSpec:
    trigger = {"type": "httpTrigger", "name": "req", "direction": "in", "route": route, "methods": methods}
    return FunctionSpec(name=name, trigger=trigger, bindings=[trigger], retry=None, function=function)  # type: ignore[arg-type]


@pytest.fixture
def base_url() -> Iterator[str]:
    specs = [
        _spec("item", "items/{id:int}", ["GET", "POST"], _echo),
        _spec("named", "items/{name}", ["GET"], _echo),
        _spec("boom", "boom", ["GET"], _boom),
    ]
    server = DevHostHttpServer(("127.0.0.1", 0), http_routes(specs, "api"), Invoker(threading.Event()))
    server.serve_in_background()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _call(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, method=method, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def test_routes_sit_under_the_prefix_and_constraints_pick_the_function(base_url: str) -> None:
    status, body, headers = _call(f"{base_url}/api/items/42?x=1")
    assert status == 200
    assert json.loads(body) == {"method": "GET", "route": {"id": "42"}, "params": {"x": "1"}}
    assert headers["Content-Type"] == "application/json"
    assert json.loads(_call(f"{base_url}/api/items/chair")[1])["route"] == {"name": "chair"}
    assert _call(f"{base_url}/items/42")[0] == 404


def test_post_body_reaches_the_function(base_url: str) -> None:
    status, body, _ = _call(f"{base_url}/api/items/7", "POST", b'{"a": 1}')
    assert status == 200
    assert json.loads(body)["body"] == {"a": 1}


def test_method_not_in_the_binding_is_not_routed(base_url: str) -> None:
    assert _call(f"{base_url}/api/items/chair", "POST", b"{}")[0] == 404
    assert _call(f"{base_url}/api/items/7", "DELETE")[0] == 404


def test_head_answers_like_get_without_a_body(base_url: str) -> None:
    status, body, headers = _call(f"{base_url}/api/items/7", "HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > 0


def test_a_failing_function_answers_500_and_the_host_keeps_serving(base_url: str) -> None:
    assert _call(f"{base_url}/api/boom")[0] == 500
    assert _call(f"{base_url}/api/items/1")[0] == 200
