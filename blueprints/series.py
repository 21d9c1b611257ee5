"""One sensor's series: its page, and its readings and summaries as CSV downloads."""

from collections.abc import Callable
from datetime import UTC, datetime

import azure.functions as func

from blueprints.query_params import metric_param, range_param
from blueprints.responses import error_response
from shared.app import services
from shared.dashboard.csv_export import CsvExport, TimeSpan
from shared.dashboard.page import BANNER_ALERTS
from shared.dashboard.reader import UnknownSeries, check_sensor_id
from shared.dashboard.series_page import SERIES_DEFAULT_RANGE, render_problem_page, render_series_page
from shared.ops.invocation import observed_function

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library's __init__ is unannotated

_ANONYMOUS = func.AuthLevel.ANONYMOUS


def _html(page: str, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(
        page, status_code=status, mimetype="text/html", charset="utf-8", headers={"Cache-Control": "no-store"}
    )


def _download(req: func.HttpRequest, build: Callable[[str, str | None, TimeSpan], CsvExport]) -> func.HttpResponse:
    """A CSV download of the sensor in the route over ?from..?to (default: the last 24 hours) and ?metric."""
    try:
        sensor_id = check_sensor_id(req.route_params.get("sensor_id", ""))
        span = TimeSpan.parse(req.params.get("from"), req.params.get("to"), datetime.now(UTC))
        export = build(sensor_id, metric_param(req), span)
    except ValueError as invalid:
        return error_response(400, str(invalid))
    except UnknownSeries as unknown:
        return error_response(404, str(unknown))
    return func.HttpResponse(export.body, mimetype="text/csv", charset="utf-8", headers=export.headers())


@bp.route(route="sensors/{sensor_id}", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("series_page", trigger="http")
def series_page(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """The sensor's page: per metric its figures, a large chart over ?range= (default 1h), recent history, the
    sensor's alerts, and the banner of every alert firing."""
    try:
        sensor_id = check_sensor_id(req.route_params.get("sensor_id", ""))
        chosen = range_param(req) or SERIES_DEFAULT_RANGE
    except ValueError as invalid:
        return _html(render_problem_page("Cannot show this sensor", str(invalid)), 400)
    app = services()
    try:
        history = app.series.sensor(sensor_id, datetime.now(UTC))
    except UnknownSeries:
        message = f"There is no sensor {sensor_id} yet: no summary has been made of its readings."
        return _html(render_problem_page("Unknown sensor", message), 404)
    return _html(render_series_page(history, chosen, app.alert_board.page("firing", BANNER_ALERTS, None)))


@bp.route(route="api/sensors/{sensor_id}/readings.csv", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("readings_csv", trigger="http")
def readings_csv(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """The sensor's readings, of ?metric or of every metric."""
    return _download(req, services().series.readings_csv)


@bp.route(route="api/sensors/{sensor_id}/summaries.csv", methods=["GET"], auth_level=_ANONYMOUS)
@observed_function("summaries_csv", trigger="http")
def summaries_csv(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """One series' summaries: ?metric, or the sensor's first."""
    return _download(req, services().series.summaries_csv)
