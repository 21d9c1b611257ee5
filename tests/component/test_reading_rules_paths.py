"""One bad field, three ways in, one message: POST /api/readings lists it as {index, field, message}; the change
feed trigger and the Event Hub trigger dead-letter the document with "<field> <message>" as the reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import azure.functions as func
import pytest

from shared.app import services
from shared.readings.dead_letters import DeadLetterBox
from tests.component.app_functions import app_functions, as_the_host_calls
from tests.component.conftest import Handler
from tests.component.test_summarise_events import EventsHandler, hub_event

pytestmark = pytest.mark.usefixtures("app_on_temp_store")
ID_RULE = "must be 1-128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"
SENSOR_ID_RULE = "must be 1-64 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"
TIMESTAMP_RULE = "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-01T12:00:00Z"


def good() -> dict[str, Any]:
    moment = datetime.now(UTC) - timedelta(minutes=1)
    return {
        "id": "boiler-7:0001",
        "sensor_id": "boiler-7",
        "metric": "temperature",
        "value": 21.5,
        "unit": "°C",
        "timestamp": moment.isoformat(),
    }


def posted(handlers: dict[str, Handler], item: dict[str, Any]) -> list[dict[str, Any]]:
    request = func.HttpRequest(
        method="POST",
        url="http://localhost/api/readings",
        headers={"Content-Type": "application/json"},
        params={},
        route_params={},
        body=json.dumps(item).encode(),
    )
    response = handlers["post_readings"](request)
    assert response.status_code == 400
    errors: list[dict[str, Any]] = json.loads(response.get_body())["errors"]
    return errors


def dead_letter_reasons(source: str) -> list[str]:
    return [letter["reason"] for letter in DeadLetterBox(services().stores.state).list(source)]


def through_the_change_feed(item: dict[str, Any]) -> list[str]:
    summarise = as_the_host_calls(app_functions()["summarise_readings"])
    summarise(func.DocumentList([func.Document.from_dict(item)]))
    return dead_letter_reasons("cosmos-readings")


def through_the_hub(item: dict[str, Any]) -> list[str]:
    summarise = cast(EventsHandler, as_the_host_calls(app_functions()["summarise_events"]))
    summarise([hub_event(item)])
    return dead_letter_reasons("eventhub-telemetry")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"id": "boiler 7/1"}, "id", ID_RULE),
        ({"sensor_id": "<b>boiler</b>"}, "sensor_id", SENSOR_ID_RULE),
        ({"sensor_id": None}, "sensor_id", "is required"),
        ({"metric": "Temperature"}, "metric", "must be 1-32 lower-case letters, digits or '_', starting with a letter"),
        ({"value": "21.5"}, "value", "must be a finite number"),
        ({"value": True}, "value", "must be a finite number"),
        ({"value": 151}, "value", "must be between -60 and 150 °C"),
        ({"unit": "°F"}, "unit", "must be '°C' for temperature"),
        ({"timestamp": "2026-03-01T12:00:00"}, "timestamp", TIMESTAMP_RULE),
        ({"timestamp": 1772366400}, "timestamp", TIMESTAMP_RULE),
    ],
)
def test_every_path_gives_the_same_message_for_the_same_bad_field(
    handlers: dict[str, Handler], changes: dict[str, Any], field: str, message: str
) -> None:
    item = {**good(), **changes}

    assert posted(handlers, item) == [{"index": 0, "field": field, "message": message}]
    assert through_the_change_feed(item) == [f"{field} {message}"]
    assert through_the_hub(item) == [f"{field} {message}"]
