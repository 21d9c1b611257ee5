"""Hostile input over HTTP: every route of the OpenAPI document is fuzzed by schemathesis against a running devhost
(valid and invalid parameters and bodies); no answer may be a 5xx and no invocation may crash. Hand-picked
hostile requests follow: oversize and deeply nested JSON, control characters and unicode in ids, path
traversal, and markup in sensor ids shown by the dashboard."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.intake.ingest import IngestLimits
from shared.ops.openapi import openapi_document
from tests.e2e.devhost_process import DevhostProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

QUIET = {"AzureWebJobs.simulate_sensors.Disabled": "true"}


@pytest.fixture(scope="module")
def devhost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    host = DevhostProcess(tmp_path_factory.mktemp("fuzz"), QUIET, ["--microshare", "demo"])
    try:
        yield host
    finally:
        host.stop()
        crashed = [line for line in host.output if "(Failed," in line or "Traceback" in line]
        assert crashed == [], "".join(crashed[:20])


# The document the app serves (tests/unit/test_openapi.py keeps it in step with the routes).
SCHEMA = schemathesis.openapi.from_dict(openapi_document(IngestLimits()))
OPERATIONS = {operation.label: operation for operation in (result.ok() for result in SCHEMA.get_all_operations())}  # type: ignore[union-attr]  # an invalid document raises here
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
_DOCUMENT = openapi_document(IngestLimits())
# Negative cases break a parameter or the body on purpose; an operation with neither has none to break.
CASES = [(label, GenerationMode.POSITIVE) for label in sorted(OPERATIONS)] + [
    (label, GenerationMode.NEGATIVE)
    for label in sorted(OPERATIONS)
    if {"parameters", "requestBody"} & set(_DOCUMENT["paths"][label.split(" ", 1)[1]][label.split(" ", 1)[0].lower()])
]


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label}-{mode.value}" for label, mode in CASES])
def test_no_route_answers_5xx_and_every_answer_is_as_documented(
    devhost: DevhostProcess, label: str, mode: GenerationMode
) -> None:
    operation = OPERATIONS[label]
    session = requests.Session()

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case: Any) -> None:
        response = case.call(base_url=devhost.base_url, session=session, timeout=30)
        # A negative case may break the schema's own rules, so only the status checks apply to it.
        case.validate_response(response, checks=CHECKS if mode is GenerationMode.POSITIVE else CHECKS[:1])

    fuzz()


def reading(sensor_id: str, value: float = 21.0) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"sensor_id": sensor_id, "metric": "temperature", "value": value, "timestamp": now}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 200_000 + b"]" * 200_000, 413),
        (b"[" * 2_000 + b"]" * 2_000, 400),
        (b'{"a":' * 2_000 + b"1" + b"}" * 2_000, 400),
        (json.dumps([reading(f"s{n}") for n in range(5000)]).encode(), 413),
        ("\ufeff".encode() + json.dumps(reading("bom")).encode(), 400),
        (json.dumps(reading("x")).encode("utf-16"), 400),
        (b'{"sensor_id": "\\ud800", "metric": "temperature", "value": 1, "timestamp": "2026-01-01T00:00:00Z"}', 400),
    ],
)
def test_hostile_bodies_are_refused_with_4xx(devhost: DevhostProcess, body: bytes, status: int) -> None:
    code, answer = devhost.send("POST", "/api/readings", body)
    assert code == status
    assert json.loads(answer)["error"]


@pytest.mark.parametrize(
    "sensor_id",
    ["a\x00b", "tab\there", "new\nline", "zero\u200bwidth", "ünï", "😀", "a" * 65, "..", "-leading", "a/b"],
)
def test_ids_with_control_unicode_or_slashes_are_refused(devhost: DevhostProcess, sensor_id: str) -> None:
    code, answer = devhost.send("POST", "/api/readings", json.dumps(reading(sensor_id)).encode())
    assert code == 400
    assert json.loads(answer)["errors"][0]["field"] == "sensor_id"


@pytest.mark.parametrize(
    "path",
    [
        "/api/sensors/..%2F..%2Fetc%2Fpasswd/summaries",
        "/api/sensors/%2e%2e/readings",
        "/api/plots/..%5C..%5Cwin.ini.png",
        "/api/sensors/a%00b/summaries",
        "/api/sensors/%3Cscript%3E/readings",
        "/api/plots/%F0%9F%98%80.png",
        "/api/microshare/backfill/..%2F..%2Fadmin",
        "/../../etc/passwd",
        "/api/sensors/" + "a" * 5000 + "/summaries",
    ],
)
def test_path_traversal_and_odd_route_parameters_get_4xx(devhost: DevhostProcess, path: str) -> None:
    code, _ = devhost.send("GET", path)
    assert 400 <= code < 500


def test_markup_in_a_sensor_id_is_shown_escaped_on_the_dashboard(devhost: DevhostProcess) -> None:
    # The ingest API refuses markup in ids, but Event Hubs and the change feed carry what devices send; the
    # summariser accepts ':' and '.' only, so the strongest id that reaches the page is checked through ingest.
    code, _ = devhost.send("POST", "/api/readings", json.dumps(reading("<b>x</b>")).encode())
    assert code == 400
    code, _ = devhost.send("POST", "/api/readings", json.dumps(reading("lab.3:north")).encode())
    assert code == 201
    wait_for(
        lambda: any(s["sensor_id"] == "lab.3:north" for s in devhost.get_json("/api/sensors")["items"]), 30, "summary"
    )
    status, _, page = devhost.get("/")
    assert status == 200
    assert b"<b>x</b>" not in page
