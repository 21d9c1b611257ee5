"""Query parameters the read routes share, checked the same way everywhere; ValueError carries the reason."""

import azure.functions as func

from shared.dashboard.range_history import chart_range
from shared.readings.rules import METRIC_MESSAGE, METRIC_PATTERN


def metric_param(req: func.HttpRequest) -> str | None:
    metric: str | None = req.params.get("metric")
    if metric is not None and not METRIC_PATTERN.fullmatch(metric):
        raise ValueError(f"metric {METRIC_MESSAGE}")
    return metric


def bounded_int_param(req: func.HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = req.params.get(name)
    if raw is None:
        return default
    # isascii: str.isdigit also accepts digits such as '²', which int() refuses.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6 or not low <= int(raw) <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def range_param(req: func.HttpRequest) -> str | None:
    """A chart's time range (10m, 1h, 1d, 7d), or None when not given."""
    name: str | None = req.params.get("range")
    return None if name is None else chart_range(name).name


def version_param(req: func.HttpRequest) -> int | None:
    """A chart URL's version (see shared.dashboard.fleet.chart_versions), or None when not given."""
    raw = req.params.get("v")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15:
        raise ValueError("v must be a chart version: a whole number, as the listing gives it")
    return int(raw)
