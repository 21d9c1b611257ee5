"""The OpenAPI document says exactly what the routes are: paths, methods, path parameters and who may call them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from shared.intake.ingest import IngestLimits
from shared.ops.openapi import openapi_document
from tests.component.app_functions import app_functions

_PARAMETER = re.compile(r"\{(\w+)(?::[^}]*)?\??\}")
_ROOT = "{ignored:maxlength(0)?}"  # the documented way to own the site root


def _path(route: str) -> str:
    """A route template as an OpenAPI path (routePrefix is "" in host.json)."""
    return "/" if route == _ROOT else "/" + _PARAMETER.sub(r"{\1}", route)


def http_routes() -> dict[tuple[str, str], str]:
    """(path, method) -> auth level, from the app's own binding metadata."""
    routes: dict[tuple[str, str], str] = {}
    for function in app_functions().values():
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] == "httpTrigger":
                for method in binding["methods"]:
                    routes[(_path(binding["route"]), method.lower())] = binding["authLevel"].lower()
    return routes


def document() -> dict[str, Any]:
    return openapi_document(IngestLimits())


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {(path, method): op for path, item in document()["paths"].items() for method, op in item.items()}


def test_every_route_and_method_is_documented_and_nothing_else() -> None:
    assert sorted(operations()) == sorted(http_routes())


@pytest.mark.parametrize(("path", "method"), sorted(http_routes()))
def test_path_parameters_match_the_route(path: str, method: str) -> None:
    documented = {p["name"] for p in operations()[(path, method)].get("parameters", []) if p["in"] == "path"}
    assert documented == set(re.findall(r"\{(\w+)\}", path))


@pytest.mark.parametrize(("path", "method"), sorted(http_routes()))
def test_the_documented_security_is_the_routes_auth_level(path: str, method: str) -> None:
    security = operations()[(path, method)]["security"]
    if http_routes()[(path, method)] == "anonymous":
        assert security == []
    else:
        assert security and "401" in operations()[(path, method)]["responses"]


def test_operation_ids_are_the_function_names_and_references_resolve() -> None:
    functions = set(app_functions())
    assert {op["operationId"] for op in operations().values()} <= functions
    text = json.dumps(document())
    schemas = document()["components"]["schemas"]
    for name in re.findall(r'"#/components/schemas/(\w+)"', text):
        assert name in schemas


def test_the_document_carries_the_configured_batch_size_and_metrics() -> None:
    doc = openapi_document(IngestLimits(max_batch=7))
    body = doc["paths"]["/api/readings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][1]["maxItems"] == 7
    assert "temperature" in doc["components"]["schemas"]["ReadingIn"]["properties"]["metric"]["enum"]


def test_the_document_is_valid_openapi() -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(document())
    assert len(list(schema.get_all_operations())) == len(http_routes())
