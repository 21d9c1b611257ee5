"""A small Durable Functions app for devhost's tests: every orchestration shape devhost has to drive.

Activities report their attempts to durable_probe (keyed by their input, per host generation), so a test
can see which host ran what; the restart test holds some `step` activities there while it stops the host.
"""

from __future__ import annotations

import json
import random
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from tests.devhost.durable_app import durable_probe

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

Orchestration = Generator[Any, Any, Any]


@app.route(route="orchestrators/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["name"], None, json.loads(body) if body else None)
    return client.create_check_status_response(req, instance_id)  # type: ignore[no-any-return]


@app.route(route="status/{instance_id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def http_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The status as the Python client reads it (get_status over the extension's RPC endpoint)."""
    status = await client.get_status(req.route_params["instance_id"], show_history=True, show_history_output=True)
    if not status:
        return func.HttpResponse(status_code=404)
    document = {
        "runtimeStatus": status.runtime_status.value,
        "output": status.output,
        "customStatus": status.custom_status,
        "history": getattr(status, "historyEvents", None),
    }
    return func.HttpResponse(json.dumps(document), mimetype="application/json")


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer")
@app.durable_client_input(client_name="client")
async def nightly_fan_out(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    await client.start_new("fan_out", "nightly", 4)


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext) -> Orchestration:
    count = context.get_input()
    context.set_custom_status({"stage": "fanning out", "activities": count})
    squares = yield context.task_all([context.call_activity("square", n) for n in range(count)])
    context.set_custom_status({"stage": "summed", "activities": count})
    return sum(squares)


@app.activity_trigger(input_name="n")
def square(n: int) -> int:
    return n * n


@app.activity_trigger(input_name="n")
def double(n: int) -> int:
    return 2 * n


@app.orchestration_trigger(context_name="context")
def with_retry(context: df.DurableOrchestrationContext) -> Orchestration:
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=20, max_number_of_attempts=3)
    return (yield context.call_activity_with_retry("flaky", retry, context.get_input()))


@app.activity_trigger(input_name="key")
def flaky(key: str) -> dict[str, Any]:
    attempt = durable_probe.attempt(key)
    if attempt < 3:
        raise RuntimeError(f"attempt {attempt} of {key} fails")
    return {"key": key, "attempt": attempt}


@app.orchestration_trigger(context_name="context")
def gives_up(context: df.DurableOrchestrationContext) -> Orchestration:
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=10, max_number_of_attempts=2)
    return (yield context.call_activity_with_retry("always_fails", retry, context.get_input()))


@app.activity_trigger(input_name="key")
def always_fails(key: str) -> None:
    durable_probe.attempt(key)
    raise ValueError(f"{key} never works")


@app.orchestration_trigger(context_name="context")
def with_timer(context: df.DurableOrchestrationContext) -> Orchestration:
    fire_at = context.current_utc_datetime + timedelta(milliseconds=300)
    yield context.create_timer(fire_at)
    return {"fire_at": fire_at.isoformat(), "woke_at": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def race(context: df.DurableOrchestrationContext) -> Orchestration:
    deadline = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    work = context.call_activity("square", context.get_input())
    context.set_custom_status("racing")
    winner = yield context.task_any([work, deadline])
    if winner == work:
        deadline.cancel()
        context.set_custom_status("activity won")
        return {"winner": "activity", "value": work.result}
    return {"winner": "timer"}


@app.orchestration_trigger(context_name="context")
def nondeterministic(context: df.DurableOrchestrationContext) -> Orchestration:
    total = 0
    for _ in range(30):
        # Wrong on purpose: the clock and random differ between replays, so a replay takes another branch
        # than the one its history recorded.
        coin = random.random() < 0.5
        tick = datetime.now().microsecond % 2 == 0
        total += yield context.call_activity("square" if coin != tick else "double", 3)
    return total


@app.orchestration_trigger(context_name="context")
def steps(context: df.DurableOrchestrationContext) -> Orchestration:
    return (yield context.task_all([context.call_activity("step", n) for n in range(context.get_input())]))


@app.activity_trigger(input_name="n")
def step(n: int) -> int:
    durable_probe.attempt(f"step-{n}")
    if durable_probe.hold_from is not None and n >= durable_probe.hold_from:
        durable_probe.release.wait()
    return n * 10


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext) -> Orchestration:
    context.set_custom_status("waiting for approval")
    answer = yield context.wait_for_external_event("approved")
    return {"approved_by": answer}


@app.orchestration_trigger(context_name="context")
def countdown(context: df.DurableOrchestrationContext) -> Orchestration:
    remaining = context.get_input()
    if remaining == 0:
        return "liftoff"
    yield context.call_activity("double", remaining)
    context.continue_as_new(remaining - 1)
    return None
