"""Alert notifications in Prometheus Alertmanager's webhook format (version 4), so they plug into Alertmanager,
Grafana and chat relays as they are.

A notification is one transition of one alert: its id (the idempotency key a receiver can deduplicate on) is made
of the alert's fingerprint, the episode's start and the status, so every retry of it carries the same key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.alerts.evaluation import FIRING, AlertState
from shared.alerts.inbound import label_fingerprint
from shared.alerts.rules import AlertRule
from shared.readings.reading import format_epoch_ms

RECEIVER = "sensorpulse"
SOURCE = "sensorpulse"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert that is still firing


# A stable id of an alert from its labels, in any order: 16 hex digits, as long as Alertmanager's.
fingerprint = label_fingerprint


def alert_labels(rule: AlertRule, sensor_id: str, metric: str) -> dict[str, str]:
    return {"alertname": rule.name, "severity": rule.severity, "sensor_id": sensor_id, "metric": metric}


def notification_id(alert_fingerprint: str, started_ms: int, status: str) -> str:
    return f"{alert_fingerprint}-{started_ms}-{status}"


@dataclass(frozen=True, slots=True)
class Notification:
    """One transition to deliver: `alert` is the Alertmanager alert object."""

    id: str
    alert: dict[str, Any]
    created_ms: int

    @property
    def status(self) -> str:
        return str(self.alert["status"])


def build_alert(rule: AlertRule, sensor_id: str, metric: str, state: AlertState, unit: str) -> dict[str, Any]:
    """The Alertmanager alert object of a transition of `rule` on one series (state FIRING or RESOLVED)."""
    labels = alert_labels(rule, sensor_id, metric)
    annotations = {"summary": alert_summary(rule, sensor_id, metric, state.value, unit), "condition": rule.condition()}
    if rule.description:
        annotations["description"] = rule.description
    if state.value is not None:
        annotations["value"] = f"{state.value:.6g}"
    started = state.started_ms if state.started_ms is not None else 0
    ends = ZERO_TIME if state.state == FIRING or state.ended_ms is None else format_epoch_ms(state.ended_ms)
    alert: dict[str, Any] = {
        "status": "firing" if state.state == FIRING else "resolved",
        "labels": labels,
        "annotations": annotations,
        "startsAt": format_epoch_ms(started),
        "endsAt": ends,
        "generatorURL": "",
        "fingerprint": fingerprint(labels),
    }
    return alert


def alert_summary(rule: AlertRule, sensor_id: str, metric: str, value: float | None, unit: str) -> str:
    """One line for people: `sensor-03 temperature avg 29.1 °C > 28.5`."""
    if rule.kind == "silence":
        return f"{sensor_id} {metric}: {rule.condition()}"
    shown = "" if value is None else f" {value:.4g}{(' ' + unit) if unit else ''}"
    return f"{sensor_id} {metric} {rule.field}{shown} {rule.op} {value_text(rule.value)}"


def value_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"


def webhook_message(alert: Mapping[str, Any], external_url: str) -> dict[str, Any]:
    """The whole webhook body (version 4) carrying one alert, grouped by its labels."""
    labels = dict(alert["labels"])
    group_labels = {"alertname": labels.get("alertname", "")}
    return {
        "version": "4",
        "groupKey": "{}:{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}",
        "truncatedAlerts": 0,
        "status": alert["status"],
        "receiver": RECEIVER,
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": dict(alert["annotations"]),
        "externalURL": external_url,
        "alerts": [dict(alert)],
    }
