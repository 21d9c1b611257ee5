"""The extension's replay of an orchestrator's actions against its history (devhost.durable.replay), and the
episode messages around it, checked against the azure-functions-durable library itself where it decides."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import pytest

from devhost.durable import history as ev
from devhost.durable.episode import orchestration_context, read_answer, read_failure
from devhost.durable.replay import ReplayFailure, replay

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RETRY = {"firstRetryIntervalInMilliseconds": 1000, "maxNumberOfAttempts": 3}


def _activity(name: str, value: Any = None) -> dict[str, Any]:
    return {"actionType": 0, "functionName": name, "input": json.dumps(value)}


def _with_retry(name: str, options: dict[str, Any] = RETRY) -> dict[str, Any]:
    return {"actionType": 1, "functionName": name, "input": "null", "retryOptions": options}


def _when_all(*children: dict[str, Any]) -> dict[str, Any]:
    return {"actionType": 12, "compoundActions": list(children)}


def _when_any(*children: dict[str, Any]) -> dict[str, Any]:
    return {"actionType": 11, "compoundActions": list(children)}


def _timer(at: datetime) -> dict[str, Any]:
    return {"actionType": 5, "fireAt": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "isCanceled": False}


def _start() -> list[ev.HistoryEvent]:
    return [ev.orchestrator_started(T0), ev.execution_started(T0, "i", "e", "orch", None)]


def _episode(at: datetime, *events: ev.HistoryEvent) -> list[ev.HistoryEvent]:
    return [ev.orchestrator_completed(at), ev.orchestrator_started(at), *events]


def _any_activity(name: str) -> bool:
    return name != "missing"


def test_fan_out_schedules_one_numbered_activity_per_child_once() -> None:
    actions = [_when_all(_activity("square", 1), _activity("square", 2), _activity("square", 3))]
    first = replay(_start(), actions, _any_activity)
    assert [(a.event_id, a.name, a.raw_input) for a in first.activities] == [
        (0, "square", "1"),
        (1, "square", "2"),
        (2, "square", "3"),
    ]

    recorded = _start() + [ev.task_scheduled(T0, n, "square", str(n + 1)) for n in range(3)]
    again = replay(recorded + _episode(T0, ev.task_completed(T0, 1, "4")), actions, _any_activity)
    assert again.activities == [] and again.timers == []


def test_when_all_waits_for_every_child_before_the_next_action_as_dotnet_does() -> None:
    actions = [_when_all(_activity("a"), _activity("b")), _activity("c")]
    history = _start() + [ev.task_scheduled(T0, 0, "a", "null"), ev.task_scheduled(T0, 1, "b", "null")]
    failed_one = history + _episode(T0, ev.task_failed(T0, 0, "boom", ""))
    assert replay(failed_one, actions, _any_activity).activities == []
    both = failed_one + [ev.task_completed(T0, 1, "null")]
    assert [(a.event_id, a.name) for a in replay(both, actions, _any_activity).activities] == [(2, "c")]


def test_when_any_moves_on_with_the_first_child() -> None:
    later = T0 + timedelta(hours=1)
    actions = [_when_any(_activity("a"), _timer(later)), _activity("b")]
    history = _start() + [ev.task_scheduled(T0, 0, "a", "null"), ev.timer_created(T0, 1, later)]
    outcome = replay(history + _episode(T0, ev.task_completed(T0, 0, "1")), actions, _any_activity)
    assert [(a.event_id, a.name) for a in outcome.activities] == [(2, "b")]


def test_retry_numbers_its_timers_and_attempts_as_the_library_expects_them() -> None:
    actions = [_with_retry("flaky", {**RETRY, "backoffCoefficient": 2})]
    t1, t2 = T0 + timedelta(seconds=5), T0 + timedelta(seconds=9)
    history = _start() + [ev.task_scheduled(T0, 0, "flaky", "null")]
    history += _episode(t1, ev.task_failed(t1, 0, "no", ""))
    outcome = replay(history, actions, _any_activity)
    assert [(t.event_id, t.fire_at) for t in outcome.timers] == [(1, t1 + timedelta(seconds=1))]

    history += [ev.timer_created(t1, 1, t1 + timedelta(seconds=1))]
    history += _episode(t2, ev.timer_fired(t2, 1, t1 + timedelta(seconds=1)))
    assert [(a.event_id, a.name) for a in replay(history, actions, _any_activity).activities] == [(2, "flaky")]

    history += [ev.task_scheduled(t2, 2, "flaky", "null")]
    history += _episode(t2, ev.task_failed(t2, 2, "no", ""))
    # The second retry waits first interval × coefficient.
    assert [t.fire_at for t in replay(history, actions, _any_activity).timers] == [t2 + timedelta(seconds=2)]


def test_library_accepts_the_retry_history_devhost_records() -> None:
    """The numbering above, fed to the library's own replay: it waits on the timer, then fails after the
    last attempt's extra timer, as DurableTask.Core's RetryInterceptor makes it."""

    def orchestrator(context: df.DurableOrchestrationContext) -> Any:
        return (yield context.call_activity_with_retry("flaky", df.RetryOptions(1000, 2), None))

    history = _start() + [ev.task_scheduled(T0, 0, "flaky", "null")]
    history += _episode(T0, ev.task_failed(T0, 0, "no", "details"))
    history += [ev.timer_created(T0, 1, T0)] + _episode(T0, ev.timer_fired(T0, 1, T0))
    history += [ev.task_scheduled(T0, 2, "flaky", "null")] + _episode(T0, ev.task_failed(T0, 2, "still no", "x"))
    actions = [_with_retry("flaky", {"firstRetryIntervalInMilliseconds": 1000, "maxNumberOfAttempts": 2})]
    outcome = replay(history, actions, _any_activity)
    assert [t.event_id for t in outcome.timers] == [3]
    history += [ev.timer_created(T0, 3, T0)] + _episode(T0, ev.timer_fired(T0, 3, T0))
    assert replay(history, actions, _any_activity).activities == []

    handle = df.Orchestrator.create(orchestrator)
    with pytest.raises(Exception, match="still no") as raised:
        handle(orchestration_context("i", history[:-2], history[-2:], None))
    assert read_failure(raised.value).error == "still no \n x"


def test_another_activity_at_a_recorded_position_is_non_deterministic() -> None:
    history = _start() + [ev.task_scheduled(T0, 0, "square", "1")]
    with pytest.raises(ReplayFailure, match="^Non-Deterministic workflow detected: .* named 'square', but the current"):
        replay(history, [_activity("double", 1)], _any_activity)
    with pytest.raises(ReplayFailure, match="hasn't \\(yet\\?\\) scheduled this task"):
        replay(history, [], _any_activity)
    with pytest.raises(ReplayFailure, match="instead produced a CreateTimerOrchestratorAction"):
        replay(history, [_timer(T0)], _any_activity)


def test_unknown_activities_and_unsupported_actions_fail_the_orchestration() -> None:
    with pytest.raises(ReplayFailure, match="'missing' doesn't exist"):
        replay(_start(), [_activity("missing")], _any_activity)
    with pytest.raises(ReplayFailure, match="sub-orchestrations"):
        replay(_start(), [{"actionType": 2, "functionName": "child", "input": "null"}], _any_activity)


def test_the_library_negotiates_schema_v3_from_the_context_devhost_sends() -> None:
    def orchestrator(context: df.DurableOrchestrationContext) -> Any:
        context.set_custom_status("started")
        first = yield context.call_activity("square", context.get_input())
        return first

    handle = df.Orchestrator.create(orchestrator)
    raw_input = json.dumps(json.dumps(4))  # as the Python client posts it: JSON text, JSON-encoded again
    state = handle(orchestration_context("i", [], _start(), raw_input))
    assert json.loads(state)["schemaVersion"] == 2  # ReplaySchema.V3
    answer = read_answer(state)
    assert (answer.done, answer.custom_status, answer.actions) == (False, "started", [_activity("square", 4)])

    history = _start() + [ev.task_scheduled(T0, 0, "square", "4")]
    done = read_answer(
        handle(orchestration_context("i", history, _episode(T0, ev.task_completed(T0, 0, "16"))[1:], raw_input))
    )
    assert (done.done, done.output) == (True, 16)


def test_timestamps_are_written_as_dotnet_round_trips_and_read_back() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 1, 250000, tzinfo=UTC)
    assert ev.format_timestamp(moment) == "2024-05-01T12:00:01.25Z"
    assert ev.parse_timestamp("2024-05-01T12:00:01.2500000Z") == moment
    assert ev.parse_timestamp(ev.format_timestamp(T0)) == T0
