"""The ingest API: devices and gateways post readings; anyone may read a sensor's latest readings back."""

import logging

import azure.functions as func

from blueprints.query_params import bounded_int_param, metric_param
from blueprints.responses import error_response, json_response
from shared.dashboard import check_sensor_id
from shared.ingest import IngestRejected, accepted_body
from shared.reading_intake import MAX_READINGS_LIMIT
from shared.services import get_reading_intake

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library's __init__ is unannotated


@bp.route(route="api/readings", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def post_readings(req: func.HttpRequest) -> func.HttpResponse:
    intake = get_reading_intake()
    try:
        readings = intake.accept(req.get_body(), req.headers.get("Content-Type"))
    except IngestRejected as rejected:
        logger.info("ingest refused (%d): %s", rejected.status, rejected.message, extra={"status": rejected.status})
        return json_response(rejected.to_json(), rejected.status)
    logger.info("ingested %d readings", len(readings), extra={"readings": len(readings)})
    return json_response(accepted_body(readings), 201)


@bp.route(route="api/sensors/{sensor_id}/readings", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def list_readings(req: func.HttpRequest) -> func.HttpResponse:
    try:
        sensor_id = check_sensor_id(req.route_params.get("sensor_id", ""))
        metric = metric_param(req)
        limit = bounded_int_param(req, "limit", 20, 1, MAX_READINGS_LIMIT)
    except ValueError as invalid:
        return error_response(400, str(invalid))
    readings = get_reading_intake().latest(sensor_id, metric, limit)
    if not readings:
        return error_response(404, f"no readings for sensor {sensor_id}")
    return json_response(readings)
