"""Alerts: rules over HTTP, the alert listing, a test notification, platform alerts in, and the two timers
(silences every minute, the webhook sender every few seconds). Thresholds are judged inside the summariser."""

from datetime import UTC, datetime

import azure.functions as func

from blueprints.query_params import bounded_int_param
from blueprints.responses import error_response, json_response, request_json, revalidated_json
from shared.alerts.board import MAX_LIMIT, BadAlertQuery
from shared.alerts.inbound import InboundError, parse_inbound
from shared.alerts.received import record_received
from shared.alerts.rules import RuleError, check_rule_name, parse_rule
from shared.app import services
from shared.ops.invocation import observed_function
from shared.readings.reading import epoch_ms

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library's __init__ is unannotated

MAX_INBOUND_BYTES = 1_048_576


def _rule_error(error: RuleError) -> func.HttpResponse:
    return json_response({"error": str(error), "field": error.field}, 400)


@bp.route(route="api/alerts/rules/{name}", methods=["PUT"], auth_level=func.AuthLevel.FUNCTION)
@observed_function("put_alert_rule", trigger="http")
def put_alert_rule(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    try:
        body = request_json(req)
    except ValueError as invalid:
        return json_response({"error": str(invalid), "field": "body"}, 400)
    try:
        rule = parse_rule(req.route_params.get("name", ""), body)
    except RuleError as error:
        return _rule_error(error)
    created = services().alert_admin.put(rule)
    return json_response(rule.to_json(), 201 if created else 200)


@bp.route(route="api/alerts/rules", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@observed_function("list_alert_rules", trigger="http")
def list_alert_rules(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    rules = services().alert_admin.list()
    return json_response({"rules": [rule.to_json() for rule in rules]})


@bp.route(route="api/alerts/rules/{name}", methods=["DELETE"], auth_level=func.AuthLevel.FUNCTION)
@observed_function("delete_alert_rule", trigger="http")
def delete_alert_rule(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    try:
        name = check_rule_name(req.route_params.get("name", ""))
    except RuleError as error:
        return _rule_error(error)
    if not services().alert_admin.delete(name):
        return error_response(404, f"no alert rule named {name}")
    return func.HttpResponse(status_code=204)


@bp.route(route="api/alerts", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@observed_function("list_alerts", trigger="http")
def list_alerts(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    try:
        limit = bounded_int_param(req, "limit", 50, 1, MAX_LIMIT)
        page = services().alert_board.page(req.params.get("state", "firing"), limit, req.params.get("cursor"))
    except (ValueError, BadAlertQuery) as invalid:
        return error_response(400, str(invalid))
    return revalidated_json(req, page)


@bp.route(route="api/alerts/test", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@observed_function("test_alert_webhooks", trigger="http")
def test_alert_webhooks(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    answers = services().alert_sender.send_test()
    if not answers:
        return error_response(409, "no webhook to test: ALERT_WEBHOOK_URLS is empty")
    return json_response({"webhooks": answers})


@bp.route(route="api/alerts/inbound", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@observed_function("receive_alerts", trigger="http")
def receive_alerts(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    content_type = req.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return error_response(415, "send alerts as application/json")
    if len(req.get_body()) > MAX_INBOUND_BYTES:
        return error_response(413, f"a body holds at most {MAX_INBOUND_BYTES} bytes")
    try:
        body = request_json(req)
    except ValueError as invalid:
        return json_response({"error": str(invalid), "field": "body"}, 400)
    now = datetime.now(UTC)
    app = services()
    try:
        received = parse_inbound(body, received_at=now)
    except InboundError as error:
        return json_response({"error": str(error), "field": error.field}, 400)
    count = record_received(app.alert_store, received, epoch_ms(now))
    app.alert_board.changed()
    return json_response({"received": count}, 202)


@bp.function_name("evaluate_silences")
@bp.timer_trigger(arg_name="timer", schedule="%ALERT_SILENCE_SCHEDULE%", run_on_startup=False, use_monitor=False)
@observed_function("evaluate_silences", trigger="timer")
def evaluate_silences(timer: func.TimerRequest, context: func.Context) -> None:
    """Silence rules against every series' newest reading; prunes alert history; counts firing alerts."""
    services().silences.run()


@bp.function_name("send_alert_notifications")
@bp.timer_trigger(arg_name="timer", schedule="%ALERT_SENDER_SCHEDULE%", run_on_startup=True, use_monitor=False)
@observed_function("send_alert_notifications", trigger="timer")
def send_alert_notifications(timer: func.TimerRequest, context: func.Context) -> None:
    """Deliver the outbox to every webhook: due sends, retries with backoff, dead letters past the deadline."""
    services().alert_sender.deliver_due()
