"""The ingest API: devices and gateways post readings; anyone may read a sensor's latest readings back."""

import azure.functions as func

from blueprints.query_params import bounded_int_param, metric_param
from blueprints.responses import error_response, json_response
from shared.app import services
from shared.dashboard.reader import check_sensor_id
from shared.intake.ingest import IngestRejected, accepted_body
from shared.intake.reading_intake import MAX_READINGS_LIMIT
from shared.ops.invocation import observed_function

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library's __init__ is unannotated


@bp.route(route="api/readings", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@observed_function("post_readings", trigger="http")
def post_readings(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    try:
        readings = services().reading_intake.post(req.get_body(), req.headers.get("Content-Type"))
    except IngestRejected as rejected:
        return json_response(rejected.to_json(), rejected.status)
    return json_response(accepted_body(readings), 201)


@bp.route(route="api/sensors/{sensor_id}/readings", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@observed_function("list_readings", trigger="http")
def list_readings(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    try:
        sensor_id = check_sensor_id(req.route_params.get("sensor_id", ""))
        metric = metric_param(req)
        limit = bounded_int_param(req, "limit", 20, 1, MAX_READINGS_LIMIT)
    except ValueError as invalid:
        return error_response(400, str(invalid))
    readings = services().reading_intake.latest(sensor_id, metric, limit)
    if not readings:
        return error_response(404, f"no readings for sensor {sensor_id}")
    return json_response(readings)
