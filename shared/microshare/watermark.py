"""The forwarder's state of each recType, one entity: the watermark, where the first run started, the last run,
totals per hub and the days that hold dedup records. A run reads it once and conditions each save on what it
read, so nothing is read again unless another run wrote in between.

The watermark is the newest event time delivered to every hub, never the wall clock: an event that some hub did
not get holds it below that event's time, and it only ever moves forward."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.microshare.results import ForwardResult
from shared.readings.reading import format_timestamp, parse_timestamp
from shared.storage.entity_update import KeptChanging, update_entity
from shared.storage.names import FORWARDER_TABLE
from shared.storage.ports import ConcurrencyConflict, Entity, StateStore

STATE_ROW = "state"


@dataclass(slots=True)
class WatermarkProgress:
    """What the watermark may move to: the newest time delivered everywhere below the oldest one that was not."""

    delivered: list[datetime] = field(default_factory=list)
    blocked: datetime | None = None

    def note(self, time: datetime, everywhere: bool) -> None:
        if everywhere:
            self.delivered.append(time)
        elif self.blocked is None or time < self.blocked:
            self.blocked = time

    def watermark(self, old: datetime | None, end: datetime) -> datetime | None:
        safe = [t for t in self.delivered if self.blocked is None or t < self.blocked]
        if not safe:
            return old
        newest = min(max(safe), end)
        return newest if old is None else max(old, newest)


@dataclass(frozen=True, slots=True)
class ForwarderState:
    """One recType's state as this run last read or wrote it."""

    rec_type: str
    watermark: datetime | None
    first_run_from: datetime | None
    dedup_days: frozenset[str]
    entity: Entity | None = field(repr=False)  # what the next save is conditioned on

    @classmethod
    def of(cls, rec_type: str, entity: Entity | None) -> ForwarderState:
        properties = {} if entity is None else entity.properties
        return cls(
            rec_type,
            _moment(properties.get("watermark")),
            _moment(properties.get("first_run_from")),
            frozenset(_days(properties.get("dedup_days"))),
            entity,
        )


class WatermarkStore:
    """Reads and saves ForwarderState; saves re-read and re-apply only when another run wrote in between."""

    def __init__(self, state: StateStore) -> None:
        self._state = state

    def read(self, rec_type: str) -> ForwarderState:
        return ForwarderState.of(rec_type, self._state.get(FORWARDER_TABLE, rec_type, STATE_ROW))

    def start_first_run(self, current: ForwarderState, start: datetime) -> ForwarderState:
        """Note where the first run starts, before it sends anything: the next run starts there too."""
        properties = {"first_run_from": format_timestamp(start)}
        entity = self._state.upsert(FORWARDER_TABLE, current.rec_type, STATE_ROW, properties)
        return ForwarderState.of(current.rec_type, entity)

    def record_run(
        self,
        current: ForwarderState,
        result: ForwardResult,
        watermark: datetime | None,
        now: datetime,
        outcome: str,
        days: set[str],
    ) -> ForwarderState:
        """Save a run: the watermark only moves forward, even if two runs overlap; totals accumulate."""
        rec_type = current.rec_type
        try:
            entity = update_entity(
                self._state,
                FORWARDER_TABLE,
                (rec_type, STATE_ROW),
                lambda stored: _after_run(stored, result, watermark, now, outcome, days),
                known=current.entity,
            )
        except KeptChanging as exhausted:
            raise ConcurrencyConflict(f"forwarder state of {rec_type} kept changing under this run") from exhausted
        return ForwarderState.of(rec_type, entity)

    def drop_days(self, current: ForwarderState, days: set[str]) -> ForwarderState:
        """Stop listing `days` (their dedup records are gone); left listed when the entity keeps changing."""
        try:
            entity = update_entity(
                self._state,
                FORWARDER_TABLE,
                (current.rec_type, STATE_ROW),
                lambda stored: None if stored is None else _without_days(stored, days),
                known=current.entity,
            )
        except KeptChanging:
            # Harmless: the next run finds the days listed, forgets them again (nothing is left to delete)
            # and unlists them then.
            return current
        return ForwarderState.of(current.rec_type, entity)


def _after_run(
    stored: Mapping[str, Any] | None,
    result: ForwardResult,
    watermark: datetime | None,
    now: datetime,
    outcome: str,
    days: set[str],
) -> dict[str, Any]:
    properties = dict(stored or {})
    saved = _moment(properties.get("watermark"))
    if saved is not None:
        watermark = saved if watermark is None else max(watermark, saved)
    properties.setdefault("first_run_from", format_timestamp(result.start))
    properties["dedup_days"] = json.dumps(sorted(_days(properties.get("dedup_days")) | days))
    properties.update(
        watermark=None if watermark is None else format_timestamp(watermark),
        last_run_at=format_timestamp(now),
        last_run_outcome=outcome,
        last_run_from=format_timestamp(result.start),
        last_run_to=format_timestamp(result.end),
        pages_fetched=int(properties.get("pages_fetched", 0)) + result.pages,
        records_fetched=int(properties.get("records_fetched", 0)) + result.records,
        dead_lettered=int(properties.get("dead_lettered", 0)) + result.dead_lettered,
    )
    for hub, totals in result.hubs.items():
        sent_name, skipped_name = f"sent_{_property_suffix(hub)}", f"skipped_{_property_suffix(hub)}"
        properties[sent_name] = int(properties.get(sent_name, 0)) + totals.sent
        properties[skipped_name] = int(properties.get(skipped_name, 0)) + totals.skipped
    return properties


def _without_days(stored: Mapping[str, Any], days: set[str]) -> dict[str, Any]:
    return {**stored, "dedup_days": json.dumps(sorted(_days(stored.get("dedup_days")) - days))}


def _moment(value: object) -> datetime | None:
    return None if not value else parse_timestamp(value)


def _property_suffix(hub: str) -> str:
    """A hub name as part of a Table property name (letters, digits and '_' only)."""
    return "".join(c if c.isalnum() else "_" for c in hub)


def _days(stored: object) -> set[str]:
    if not isinstance(stored, str) or not stored:
        return set()
    try:
        days = json.loads(stored)
    except ValueError:
        return set()
    return {day for day in days if isinstance(day, str)} if isinstance(days, list) else set()
