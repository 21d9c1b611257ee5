"""Managing rules: put, list, delete, and the demo rules `make run` starts with.

Deleting a rule resolves what it was firing (with a notification, as any resolution), so no alert is left
firing with nothing to clear it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from shared.alerts.evaluation import FIRING, RESOLVED, AlertState
from shared.alerts.rulebook import RuleBook
from shared.alerts.rules import DEMO_RULES, AlertRule
from shared.alerts.store import AlertStore
from shared.alerts.transitions import Judged, record_transitions, rows_of
from shared.ops.log_context import app_logger
from shared.ops.metrics import PipelineMetrics
from shared.readings.reading import epoch_ms, format_timestamp
from shared.storage.ports import ConcurrencyConflict

logger = app_logger(__name__)


def _identity(rule: AlertRule) -> tuple[str, str, str, str]:
    return (rule.kind, rule.metric, rule.sensors, rule.severity)


class RuleAdmin:
    def __init__(
        self,
        store: AlertStore,
        rulebook: RuleBook,
        metrics: PipelineMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._rulebook = rulebook
        self._metrics = metrics
        self._clock = clock

    def list(self) -> list[AlertRule]:
        return sorted(self._store.rules(), key=lambda rule: rule.name)

    def put(self, rule: AlertRule) -> bool:
        """Keep a rule; True when it is new. Replacing a rule with another kind, metric, pattern or severity first
        resolves what it was firing: those make the alert's labels, and a receiver matches a resolution to its
        firing by them."""
        before = self._store.rule(rule.name)
        created = before is None
        if before is not None and _identity(before) != _identity(rule):
            self._resolve_all(before)
        self._store.put_rule(rule, format_timestamp(self._clock()))
        self._rulebook.changed()
        logger.info(
            "alert rule %s %s", rule.name, "created" if created else "replaced", extra={"event": "alert_rule_put"}
        )
        return created

    def delete(self, name: str) -> bool:
        """Delete a rule and resolve its firing alerts; False when there is no such rule."""
        rule = self._store.rule(name)
        if rule is None:
            return False
        self._store.delete_rule(name)
        self._rulebook.changed()
        resolved = self._resolve_all(rule)
        logger.info(
            "alert rule %s deleted; %d of its alerts resolved",
            name,
            resolved,
            extra={"event": "alert_rule_deleted", "rule": name, "resolved": resolved},
        )
        return True

    def _resolve_all(self, rule: AlertRule) -> int:
        now_ms = epoch_ms(self._clock())
        resolved = 0
        for entity in self._store.states():
            if entity.properties.get("rule") != rule.name or entity.properties.get("state") != FIRING:
                continue
            current = AlertState.from_properties(entity.properties)
            ended = AlertState(RESOLVED, current.seen, current.since_ms, 0, current.started_ms, now_ms, current.value)
            sensor_id, metric = str(entity.properties.get("sensor_id")), str(entity.properties.get("metric"))
            unit = str(entity.properties.get("unit", ""))
            judged = Judged(rule, sensor_id, metric, ended, entity.etag, RESOLVED, unit)
            try:
                self._store.commit(rows_of(judged, now_ms))
            except ConcurrencyConflict:
                continue  # it changed meanwhile (resolved by its own data): nothing left to do for it
            record_transitions(self._metrics, [judged])
            resolved += 1
        return resolved

    def seed_demo(self) -> int:
        """The demo rules, once per store: deleting them afterwards sticks. Returns how many were added."""
        if self._store.rules_marker() is not None:
            return 0
        added = 0
        for rule in DEMO_RULES:
            if self._store.rule(rule.name) is None:
                self._store.put_rule(rule, format_timestamp(self._clock()))
                added += 1
        self._store.mark_rules_seeded(format_timestamp(self._clock()))
        self._rulebook.changed()
        return added
