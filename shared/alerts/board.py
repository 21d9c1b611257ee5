"""The read side of alerts: firing and resolved alerts, ours and received ones, newest first, for
`GET /api/alerts`, the dashboard's banner and tiles, and a series' history.

Every row is read once per second at most, whoever asks (the banner is polled by every open page).
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from shared.alerts.evaluation import FIRING, PENDING
from shared.alerts.notifications import SOURCE
from shared.alerts.store import AlertStore, stored_alert
from shared.ops.metrics import PipelineMetrics
from shared.readings.reading import epoch_ms

STATES = ("firing", "resolved", "all")
CACHE_SECONDS = 1.0
MAX_LIMIT = 500


class BadAlertQuery(ValueError):
    """A state, limit or cursor the listing cannot answer; the message says which."""


@dataclass(frozen=True, slots=True)
class Board:
    """One read of every alert row, with what the dashboard asks of it per series worked out once: a page of
    tiles asks for each tile's badge, so that is a dictionary lookup, not a scan of every alert."""

    alerts: list[dict[str, Any]]  # firing then resolved... sorted newest first by `changed_at`
    pending: dict[tuple[str, str], int]  # series -> rules pending on it
    # (sensor, metric) -> its badge while something fires on it; sensor -> its alerts, in the order of `alerts`
    firing_by_series: dict[tuple[str, str], dict[str, Any]] = field(init=False, repr=False)
    by_sensor: dict[str, list[dict[str, Any]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        firing: dict[tuple[str, str], list[dict[str, Any]]] = {}
        by_sensor: dict[str, list[dict[str, Any]]] = {}
        for alert in self.alerts:
            sensor_id, metric = alert["sensor_id"], alert["metric"]
            if not isinstance(sensor_id, str):
                continue
            by_sensor.setdefault(sensor_id, []).append(alert)
            if alert["status"] == "firing" and isinstance(metric, str):
                firing.setdefault((sensor_id, metric), []).append(alert)
        badges = {key: _firing_badge(found) for key, found in firing.items()}
        object.__setattr__(self, "firing_by_series", badges)
        object.__setattr__(self, "by_sensor", by_sensor)

    def series_status(self, sensor_id: str, metric: str) -> dict[str, Any] | None:
        """A tile's alert badge: the most severe firing alert of the series, or pending; None when quiet."""
        badge = self.firing_by_series.get((sensor_id, metric))
        if badge is not None:
            return dict(badge)
        if self.pending.get((sensor_id, metric)):
            return {"state": "pending", "severity": None, "name": None, "count": 0}
        return None

    def series_history(self, sensor_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The sensor's alerts, firing first, then newest first."""
        return self.by_sensor.get(sensor_id, [])[:limit]


def _firing_badge(firing: list[dict[str, Any]]) -> dict[str, Any]:
    """The badge of a series with these alerts firing: the most severe (the newest of equals) and how many."""
    worst = min(firing, key=lambda a: _SEVERITY_RANK.get(a["severity"], 3))
    return {"state": "firing", "severity": worst["severity"], "name": worst["name"], "count": len(firing)}


def _time_ms(text: object) -> int:
    if not isinstance(text, str) or text.startswith("0001-"):
        return 0
    try:
        return epoch_ms(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return 0


def alert_view(alert: Mapping[str, Any], source: str) -> dict[str, Any]:
    """An Alertmanager alert object as the API lists it."""
    labels = {str(k): str(v) for k, v in dict(alert.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in dict(alert.get("annotations") or {}).items()}
    status = "firing" if alert.get("status") == "firing" else "resolved"
    ends = alert.get("endsAt") if status == "resolved" else None
    value = annotations.get("value")
    return {
        "fingerprint": str(alert.get("fingerprint", "")),
        "status": status,
        "name": labels.get("alertname", ""),
        "severity": labels.get("severity", "warning"),
        "summary": annotations.get("summary") or annotations.get("description") or labels.get("alertname", ""),
        "description": annotations.get("description", ""),
        "sensor_id": labels.get("sensor_id"),
        "metric": labels.get("metric"),
        "value": float(value) if value is not None and _is_number(value) else None,
        "starts_at": alert.get("startsAt"),
        "ends_at": ends,
        "source": source,
        "labels": labels,
        "annotations": annotations,
        "url": alert.get("generatorURL") or None,
        "changed_at": ends if ends else alert.get("startsAt"),
    }


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class AlertBoard:
    def __init__(
        self, store: AlertStore, metrics: PipelineMetrics | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Board] | None = None

    def board(self) -> Board:
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
            board = self._read()
            self._cached = (now, board)
            return board

    def changed(self) -> None:
        with self._lock:
            self._cached = None

    def _read(self) -> Board:
        alerts: list[dict[str, Any]] = []
        pending: dict[tuple[str, str], int] = {}
        for entity in self._store.states():
            state = entity.properties.get("state")
            if state == PENDING:
                key = (str(entity.properties.get("sensor_id")), str(entity.properties.get("metric")))
                pending[key] = pending.get(key, 0) + 1
            elif state == FIRING:
                alert = stored_alert(entity.properties)
                if alert is not None:
                    alerts.append(alert_view(alert, SOURCE))
        for entity in self._store.inbound():
            alert = stored_alert(entity.properties)
            if alert is not None and alert.get("status") == "firing":
                alerts.append(alert_view(alert, str(entity.properties.get("source", "inbound"))))
        for entity in self._store.history():
            alert = stored_alert(entity.properties)
            if alert is not None:
                alerts.append(alert_view(alert, str(entity.properties.get("source", SOURCE))))
        alerts.sort(key=_order)
        if self._metrics is not None:
            by_severity: dict[str, int] = {}
            for alert in alerts:
                if alert["status"] == "firing":
                    by_severity[alert["severity"]] = by_severity.get(alert["severity"], 0) + 1
            self._metrics.firing_alerts(by_severity)
        return Board(alerts, pending)

    def firing(self) -> list[dict[str, Any]]:
        return [alert for alert in self.board().alerts if alert["status"] == "firing"]

    def series_status(self, sensor_id: str, metric: str) -> dict[str, Any] | None:
        """A tile's alert badge: the most severe firing alert of the series, or pending; None when quiet."""
        return self.board().series_status(sensor_id, metric)

    def series_history(self, sensor_id: str, limit: int = 20) -> list[dict[str, Any]]:
        return self.board().series_history(sensor_id, limit)

    def page(self, state: str, limit: int, cursor: str | None) -> dict[str, Any]:
        """One page of the listing: `{"items", "next_cursor", "total", "firing"}`."""
        if state not in STATES:
            raise BadAlertQuery(f"state must be one of {', '.join(STATES)}")
        if not 1 <= limit <= MAX_LIMIT:
            raise BadAlertQuery(f"limit must be between 1 and {MAX_LIMIT}")
        alerts = self.board().alerts
        chosen = alerts if state == "all" else [a for a in alerts if a["status"] == state]
        start = 0
        if cursor is not None:
            after = _decode_cursor(cursor, state)
            start = next((i for i, alert in enumerate(chosen) if _order(alert) > after), len(chosen))
        items = chosen[start : start + limit]
        more = start + limit < len(chosen)
        return {
            "items": items,
            "next_cursor": _encode_cursor(_order(items[-1]), state) if more and items else None,
            "total": len(chosen),
            "firing": sum(1 for a in alerts if a["status"] == "firing"),
        }


_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
_Order = tuple[int, int, str, str]


def _order(alert: Mapping[str, Any]) -> _Order:
    """Firing first, then newest change first; the fingerprint and start break ties, so the order is total."""
    firing = 0 if alert["status"] == "firing" else 1
    return (firing, -_time_ms(alert["changed_at"]), str(alert["fingerprint"]), str(alert["starts_at"]))


def _encode_cursor(order: _Order, state: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([state, *order])).decode().rstrip("=")


def _decode_cursor(cursor: str, state: str) -> _Order:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise BadAlertQuery("cursor is not one this listing gave") from None
    if (
        not isinstance(raw, list)
        or len(raw) != 5
        or raw[0] != state
        or not all(isinstance(x, int) for x in raw[1:3])
        or not all(isinstance(x, str) for x in raw[3:5])
    ):
        raise BadAlertQuery("cursor is not one this listing gave (or is of another state)")
    return (raw[1], raw[2], raw[3], raw[4])
