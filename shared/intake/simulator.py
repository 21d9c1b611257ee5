"""Simulated temperature sensors: irregular emissions, each with a deterministic id.

Each sensor keeps a cursor (sequence number, next emission time, last value) in the state store. An
invocation emits every reading due up to `now`, writes them, then advances the cursor with If-Match. A
retried invocation starts from the same cursor and so re-writes the very same documents.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.ops.log_context import app_logger
from shared.ops.metrics import PipelineMetrics
from shared.readings.reading import Reading, epoch_ms, from_epoch_ms
from shared.readings.rules import DEFAULT_METRICS
from shared.storage.names import READINGS, SIMULATOR_TABLE
from shared.storage.ports import ConcurrencyConflict, DocumentStore, EntityWrite, StateStore

logger = app_logger(__name__)

METRIC = "temperature"
UNIT = DEFAULT_METRICS[METRIC].unit
SOURCE = "simulator"
MIN_C, MAX_C = 15.0, 40.0  # a room's range, well inside the metric's bounds: the reading rules hold for each
MIN_GAP_MS, MAX_GAP_MS = 1_000, 10_000
# After a long stop the sensors resume "now" rather than replaying hours of backlog. The skip moves in
# whole minutes so that a retry within the same minute computes the same timestamps.
MAX_CATCH_UP_MS = 60_000
_CURSOR_PARTITION = "sensors"
_ID_NAMESPACE = uuid.UUID("6f1c2a4e-4b8e-4d65-9f57-3c6b9d0e2a11")


def sensor_ids(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"sensor-{n:0{width}d}" for n in range(1, count + 1)]


@dataclass(frozen=True, slots=True)
class SensorCursor:
    sensor_id: str
    epoch_ms: int
    sequence: int
    next_ms: int
    value: float

    def to_properties(self) -> dict[str, object]:
        return {
            "epoch_ms": self.epoch_ms,
            "sequence": self.sequence,
            "next_ms": self.next_ms,
            "value": self.value,
        }


def _rng(cursor: SensorCursor) -> random.Random:
    # String seeds are hashed with SHA-512 by `random`, so the stream is the same in every process.
    return random.Random(f"{cursor.sensor_id}:{cursor.epoch_ms}:{cursor.sequence}")


def first_cursor(sensor_id: str, now_ms: int) -> SensorCursor:
    start = random.Random(f"{sensor_id}:{now_ms}").uniform(20.0, 30.0)
    return SensorCursor(sensor_id, now_ms, 0, now_ms, round(start, 2))


def emit_due(cursor: SensorCursor, now_ms: int) -> tuple[list[Reading], SensorCursor]:
    """Every emission of one sensor due at or before now_ms, and the cursor after them."""
    if now_ms - cursor.next_ms > MAX_CATCH_UP_MS:
        minutes = (now_ms - cursor.next_ms - MAX_CATCH_UP_MS) // 60_000 + 1
        cursor = SensorCursor(
            cursor.sensor_id,
            cursor.epoch_ms,
            cursor.sequence,
            cursor.next_ms + minutes * 60_000,
            cursor.value,
        )
    readings: list[Reading] = []
    while cursor.next_ms <= now_ms:
        rng = _rng(cursor)
        # A mean-reverting walk looks like a room, and stays inside the 15-40 °C band.
        value = cursor.value + rng.gauss(0.0, 0.6) + 0.05 * (27.5 - cursor.value)
        value = round(min(MAX_C, max(MIN_C, value)), 2)
        reading_id = str(uuid.uuid5(_ID_NAMESPACE, f"{cursor.sensor_id}:{cursor.epoch_ms}:{cursor.sequence}"))
        readings.append(
            Reading(
                id=reading_id,
                sensor_id=cursor.sensor_id,
                metric=METRIC,
                value=value,
                unit=UNIT,
                timestamp=from_epoch_ms(cursor.next_ms),
                source=SOURCE,
            )
        )
        gap = rng.randint(MIN_GAP_MS, MAX_GAP_MS)
        cursor = SensorCursor(cursor.sensor_id, cursor.epoch_ms, cursor.sequence + 1, cursor.next_ms + gap, value)
    return readings, cursor


class SensorSimulator:
    def __init__(
        self,
        documents: DocumentStore,
        state: StateStore,
        reading_ttl_seconds: int = 0,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self._documents = documents
        self._state = state
        self._ttl = reading_ttl_seconds
        self._metrics = metrics

    def simulate(self, sensor_count: int, now: datetime) -> list[Reading]:
        """The simulator timer: every reading due from the first `sensor_count` sensors, counted and logged."""
        readings = self.run(sensor_ids(sensor_count), now)
        if self._metrics is not None:
            self._metrics.readings_simulated.inc(len(readings))
        logger.info("simulated %d readings", len(readings), extra={"event": "simulated", "readings": len(readings)})
        return readings

    def run(self, sensors: Sequence[str], now: datetime) -> list[Reading]:
        """Emit and store every reading due; returns them."""
        now_ms = epoch_ms(now)
        stored = {e.row_key: e for e in self._state.query(SIMULATOR_TABLE, _CURSOR_PARTITION)}
        emitted: list[Reading] = []
        writes: list[EntityWrite] = []
        for sensor_id in sensors:
            entity = stored.get(sensor_id)
            if entity is None:
                cursor = first_cursor(sensor_id, now_ms)
            else:
                p = entity.properties
                cursor = SensorCursor(
                    sensor_id, int(p["epoch_ms"]), int(p["sequence"]), int(p["next_ms"]), float(p["value"])
                )
            readings, advanced = emit_due(cursor, now_ms)
            emitted.extend(readings)
            writes.append(
                EntityWrite(
                    _CURSOR_PARTITION,
                    sensor_id,
                    advanced.to_properties(),
                    None if entity is None else entity.etag,
                )
            )
        # Readings first, cursors second: a failure in between makes the retry write the same readings again.
        self._documents.upsert_many(READINGS, [r.to_document(self._ttl) for r in emitted])
        results = self._state.write_many(SIMULATOR_TABLE, writes)
        raced = sum(isinstance(r, ConcurrencyConflict) for r in results)
        if raced:
            logger.info("%d sensor cursors were advanced by a concurrent run; they continue next time", raced)
        return emitted
