"""The ingest API: devices and gateways post readings; anyone may read a sensor's latest readings back."""

import logging
import re

import azure.functions as func

from blueprints.responses import error_response, json_response
from shared.dashboard import check_sensor_id
from shared.ingest import IngestRejected, accepted_body
from shared.reading_intake import MAX_READINGS_LIMIT
from shared.readings import METRIC_PATTERN
from shared.services import get_reading_intake

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library's __init__ is unannotated
_LIMIT = re.compile(r"[0-9]{1,6}")


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
        metric = req.params.get("metric")
        if metric is not None and not METRIC_PATTERN.fullmatch(metric):
            raise ValueError("metric must be lower-case letters, digits and '_'")
        raw_limit = req.params.get("limit", "20")
        if not _LIMIT.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_READINGS_LIMIT:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_READINGS_LIMIT}")
    except ValueError as invalid:
        return error_response(400, str(invalid))
    readings = get_reading_intake().latest(sensor_id, metric, int(raw_limit))
    if not readings:
        return error_response(404, f"no readings for sensor {sensor_id}")
    return json_response(readings)
