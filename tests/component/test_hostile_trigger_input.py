"""Hostile input inside the triggers: whatever a change-feed batch or an Event Hub batch holds, the invocation
finishes, every item is either summarised or dead-lettered with its reason, and the good items go on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.app import services
from shared.readings.dead_letters import DeadLetterBox
from tests.component.app_functions import app_functions, as_the_host_calls
from tests.component.conftest import listed_series
from tests.component.test_summarise_events import EventsHandler, hub_event

pytestmark = pytest.mark.usefixtures("app_on_temp_store")
T0 = datetime(2025, 6, 9, 10, 0, tzinfo=UTC)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
# Documents shaped like readings, each field possibly wrong in type, value or encoding.
reading_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=140) | json_values,
        "sensor_id": st.sampled_from(["s-1", "", "a\nb", "<x>", "ü", "a" * 70]) | json_values,
        "metric": st.sampled_from(["temperature", "Temp", ""]) | json_values,
        "value": st.floats(allow_nan=True, allow_infinity=True) | json_values,
        "unit": st.text(max_size=20) | json_values,
        "timestamp": st.sampled_from(["2025-06-09T10:00:00Z", "2025-06-09T10:00:00", "soon", ""]) | json_values,
        "source": json_values,
        "_ts": st.integers() | st.floats(allow_nan=True, allow_infinity=True) | json_values,  # the store's, in Azure
    },
)


def good(second: int) -> dict[str, Any]:
    moment = (T0 + timedelta(seconds=second)).isoformat()
    return {"id": f"ok-{second}", "sensor_id": "ok-1", "metric": "temperature", "value": 20.0, "timestamp": moment}


@FUZZ
@given(batch=st.lists(reading_like | json_values, min_size=1, max_size=20))
def test_any_change_feed_batch_is_summarised_or_dead_lettered_item_by_item(batch: list[object]) -> None:
    documents = [good(0), *batch, good(1)]
    # The trigger's use-case, with the moment the batch came: the good readings carry no _ts and are judged by it.
    outcome = services().batches.summarise_documents(documents, received_at=T0 + timedelta(minutes=1))
    assert outcome.received == len(documents)
    assert outcome.summarised + outcome.dead_lettered == outcome.received
    assert outcome.summarised >= 2  # the good readings around the hostile ones went on


@FUZZ
@given(
    bodies=st.lists(
        st.binary(max_size=300)
        | json_values.map(lambda v: json.dumps(v).encode())
        | reading_like.map(lambda v: json.dumps(v).encode("utf-16"))
        | reading_like.map(lambda v: json.dumps(v).encode()),
        min_size=1,
        max_size=10,
    )
)
def test_any_event_hub_batch_completes_and_good_events_are_summarised(bodies: list[bytes]) -> None:
    handler = cast(EventsHandler, as_the_host_calls(app_functions()["summarise_events"]))
    events: list[func.EventHubEvent] = [hub_event(body) for body in bodies]
    marker = good(len(bodies) + 100)
    handler([*events, hub_event(marker)])
    series = {(s["sensor_id"], s["metric"]) for s in listed_series()}
    assert ("ok-1", "temperature") in series


def test_a_huge_event_body_and_a_deeply_nested_one_are_dead_lettered_not_raised() -> None:
    handler = cast(EventsHandler, as_the_host_calls(app_functions()["summarise_events"]))
    huge = json.dumps({**good(1), "padding": "x" * (2 * 1024 * 1024)}).encode()
    nested = b"[" * 100_000 + b"]" * 100_000
    handler([hub_event(huge), hub_event(nested), hub_event(good(2))])
    reasons = [letter["reason"] for letter in DeadLetterBox(services().stores.state).list()]
    assert len(reasons) == 2, reasons
    (series,) = listed_series()
    assert series["latest"]["newest_reading_id"] == "ok-2"
