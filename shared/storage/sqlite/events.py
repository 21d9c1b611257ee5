"""Embedded event hub: partitioned, append-only event logs with consumer-group checkpoints, in SQLite."""

from __future__ import annotations

import itertools
import json
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.storage.ports import MAX_EVENT_BYTES, OutboundEvent, PublishOutcome
from shared.storage.sqlite.database import SqliteDatabase

DEFAULT_PARTITIONS = 4


@dataclass(frozen=True, slots=True)
class HubEvent:
    partition: int
    sequence_number: int
    enqueued_time: float
    body: bytes
    partition_key: str | None
    properties: dict[str, Any]


class SqliteEventHub:
    """Events with the same partition key land in the same partition, in order, as on Event Hubs;
    events without one are spread round-robin."""

    def __init__(
        self, database: SqliteDatabase, partitions: int = DEFAULT_PARTITIONS, max_event_bytes: int = MAX_EVENT_BYTES
    ) -> None:
        self._db = database
        self.partitions = partitions
        self.max_event_bytes = max_event_bytes
        self._round_robin = itertools.cycle(range(partitions))

    def check(self, hub: str) -> None:
        """Readiness: the embedded database (which holds every hub) answers."""
        self._db.check()

    def _partition_for(self, event: OutboundEvent) -> int:
        if event.partition_key is None:
            return next(self._round_robin)
        return zlib.crc32(event.partition_key.encode()) % self.partitions

    def publish(self, hub: str, events: Sequence[OutboundEvent]) -> PublishOutcome:
        """Store the events that fit; one bigger than the hub's limit is returned in too_large, as Event Hubs
        would refuse it, so that code which works here does not meet its first oversize event in Azure."""
        fitting: list[OutboundEvent] = []
        too_large: list[OutboundEvent] = []
        for event in events:
            (fitting if _event_bytes(event) <= self.max_event_bytes else too_large).append(event)
        if not fitting:
            return PublishOutcome(0, too_large)
        now = time.time()
        with self._db.transaction() as conn:
            next_seq: dict[int, int] = {}
            rows = []
            for event in fitting:
                partition = self._partition_for(event)
                if partition not in next_seq:
                    (last,) = conn.execute(
                        "SELECT COALESCE(MAX(seq), -1) FROM hub_events WHERE hub = ? AND partition = ?",
                        (hub, partition),
                    ).fetchone()
                    next_seq[partition] = last + 1
                seq = next_seq[partition]
                next_seq[partition] = seq + 1
                props = json.dumps(dict(event.properties))
                rows.append((hub, partition, seq, event.body, event.partition_key, props, now))
            conn.executemany(
                "INSERT INTO hub_events (hub, partition, seq, body, partition_key, properties, enqueued) "
                "VALUES (?,?,?,?,?,?,?)",
                rows,
            )
        return PublishOutcome(len(fitting), too_large)

    def receive(self, hub: str, partition: int, after_sequence: int | None, max_events: int) -> list[HubEvent]:
        after = -1 if after_sequence is None else after_sequence
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT seq, enqueued, body, partition_key, properties FROM hub_events "
                "WHERE hub = ? AND partition = ? AND seq > ? ORDER BY seq LIMIT ?",
                (hub, partition, after, max_events),
            ).fetchall()
        return [
            HubEvent(partition, seq, enqueued, bytes(body), key, json.loads(props))
            for seq, enqueued, body, key, props in rows
        ]

    def checkpoint(self, hub: str, consumer_group: str, partition: int) -> int | None:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT seq FROM hub_checkpoints WHERE hub = ? AND consumer_group = ? AND partition = ?",
                (hub, consumer_group, partition),
            ).fetchone()
        return None if row is None else int(row[0])

    def set_checkpoint(self, hub: str, consumer_group: str, partition: int, sequence_number: int) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO hub_checkpoints (hub, consumer_group, partition, seq) VALUES (?,?,?,?) "
                "ON CONFLICT (hub, consumer_group, partition) DO UPDATE SET seq = excluded.seq",
                (hub, consumer_group, partition, sequence_number),
            )


def _event_bytes(event: OutboundEvent) -> int:
    """Body plus application properties: the part of an event's size the sender controls."""
    return len(event.body) + sum(len(k.encode()) + len(v.encode()) for k, v in event.properties.items())
