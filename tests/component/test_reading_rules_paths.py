"""One bad field, three ways in, one message: POST /api/readings lists it as {index, field, message}; the change
feed trigger and the Event Hub trigger dead-letter the document with "<field> <message>" as the reason, and go on
with the rest of the batch. A trigger judges a reading's age by when it entered the pipeline, and refuses an id it
has summarised with other content."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import azure.functions as func
import pytest

from shared.app import services
from shared.readings.dead_letters import DeadLetterBox
from tests.component.app_functions import app_functions, as_the_host_calls
from tests.component.conftest import Handler, listed_series
from tests.component.test_summarise_events import EventsHandler, hub_event

pytestmark = pytest.mark.usefixtures("app_on_temp_store")
ID_RULE = "must be 1-128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"
SENSOR_ID_RULE = "must be 1-64 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"
TIMESTAMP_RULE = "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-01T12:00:00Z"
AGE_RULE = "must be at most 604800 s old"  # READING_MAX_AGE_SECONDS defaults to READING_TTL_SECONDS, a week


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
        ({"timestamp": "1970-01-01T00:00:00Z"}, "timestamp", AGE_RULE),
    ],
)
def test_every_path_gives_the_same_message_for_the_same_bad_field(
    handlers: dict[str, Handler], changes: dict[str, Any], field: str, message: str
) -> None:
    item = {**good(), **changes}

    assert posted(handlers, item) == [{"index": 0, "field": field, "message": message}]
    assert through_the_change_feed(item) == [f"{field} {message}"]
    assert through_the_hub(item) == [f"{field} {message}"]


def reading_at(number: int, moment: datetime, value: float = 21.5) -> dict[str, Any]:
    return {**good(), "id": f"boiler-7:{number:04d}", "value": value, "timestamp": moment.isoformat()}


def change_feed(*documents: dict[str, Any]) -> None:
    summarise = as_the_host_calls(app_functions()["summarise_readings"])
    summarise(func.DocumentList([func.Document.from_dict(document) for document in documents]))


def summarised() -> tuple[int, float] | None:
    """The series' latest summary as the fleet listing shows it: (count, max)."""
    latest = [s["latest"] for s in listed_series() if s["sensor_id"] == "boiler-7"]
    return (latest[0]["count"], latest[0]["max"]) if latest else None


def test_a_change_feed_document_too_old_when_written_is_dead_lettered_and_the_rest_summarised() -> None:
    now = datetime.now(UTC)
    written = int(now.timestamp())  # the document's _ts, as Cosmos DB sets it
    recent = [{**reading_at(n, now - timedelta(minutes=n)), "_ts": written} for n in (1, 2, 3)]
    from_1970 = {**reading_at(4, datetime(1970, 1, 1, tzinfo=UTC)), "_ts": written}

    change_feed(recent[0], from_1970, *recent[1:])

    assert dead_letter_reasons("cosmos-readings") == [f"timestamp {AGE_RULE}"]
    assert summarised() == (3, 21.5)


def test_a_change_feed_document_is_judged_by_when_it_was_written_not_when_it_is_delivered() -> None:
    now = datetime.now(UTC)
    taken = now - timedelta(days=8)
    # Written a minute after it was taken, delivered eight days later (a feed that was stopped): in time.
    in_time = {**reading_at(1, taken), "_ts": int((taken + timedelta(minutes=1)).timestamp())}
    # Taken as long ago, but written now: too old, on this delivery and on every redelivery.
    too_late = {**reading_at(2, taken + timedelta(seconds=1)), "_ts": int(now.timestamp())}

    for _ in range(2):
        change_feed(in_time, too_late)

    assert dead_letter_reasons("cosmos-readings") == [f"timestamp {AGE_RULE}"]
    assert summarised() == (1, 21.5)


def event(body: dict[str, Any], enqueued: datetime) -> func.EventHubEvent:
    return func.EventHubEvent(body=json.dumps(body).encode(), enqueued_time=enqueued)


def test_an_event_too_old_when_enqueued_is_dead_lettered_and_the_rest_summarised() -> None:
    now = datetime.now(UTC)
    taken = now - timedelta(days=8)
    summarise = cast(EventsHandler, as_the_host_calls(app_functions()["summarise_events"]))
    events = [
        event(reading_at(1, now - timedelta(minutes=1)), now),
        event(reading_at(2, datetime(1970, 1, 1, tzinfo=UTC)), now),
        event(reading_at(3, taken), taken + timedelta(minutes=1)),  # enqueued in time, delivered eight days later
        event(reading_at(4, taken), now),  # enqueued eight days after it was taken
    ]

    summarise(events)

    assert dead_letter_reasons("eventhub-telemetry") == [f"timestamp {AGE_RULE}"] * 2
    assert summarised() == (2, 21.5)


@pytest.mark.parametrize("path", ["change feed", "event hub"])
def test_an_id_summarised_with_other_content_is_dead_lettered_and_the_summary_kept(path: str) -> None:
    now = datetime.now(UTC)
    first, newer = reading_at(1, now - timedelta(minutes=2), 20.0), reading_at(2, now - timedelta(minutes=1), 22.0)
    other_value = {**first, "value": 35.0}
    other_time = {**first, "timestamp": (now - timedelta(minutes=3)).isoformat()}
    summarise_events = cast(EventsHandler, as_the_host_calls(app_functions()["summarise_events"]))

    def deliver(*documents: dict[str, Any]) -> None:
        if path == "change feed":
            change_feed(*({**document, "_ts": int(now.timestamp())} for document in documents))
        else:
            summarise_events([event(document, now) for document in documents])

    deliver(first, newer)
    before = summarised()
    deliver(other_value, other_time, first)  # and a true redelivery of the first

    source = "cosmos-readings" if path == "change feed" else "eventhub-telemetry"
    reason = "id was already summarised with other content"
    assert dead_letter_reasons(source) == [reason, reason]
    assert before == summarised() == (2, 22.0)
