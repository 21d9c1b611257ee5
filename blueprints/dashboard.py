"""Dashboard: the live page, PNG charts and the small JSON API it polls."""

from datetime import UTC, datetime

import azure.functions as func
from azure.functions.warmup import WarmUpContext  # listed in azure.functions.__all__ but not exported there

from blueprints.query_params import bounded_int_param, metric_param, range_param, version_param
from blueprints.responses import error_response, json_response, revalidated_json
from shared.app import services
from shared.dashboard.charts.render import check_size
from shared.dashboard.fleet import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, FleetQuery
from shared.dashboard.page import BANNER_ALERTS, PAGE_SIZE, render_page
from shared.dashboard.range_history import DEFAULT_RANGE
from shared.dashboard.reader import MAX_SUMMARIES_LIMIT, UnknownSeries, check_sensor_id
from shared.ops.invocation import observed_function
from shared.ops.log_context import app_logger
from shared.ops.metrics import PROCESS_METRICS, PROMETHEUS_CONTENT_TYPE
from shared.ops.openapi import openapi_document
from shared.ops.readiness import check_readiness
from shared.readings.reading import format_timestamp

logger = app_logger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library's __init__ is unannotated

_ANONYMOUS = func.AuthLevel.ANONYMOUS
_MAX_SCALE = 3


# The documented way to own the site root: routePrefix "" in host.json and an optional, empty parameter.
@bp.route(route="{ignored:maxlength(0)?}", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("dashboard_page", trigger="http")
def dashboard_page(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """The fleet page; ?q, ?group, ?sort, ?range and ?cursor say what it shows, as the page keeps them. The banner
    of firing alerts at its top shows the ones firing now at once."""
    try:
        chosen = range_param(req) or DEFAULT_RANGE
        query = FleetQuery.parse(req.params)
        app = services()
        dashboard = app.dashboard
        first = dashboard.fleet_page(query, PAGE_SIZE, req.params.get("cursor") or None, datetime.now(UTC))
        firing = app.alert_board.page("firing", BANNER_ALERTS, None)
        page = render_page(first, chosen, dashboard.refresh_seconds, firing)
    except ValueError as invalid:
        return error_response(400, str(invalid))
    return func.HttpResponse(page, mimetype="text/html", charset="utf-8", headers={"Cache-Control": "no-store"})


@bp.route(route="api/sensors", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("list_sensors", trigger="http")
def list_sensors(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """One page of the fleet: ?limit, ?cursor (the last page's next_cursor), ?q, ?metric, ?group, ?sort."""
    try:
        query = FleetQuery.parse(req.params)
        limit = bounded_int_param(req, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        cursor = req.params.get("cursor") or None
        return revalidated_json(req, services().dashboard.fleet_page(query, limit, cursor, datetime.now(UTC)))
    except ValueError as invalid:
        return error_response(400, str(invalid))


@bp.route(route="api/sensors/{sensor_id}", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("sensor_series", trigger="http")
def sensor_series(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Every series of one sensor, as the listing shows them."""
    try:
        sensor_id = check_sensor_id(req.route_params.get("sensor_id", ""))
        return revalidated_json(req, services().dashboard.sensor(sensor_id, datetime.now(UTC)))
    except ValueError as invalid:
        return error_response(400, str(invalid))
    except UnknownSeries as unknown:
        return error_response(404, str(unknown))


@bp.route(route="api/overview", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("overview", trigger="http")
def overview(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """The page header's totals: series, stale series, readings per minute, how far behind."""
    return revalidated_json(req, services().dashboard.overview(datetime.now(UTC)))


@bp.route(route="api/sensors/{sensor_id}/summaries", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("list_summaries", trigger="http")
def list_summaries(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    try:
        sensor_id = check_sensor_id(req.route_params.get("sensor_id", ""))
        limit = bounded_int_param(req, "limit", 20, 1, MAX_SUMMARIES_LIMIT)
        return json_response(services().dashboard.summaries(sensor_id, metric_param(req), limit))
    except ValueError as invalid:
        return error_response(400, str(invalid))
    except UnknownSeries as unknown:
        return error_response(404, str(unknown))


@bp.route(route="api/plots/{sensor_id}.png", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("sensor_chart", trigger="http")
def sensor_chart(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    try:
        sensor_id = check_sensor_id(req.route_params.get("sensor_id", ""))
        metric = metric_param(req)
        scale = bounded_int_param(req, "scale", 1, 1, _MAX_SCALE)
        chosen = range_param(req)
        size = check_size(req.params.get("size", "card"))
        version = version_param(req)
        if version is not None and chosen is None:
            raise ValueError("v needs a range: a version names a range's chart")
        dashboard = services().dashboard
        etag, cache_control, _ = dashboard.chart_etag(sensor_id, metric, scale, chosen, size, version)
        if etag in {tag.strip() for tag in req.headers.get("If-None-Match", "").split(",")}:
            return func.HttpResponse(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})
        chart = dashboard.chart(sensor_id, metric, scale, chosen, size, version)
        headers = {"ETag": chart.etag, "Cache-Control": chart.cache_control}
        return func.HttpResponse(chart.png, mimetype="image/png", headers=headers)
    except ValueError as invalid:
        return error_response(400, str(invalid))
    except UnknownSeries as unknown:
        return error_response(404, str(unknown))


@bp.route(route="api/devices", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("list_devices", trigger="http")
def list_devices(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    devices = [device.to_document() for device in services().devices.list()]
    return json_response({"count": len(devices), "devices": devices})


@bp.route(route="api/openapi.json", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("openapi_json", trigger="http")
def openapi_json(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return json_response(openapi_document(services().ingest_limits))


@bp.route(route="api/health", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("health", trigger="http")
def health(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Liveness: the process answers. Touches no backend (that is /api/ready)."""
    return json_response({"status": "ok", "time": format_timestamp(datetime.now(UTC))})


@bp.route(route="api/ready", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("ready", trigger="http")
def ready(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Readiness: every backend answers; 503 names the ones that did not."""
    status, body = check_readiness(services().readiness_checks)
    return json_response(body, status, {"Cache-Control": "no-store"})


# Function key: the figures are operational detail, not for the public page. Prometheus sends the key as the
# x-functions-key header (or ?code=).
@bp.route(route="api/metrics", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@observed_function("metrics", trigger="http")
def metrics(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """This process's metrics in the Prometheus text format."""
    return func.HttpResponse(
        PROCESS_METRICS.exposition(),
        status_code=200,
        headers={"Content-Type": PROMETHEUS_CONTENT_TYPE, "Cache-Control": "no-store"},
    )


# Named "warmup", as the host requires. The host runs it once on each instance it adds (on plans that support the
# trigger, not on restarts), before that instance gets traffic; devhost runs it once at start.
@bp.warm_up_trigger(arg_name="warmup")
@observed_function("warmup")
def warmup(warmup: WarmUpContext, context: func.Context) -> None:
    """A new instance: load the chart library before the first viewer's charts have to."""
    from shared.dashboard.charts.render import warm_up

    warm_up()
