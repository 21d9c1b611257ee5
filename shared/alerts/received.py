"""Alerts received from the platform (`POST /api/alerts/inbound`: Alertmanager, Azure Monitor), kept as
Alertmanager alert objects beside ours: the latest report of each, and a history row once it resolves. A sender
that repeats a report (Alertmanager does, every repeat_interval) rewrites the same rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.alerts.inbound import ExternalAlert
from shared.alerts.notifications import ZERO_TIME
from shared.alerts.store import INBOUND, AlertStore, alert_json, history_key
from shared.readings.reading import epoch_ms, format_timestamp


def as_alert(received: ExternalAlert) -> dict[str, Any]:
    """A received alert as an Alertmanager alert object, with its summary and severity in place."""
    labels = {**received.labels, "alertname": received.name, "severity": received.severity}
    annotations = {**received.annotations, "summary": received.summary}
    return {
        "status": received.status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": _time(received.starts_at),
        "endsAt": ZERO_TIME if received.ends_at is None else _time(received.ends_at),
        "generatorURL": received.url or "",
        "fingerprint": received.fingerprint,
    }


def _time(moment: datetime) -> str:
    return format_timestamp(moment)


def record_received(store: AlertStore, alerts: Sequence[ExternalAlert], now_ms: int) -> int:
    """Keep each received alert; returns how many."""
    for received in alerts:
        alert = as_alert(received)
        body = alert_json(alert)
        row = {
            "alert": body,
            "source": received.source,
            "status": received.status,
            "severity": received.severity,
            "updated_ms": now_ms,
        }
        store.upsert(f"{INBOUND}{received.fingerprint}", row)
        if received.status == "resolved" and received.ends_at is not None:
            ended = epoch_ms(received.ends_at)
            store.upsert(history_key(ended, received.fingerprint), {"alert": body, "source": received.source})
    return len(alerts)
