"""What the series tests share: readings written as the pipeline writes them (into `readings`, then summarised
one by one as the change feed would deliver them), and GET requests as the host makes them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func

from shared.app import services
from shared.readings.reading import format_timestamp
from shared.storage.names import READINGS
from tests.component.conftest import Handler

# Recent enough for a series to be "ok" and inside the downloads' default span (the last 24 hours).
T0 = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)


def at(second: int) -> str:
    """The stored time of a reading `second` seconds after T0."""
    return format_timestamp(T0 + timedelta(seconds=second))


def reading(
    sensor_id: str, second: int, value: float, metric: str = "temperature", unit: str = "°C", source: str = "rig"
) -> dict[str, Any]:
    return {
        "id": f"{sensor_id}-{metric}-{second:04d}",
        "sensor_id": sensor_id,
        "metric": metric,
        "value": value,
        "unit": unit,
        "timestamp": at(second),
        "source": source,
    }


def seed(
    sensor_id: str,
    seconds: Iterable[int],
    metric: str = "temperature",
    unit: str = "°C",
    source: str = "rig",
    base: float = 20.0,
) -> list[dict[str, Any]]:
    """Readings of value base + second, each written to `readings` and summarised on its own (a summary each)."""
    docs = [reading(sensor_id, s, base + s, metric, unit, source) for s in seconds]
    app = services()
    app.stores.documents.upsert_many(READINGS, docs)
    for doc in docs:
        outcome = app.summariser.apply([doc], source="test")
        assert not outcome.dead_lettered, outcome
    return docs


def get(
    handler: Handler, url: str, params: dict[str, str] | None = None, route_params: dict[str, str] | None = None
) -> func.HttpResponse:
    request = func.HttpRequest(
        method="GET",
        url=f"http://localhost/{url}",
        headers={},
        params=params or {},
        route_params=route_params or {},
        body=b"",
    )
    return handler(request)
