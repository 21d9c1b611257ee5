"""The rows one judgement writes, together: the (rule, series) state and, for a transition, its notification in
the outbox and, when it resolves, its history row. They share one partition, so they go in one transaction and a
transition is never recorded without its notification, nor notified without being recorded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.alerts.evaluation import FIRING, RESOLVED, AlertState
from shared.alerts.notifications import SOURCE, build_alert, notification_id
from shared.alerts.rules import AlertRule
from shared.alerts.store import OUTBOX, PARTITION, alert_json, history_key, state_key
from shared.ops.log_context import app_logger
from shared.ops.metrics import PipelineMetrics
from shared.storage.ports import EntityWrite

logger = app_logger(__name__)


@dataclass(frozen=True, slots=True)
class Judged:
    """A state to write for one rule on one series, with the transition it makes (None: bookkeeping only)."""

    rule: AlertRule
    sensor_id: str
    metric: str
    state: AlertState
    etag: str | None
    notify: str | None
    unit: str = ""


def rows_of(judged: Judged, now_ms: int) -> list[EntityWrite]:
    rule, state = judged.rule, judged.state
    properties: dict[str, object] = {
        **state.to_properties(),
        "rule": rule.name,
        "kind": rule.kind,
        "sensor_id": judged.sensor_id,
        "metric": judged.metric,
        "severity": rule.severity,
        "unit": judged.unit,
        "updated_ms": now_ms,
    }
    alert = None
    if state.state in (FIRING, RESOLVED) and state.started_ms is not None:
        alert = build_alert(rule, judged.sensor_id, judged.metric, state, judged.unit)
        properties["alert"] = alert_json(alert)
    key = state_key(judged.sensor_id, judged.metric, rule.name)
    rows = [EntityWrite(PARTITION, key, properties, judged.etag)]
    if judged.notify is not None and alert is not None and state.started_ms is not None:
        note = notification_id(alert["fingerprint"], state.started_ms, alert["status"])
        body = alert_json(alert)
        rows.append(
            EntityWrite(PARTITION, f"{OUTBOX}{note}", {"alert": body, "created_ms": now_ms, "deliveries": "{}"})
        )
        if judged.notify == RESOLVED and state.ended_ms is not None:
            history = {"alert": body, "source": SOURCE, "rule": rule.name}
            rows.append(EntityWrite(PARTITION, history_key(state.ended_ms, alert["fingerprint"]), history))
    return rows


def record_transitions(metrics: PipelineMetrics | None, judged: Sequence[Judged]) -> None:
    """Count and log the transitions among states just written."""
    for one in judged:
        if one.notify is None:
            continue
        if metrics is not None:
            metrics.alert_transitions.labels(one.rule.severity, one.notify).inc()
        logger.info(
            "alert %s on %s %s is %s",
            one.rule.name,
            one.sensor_id,
            one.metric,
            one.notify,
            extra={
                "event": "alert_transition",
                "rule": one.rule.name,
                "sensor_id": one.sensor_id,
                "metric": one.metric,
                "to": one.notify,
                "severity": one.rule.severity,
            },
        )
