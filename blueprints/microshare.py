"""Microshare forwarding: the people-counter timer (every 15 minutes), the hourly-snapshot timer, and the
Durable Functions backfill (HTTP starter and status, orchestrator, activities) for gaps too long for one run.

Both timers share one forwarding routine (shared.microshare.forwarder.Forwarder) and keep their own watermark and
delivery records, keyed by recType. Timer triggers run on one instance at a time (the host holds a lease),
and a schedule missed while the app was down is made up at start (use_monitor)."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from blueprints.responses import error_response, json_response, request_json
from shared.app import services
from shared.microshare.api import HOURLY_SNAPSHOT, PEOPLE_COUNTER
from shared.microshare.backfill import (
    FINISH_ACTIVITY,
    INSTANCE_ID_PATTERN,
    INSTANCE_IDS,
    LOCATIONS_ACTIVITY,
    ORCHESTRATOR,
    WINDOW_ACTIVITY,
    BackfillRequest,
    BackfillRequestError,
    orchestrate,
    parse_request,
    window_output,
)
from shared.microshare.forwarder import Forwarder
from shared.ops.invocation import observed, observed_function
from shared.ops.log_context import app_logger
from shared.readings.reading import parse_timestamp

logger = app_logger(__name__)
bp = df.Blueprint()

PEOPLE_COUNTER_SCHEDULE = "0 */15 * * * *"
SNAPSHOT_SCHEDULE = "0 0 * * * *"
_ACTIVE = (df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Pending)


def _status_url(req: func.HttpRequest, instance_id: str) -> str:
    base = req.url.split("/api/", 1)[0]
    return f"{base}/api/microshare/backfill/{instance_id}"


async def _running(client: df.DurableOrchestrationClient, instance_id: str) -> bool:
    status = await client.get_status(instance_id)
    return status.runtime_status in _ACTIVE


async def _forward(function: str, rec_type: str, client: df.DurableOrchestrationClient, context: func.Context) -> None:
    with observed(function, context, trigger="timer", recType=rec_type):
        await _forward_or_backfill(rec_type, client)


async def _forward_or_backfill(rec_type: str, client: df.DurableOrchestrationClient) -> None:
    forwarder = services().forwarder
    if forwarder is None:
        logger.info("Microshare forwarding is off: MICROSHARE_USERNAME is not set", extra={"recType": rec_type})
        return
    due = forwarder.backfill_due(rec_type)
    if due is None:
        # The forwarder is blocking I/O: run it off the event loop, as the worker runs sync functions.
        await asyncio.to_thread(forwarder.run, rec_type)
        return
    instance_id = INSTANCE_IDS[rec_type]
    if await _running(client, instance_id):
        logger.info("a backfill of %s is running; this run leaves the gap to it", rec_type, extra={"recType": rec_type})
        return
    request = BackfillRequest(rec_type, *due)
    await client.start_new(ORCHESTRATOR, instance_id, request.to_input())
    logger.warning(
        "the gap since the %s watermark is too long for one run: started backfill %s",
        rec_type,
        instance_id,
        extra={"recType": rec_type, "instance_id": instance_id, **request.to_input()},
    )


@bp.function_name("forward_people_counter")
@bp.timer_trigger(arg_name="timer", schedule=PEOPLE_COUNTER_SCHEDULE, run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def forward_people_counter(
    timer: func.TimerRequest, client: df.DurableOrchestrationClient, context: func.Context
) -> None:
    await _forward("forward_people_counter", PEOPLE_COUNTER, client, context)


@bp.function_name("forward_hourly_snapshot")
@bp.timer_trigger(arg_name="timer", schedule=SNAPSHOT_SCHEDULE, run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def forward_hourly_snapshot(
    timer: func.TimerRequest, client: df.DurableOrchestrationClient, context: func.Context
) -> None:
    await _forward("forward_hourly_snapshot", HOURLY_SNAPSHOT, client, context)


@bp.function_name("start_backfill")
@bp.route(route="api/microshare/backfill", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@observed_function("start_backfill", trigger="http")
async def start_backfill(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, context: func.Context
) -> func.HttpResponse:
    settings = services().microshare
    if settings is None:
        return error_response(503, "Microshare forwarding is not configured (MICROSHARE_USERNAME)")
    try:
        body = request_json(req)
    except ValueError:
        return error_response(400, "the body must be JSON: {recType, from, to}")
    try:
        request = parse_request(body, datetime.now(UTC), settings.backfill_max_span)
    except BackfillRequestError as bad:
        return error_response(400, str(bad))
    instance_id = request.instance_id
    if await _running(client, instance_id):
        url = _status_url(req, instance_id)
        conflict = {"error": "a backfill of this recType is running", "id": instance_id, "statusUrl": url}
        return json_response(conflict, 409)
    await client.start_new(ORCHESTRATOR, instance_id, request.to_input())
    logger.info("started backfill %s", instance_id, extra={"instance_id": instance_id, **request.to_input()})
    management = client.create_http_management_payload(instance_id)
    url = _status_url(req, instance_id)
    body_out = {"id": instance_id, "statusUrl": url, **request.to_input(), "management": management}
    return json_response(body_out, 202, {"Location": url, "Retry-After": "2"})


@bp.function_name("backfill_status")
@bp.route(route="api/microshare/backfill/{instance_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@observed_function("backfill_status", trigger="http")
async def backfill_status(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, context: func.Context
) -> func.HttpResponse:
    instance_id = req.route_params.get("instance_id", "")
    if not INSTANCE_ID_PATTERN.fullmatch(instance_id):
        return error_response(400, "not a backfill instance id")
    status = await client.get_status(instance_id)
    if status.runtime_status is None:
        return error_response(404, f"no backfill {instance_id}")
    # Not status.to_json() or create_check_status_response(): this route's documented shape names the custom
    # status `progress` and the output `result`, and keeps ISO 8601 times with their offset.
    return json_response(
        {
            "id": instance_id,
            "runtimeStatus": status.runtime_status.name,
            "progress": status.custom_status,
            "result": status.output,
            "createdTime": None if status.created_time is None else status.created_time.isoformat(),
            "lastUpdatedTime": None if status.last_updated_time is None else status.last_updated_time.isoformat(),
        },
        200,
    )


@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)
def microshare_backfill(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    result = yield from orchestrate(context)
    return result


def _forwarder() -> Forwarder:
    forwarder = services().forwarder
    if forwarder is None:
        raise RuntimeError("Microshare forwarding is not configured (MICROSHARE_USERNAME)")
    return forwarder


@bp.activity_trigger(input_name="recType", activity=LOCATIONS_ACTIVITY)
def backfill_locations(recType: str) -> list[str]:  # noqa: N803 - the binding's name is the input's
    with observed(LOCATIONS_ACTIVITY, None, trigger="activity", recType=recType):
        return _forwarder().locations()


@bp.activity_trigger(input_name="window", activity=WINDOW_ACTIVITY)
def backfill_window(window: dict[str, Any]) -> dict[str, Any]:
    rec_type, location = str(window["recType"]), str(window["location"])
    with observed(WINDOW_ACTIVITY, None, trigger="activity", recType=rec_type, location=location):
        start, end = parse_timestamp(window["from"]), parse_timestamp(window["to"])
        return window_output(_forwarder().forward_window(rec_type, location, start, end))


@bp.activity_trigger(input_name="request", activity=FINISH_ACTIVITY)
def backfill_finish(request: dict[str, Any]) -> None:
    parsed = BackfillRequest.from_input(request)
    with observed(FINISH_ACTIVITY, None, trigger="activity", recType=parsed.rec_type, instance_id=parsed.instance_id):
        newest = None if request.get("newest") is None else parse_timestamp(request["newest"])
        days = set(request.get("days", []))
        _forwarder().finish_backfill(parsed.rec_type, parsed.start, parsed.end, newest, days)
        logger.info(
            "backfill %s finished: the watermark moves to %s",
            parsed.instance_id,
            request.get("newest"),
            extra={"event": "backfill_finished", "instance_id": parsed.instance_id, "recType": parsed.rec_type},
        )
