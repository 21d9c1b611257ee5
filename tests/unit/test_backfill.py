"""The backfill request rules and the orchestrator, driven with azure-functions-durable's testing helper."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.durable_functions.testing import orchestrator_generator_wrapper

from shared.microshare.api import HOURLY_SNAPSHOT, PEOPLE_COUNTER
from shared.microshare.backfill import (
    FINISH_ACTIVITY,
    LOCATIONS_ACTIVITY,
    RETRY,
    WINDOW_ACTIVITY,
    BackfillRequestError,
    day_windows,
    orchestrate,
    parse_request,
)

NOW = datetime(2025, 6, 20, 12, 0, tzinfo=UTC)
MAX = timedelta(days=31)


def test_a_valid_request_names_its_rec_type_and_a_deterministic_instance_id() -> None:
    request = parse_request(
        {"recType": "people_counter", "from": "2025-06-01T00:00:00Z", "to": "2025-06-08T00:00:00Z"}, NOW, MAX
    )
    assert request.rec_type == PEOPLE_COUNTER
    assert request.instance_id == "backfill-people-counter"
    full = parse_request(
        {"recType": HOURLY_SNAPSHOT, "from": "2025-06-01T00:00:00Z", "to": "2025-06-02T00:00:00Z"}, NOW, MAX
    )
    assert full.instance_id == "backfill-hourly-snapshot"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "the body must be a JSON object"),
        ({"recType": "weather", "from": "2025-06-01T00:00:00Z", "to": "2025-06-02T00:00:00Z"}, "recType must be"),
        ({"recType": "people_counter", "to": "2025-06-02T00:00:00Z"}, "'from' is required"),
        ({"recType": "people_counter", "from": "June", "to": "2025-06-02T00:00:00Z"}, "'from': timestamp is not ISO"),
        ({"recType": "people_counter", "from": "2025-06-01T00:00:00", "to": "2025-06-02T00:00:00Z"}, "UTC offset"),
        ({"recType": "people_counter", "from": "2025-06-02T00:00:00Z", "to": "2025-06-01T00:00:00Z"}, "after 'from'"),
        ({"recType": "people_counter", "from": "2025-06-01T00:00:00Z", "to": "2025-06-01T00:00:00Z"}, "after 'from'"),
        ({"recType": "people_counter", "from": "2025-04-01T00:00:00Z", "to": "2025-06-01T00:00:00Z"}, "maximum of 31"),
        ({"recType": "people_counter", "from": "2025-06-20T00:00:00Z", "to": "2025-06-22T00:00:00Z"}, "future"),
        ({"recType": "people_counter", "from": 1, "to": "2025-06-02T00:00:00Z"}, "'from': timestamp must be"),
        (
            {"recType": "people_counter", "from": "2025-06-01T00:00:00Z", "to": "2025-06-02T00:00:00Z", "x": 1},
            "unknown",
        ),
    ],
)
def test_a_bad_request_is_refused_with_its_reason(body: object, reason: str) -> None:
    with pytest.raises(BackfillRequestError, match=reason):
        parse_request(body, NOW, MAX)


def test_windows_are_cut_at_utc_midnight() -> None:
    start = datetime(2025, 6, 1, 18, 30, tzinfo=UTC)
    windows = day_windows(start, datetime(2025, 6, 3, 6, 0, tzinfo=UTC))
    assert windows == [
        (start, datetime(2025, 6, 2, tzinfo=UTC)),
        (datetime(2025, 6, 2, tzinfo=UTC), datetime(2025, 6, 3, tzinfo=UTC)),
        (datetime(2025, 6, 3, tzinfo=UTC), datetime(2025, 6, 3, 6, 0, tzinfo=UTC)),
    ]


def test_the_retry_options_are_exponential_and_bounded() -> None:
    document = RETRY.to_json()
    assert document["backoffCoefficient"] == 2.0
    assert document["maxNumberOfAttempts"] == 5
    assert int(document["maxRetryIntervalInMilliseconds"]) >= int(document["firstRetryIntervalInMilliseconds"])


class Raises:
    """An activity result standing for a failure after all its retries."""


class FailedTask:
    @property
    def result(self) -> Any:
        raise RuntimeError("a window failed after its retries")


@dataclass
class FakeTask:
    result: Any
    name: str = ""
    payload: Any = None
    retried: bool = False


@dataclass
class FakeContext:
    """What the orchestrator asks of DurableOrchestrationContext; activities answer through `activity`."""

    input: dict[str, str]
    activity: Callable[[str, Any], Any]
    custom_statuses: list[Any] = field(default_factory=list)
    scheduled: list[FakeTask] = field(default_factory=list)

    def get_input(self) -> dict[str, str]:
        return self.input

    def call_activity(self, name: str, payload: Any) -> FakeTask:
        task = FakeTask(self.activity(name, payload), name, payload)
        self.scheduled.append(task)
        return task

    def call_activity_with_retry(self, name: str, retry: Any, payload: Any) -> FakeTask:
        assert retry is RETRY
        task = self.call_activity(name, payload)
        task.retried = True
        return task

    def task_all(self, tasks: list[FakeTask]) -> FakeTask | FailedTask:
        if any(isinstance(task.result, Raises) for task in tasks):
            return FailedTask()  # task_all fails when any of its tasks failed
        return FakeTask([task.result for task in tasks], "task_all")

    def set_custom_status(self, status: Any) -> None:
        self.custom_statuses.append(status)


def window_totals(payload: dict[str, str]) -> dict[str, Any]:
    return {
        "events": 10,
        "sent": 8,
        "skipped": 2,
        "dead_lettered": 1,
        "newest": payload["to"].replace("T00:00:00.000Z", "T23:45:00.000Z") if "T00" in payload["to"] else None,
        "days": [payload["from"][:10]],
    }


def activities(name: str, payload: Any) -> Any:
    if name == LOCATIONS_ACTIVITY:
        return ["Building A", "Building B", "Building C"]
    if name == WINDOW_ACTIVITY:
        return window_totals(payload)
    assert name == FINISH_ACTIVITY
    return None


def run(context: FakeContext) -> list[Any]:
    return list(orchestrator_generator_wrapper(orchestrate(context)))


def test_the_orchestrator_fans_out_one_retried_window_per_location_and_day_and_fans_the_totals_in() -> None:
    context = FakeContext(
        {"recType": PEOPLE_COUNTER, "from": "2025-06-01T00:00:00.000Z", "to": "2025-06-08T00:00:00.000Z"}, activities
    )
    *_, output = run(context)
    windows = [t for t in context.scheduled if t.name == WINDOW_ACTIVITY]
    assert len(windows) == 3 * 7 and all(t.retried for t in windows)
    assert {(t.payload["location"], t.payload["from"]) for t in windows} == {
        (loc, f"2025-06-0{day}T00:00:00.000Z")
        for loc in ("Building A", "Building B", "Building C")
        for day in range(1, 8)
    }
    assert output["windows"] == 21 and output["events"] == 210 and output["sent"] == 168
    assert output["dead_lettered"] == 21
    assert context.custom_statuses[0] == {
        "windows_done": 0,
        "windows_total": 21,
        "events_forwarded": 0,
        "events_sent": 0,
    }
    assert context.custom_statuses[-1]["windows_done"] == 21
    assert [s["windows_done"] for s in context.custom_statuses] == sorted(
        s["windows_done"] for s in context.custom_statuses
    )


def test_the_watermark_moves_once_every_window_is_done_to_the_newest_time_delivered() -> None:
    context = FakeContext(
        {"recType": PEOPLE_COUNTER, "from": "2025-06-01T00:00:00.000Z", "to": "2025-06-03T00:00:00.000Z"}, activities
    )
    run(context)
    finish = context.scheduled[-1]
    assert finish.name == FINISH_ACTIVITY
    assert finish.payload["newest"] == "2025-06-03T23:45:00.000Z"
    assert finish.payload["days"] == ["2025-06-01", "2025-06-02"]


def test_a_window_that_fails_after_its_retries_fails_the_orchestration_before_the_watermark_moves() -> None:
    def failing(name: str, payload: Any) -> Any:
        if name == WINDOW_ACTIVITY and payload["location"] == "Building B":
            return Raises()
        return activities(name, payload)

    context = FakeContext(
        {"recType": PEOPLE_COUNTER, "from": "2025-06-01T00:00:00.000Z", "to": "2025-06-02T00:00:00.000Z"}, failing
    )
    with pytest.raises(RuntimeError, match="window failed"):
        run(context)
    assert all(t.name != FINISH_ACTIVITY for t in context.scheduled)


def test_the_orchestrator_uses_no_clock_and_no_randomness() -> None:
    first = FakeContext(
        {"recType": HOURLY_SNAPSHOT, "from": "2025-06-01T00:00:00.000Z", "to": "2025-06-02T00:00:00.000Z"}, activities
    )
    second = FakeContext(dict(first.input), activities)
    assert run(first)[-1] == run(second)[-1]
    assert [(t.name, t.payload) for t in first.scheduled] == [(t.name, t.payload) for t in second.scheduled]
