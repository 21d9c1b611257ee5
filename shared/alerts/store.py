"""Where alerts live: rules in one table; every alert row in one partition of another, so that a transition,
its notification (the outbox) and its history row are written in one entity-group transaction.

Row keys of the alerts partition, each kind a range of its own:
  s|<sensor>|<metric>|<rule>  the state of one rule on one series (a series' rows are one range, read at once)
  o|<notification id>         the outbox: a transition not yet delivered to every webhook
  h|<inverted end>|<fp>       history: a resolved alert, newest first
  i|<fingerprint>             an alert received from Alertmanager or Azure Monitor, as last reported
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from shared.alerts.evaluation import AlertState
from shared.alerts.rules import AlertRule, rule_from_stored
from shared.storage.names import ALERT_RULES_TABLE, ALERTS_TABLE
from shared.storage.ports import MAX_ATOMIC_WRITES, Entity, EntityWrite, StateStore

PARTITION = "alerts"
RULES_PARTITION = "rules"
STATE = "s|"
OUTBOX = "o|"
HISTORY = "h|"
INBOUND = "i|"
_LATEST_MS = 9_999_999_999_999  # history keys count down from here, so the newest sorts first


def state_key(sensor_id: str, metric: str, rule: str) -> str:
    return f"{STATE}{sensor_id}|{metric}|{rule}"


def series_prefix(sensor_id: str, metric: str) -> str:
    return f"{STATE}{sensor_id}|{metric}|"


def history_key(ended_ms: int, alert_fingerprint: str) -> str:
    return f"{HISTORY}{_LATEST_MS - max(0, ended_ms):013d}|{alert_fingerprint}"


def history_ended_ms(row_key: str) -> int:
    """When the alert of a history row resolved, from its key."""
    return _LATEST_MS - int(row_key[len(HISTORY) : len(HISTORY) + 13])


@dataclass(frozen=True, slots=True)
class StoredState:
    rule: str
    state: AlertState
    etag: str | None  # None: no row yet


class AlertStore:
    def __init__(self, state: StateStore) -> None:
        self._state = state

    # Rules
    def rules(self) -> list[AlertRule]:
        return [
            rule_from_stored(e.row_key, e.properties) for e in self._state.query(ALERT_RULES_TABLE, RULES_PARTITION)
        ]

    def rule(self, name: str) -> AlertRule | None:
        entity = self._state.get(ALERT_RULES_TABLE, RULES_PARTITION, name)
        return None if entity is None else rule_from_stored(name, entity.properties)

    def put_rule(self, rule: AlertRule, updated_at: str) -> None:
        body = {k: v for k, v in rule.to_json().items() if k != "name"}
        self._state.upsert(ALERT_RULES_TABLE, RULES_PARTITION, rule.name, {**body, "updated_at": updated_at})

    def delete_rule(self, name: str) -> None:
        self._state.delete(ALERT_RULES_TABLE, RULES_PARTITION, name)

    def rules_marker(self) -> Entity | None:
        """The row that says the demo rules were offered once (so deleting them sticks)."""
        return self._state.get(ALERT_RULES_TABLE, "seeded", "demo")

    def mark_rules_seeded(self, at: str) -> None:
        self._state.upsert(ALERT_RULES_TABLE, "seeded", "demo", {"at": at})

    # States
    def series_states(self, sensor_id: str, metric: str) -> dict[str, StoredState]:
        """Every rule's state on one series: one range read."""
        found: dict[str, StoredState] = {}
        for entity in self._state.query_prefix(ALERTS_TABLE, PARTITION, series_prefix(sensor_id, metric)):
            rule = str(entity.properties.get("rule", ""))
            found[rule] = StoredState(rule, AlertState.from_properties(entity.properties), entity.etag)
        return found

    def all_series_states(self) -> dict[tuple[str, str], dict[str, StoredState]]:
        """Every rule's state on every series: one range read."""
        found: dict[tuple[str, str], dict[str, StoredState]] = {}
        for entity in self.states():
            key = (str(entity.properties.get("sensor_id", "")), str(entity.properties.get("metric", "")))
            rule = str(entity.properties.get("rule", ""))
            found.setdefault(key, {})[rule] = StoredState(
                rule, AlertState.from_properties(entity.properties), entity.etag
            )
        return found

    def states(self) -> list[Entity]:
        return self._state.query_prefix(ALERTS_TABLE, PARTITION, STATE)

    def commit(self, writes: Sequence[EntityWrite]) -> list[Entity]:
        """Write the rows of one or more transitions all together (ConcurrencyConflict: none was written)."""
        if len(writes) > MAX_ATOMIC_WRITES:
            raise ValueError(f"at most {MAX_ATOMIC_WRITES} alert rows change together")
        return self._state.write_atomically(ALERTS_TABLE, writes)

    # Outbox
    def outbox(self) -> list[Entity]:
        return self._state.query_prefix(ALERTS_TABLE, PARTITION, OUTBOX)

    def write_outbox(self, row_key: str, properties: Mapping[str, Any], etag: str) -> Entity:
        return self._state.write(ALERTS_TABLE, EntityWrite(PARTITION, row_key, properties, etag))

    def delete_row(self, row_key: str) -> None:
        self._state.delete(ALERTS_TABLE, PARTITION, row_key)

    # History and inbound alerts
    def history(self) -> list[Entity]:
        return self._state.query_prefix(ALERTS_TABLE, PARTITION, HISTORY)

    def inbound(self) -> list[Entity]:
        return self._state.query_prefix(ALERTS_TABLE, PARTITION, INBOUND)

    def upsert(self, row_key: str, properties: Mapping[str, Any]) -> None:
        self._state.upsert(ALERTS_TABLE, PARTITION, row_key, properties)

    def delete_rows(self, row_keys: Iterable[str]) -> int:
        count = 0
        for row_key in row_keys:
            self._state.delete(ALERTS_TABLE, PARTITION, row_key)
            count += 1
        return count


def alert_json(alert: Mapping[str, Any]) -> str:
    return orjson.dumps(alert).decode()


def stored_alert(properties: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Alertmanager alert object kept in a row, or None for a row without one."""
    raw = properties.get("alert")
    if not isinstance(raw, str):
        return None
    try:
        alert = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return alert if isinstance(alert, dict) else None
