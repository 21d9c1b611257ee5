"""Devices seen on the telemetry hub: first and last seen, how many deliveries, and by which route.

One entity per device in Table Storage, written with the same discipline as the summariser's windows: per
batch, one conditional write per device (insert-only for a new one, If-Match for a known one), cached
etags so a steady stream needs no reads, and a conflict answered by re-reading and re-merging.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from shared.ops.log_context import app_logger
from shared.readings.reading import format_timestamp
from shared.storage.names import DEVICES_TABLE
from shared.storage.ports import ConcurrencyConflict, EntityWrite, StateStore, StorageError

logger = app_logger(__name__)

DeviceSource = Literal["iothub", "microshare"]
DEVICE_PARTITION = "device"  # one partition: the table is small and listed whole
MAX_CONFLICT_ROUNDS = 8
# Table keys forbid / \ # ? and control characters and stop at 1 KiB; '%' and quotes trip some tools. Ids
# outside this conservative set get a digest key; '~' is outside it, so a digest key never equals a plain id.
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@=+-]{0,255}$")
_DIGEST_PREFIX = "~"


class Sighting(NamedTuple):
    device_id: str
    source: DeviceSource
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    source: str
    first_seen: datetime
    last_seen: datetime
    count: int

    def to_document(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "source": self.source,
            "first_seen": format_timestamp(self.first_seen),
            "last_seen": format_timestamp(self.last_seen),
            "count": self.count,
        }


def device_key(device_id: str) -> str:
    """The row key of a device: its id when Table Storage takes it as it is, else a digest of it."""
    if _PLAIN_KEY.match(device_id):
        return device_id
    return _DIGEST_PREFIX + hashlib.sha256(device_id.encode("utf-8", errors="surrogatepass")).hexdigest()


def _aware(moment: datetime) -> datetime:
    """UTC, to the millisecond: what the entity stores, so the cached copy equals the stored one."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _one_delivery(sighting: Sighting) -> Device:
    seen_at = _aware(sighting.seen_at)
    return Device(sighting.device_id, sighting.source, seen_at, seen_at, 1)


def _combine(stored: Device | None, batch: Device) -> Device:
    """Both tallies as one: the earliest first sighting, the latest last one and its source, the counts added."""
    if stored is None:
        return batch
    return Device(
        stored.device_id,
        batch.source if batch.last_seen >= stored.last_seen else stored.source,
        min(stored.first_seen, batch.first_seen),
        max(stored.last_seen, batch.last_seen),
        stored.count + batch.count,
    )


def _from_properties(properties: dict[str, Any]) -> Device:
    return Device(
        device_id=str(properties["device_id"]),
        source=str(properties.get("source", "")),
        first_seen=_aware(datetime.fromisoformat(str(properties["first_seen"]))),
        last_seen=_aware(datetime.fromisoformat(str(properties["last_seen"]))),
        count=int(properties.get("count", 0)),
    )


@dataclass(slots=True)
class _Known:
    device: Device | None
    etag: str | None


class DeviceRegistry:
    """One per process. The count is of deliveries seen, not of distinct events: a batch the trigger
    redelivers (after a failure, or a restart before its checkpoint) counts its events again."""

    def __init__(self, state: StateStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._state = state
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()

    def record(self, sightings: Iterable[Sighting]) -> int:
        """Add a batch of sightings: one conditional write per device; returns how many devices changed."""
        tallies: dict[str, Device] = {}
        for sighting in sightings:
            key = device_key(sighting.device_id)
            tallies[key] = _combine(tallies.get(key), _one_delivery(sighting))
        if not tallies:
            return 0
        with self._lock:
            pending = tallies
            for _ in range(MAX_CONFLICT_ROUNDS):
                conflicts = self._write_round(pending)
                if not conflicts:
                    return len(tallies)
                pending = {key: tallies[key] for key in conflicts}
            raise StorageError(f"{len(pending)} device entities kept changing; the batch will be retried")

    def list(self) -> list[Device]:
        """Every device, the most recently seen first."""
        devices = [_from_properties(entity.properties) for entity in self._state.query(DEVICES_TABLE)]
        return sorted(devices, key=lambda d: (d.last_seen, d.device_id), reverse=True)

    def _known_device(self, key: str) -> _Known:
        known = self._known.get(key)
        if known is None:
            entity = self._state.get(DEVICES_TABLE, DEVICE_PARTITION, key)
            known = _Known(None, None) if entity is None else _Known(_from_properties(entity.properties), entity.etag)
        return known

    def _write_round(self, pending: dict[str, Device]) -> set[str]:
        """Merge each tally into the known entity and write them all; returns the keys that changed under us."""
        updated_at = format_timestamp(self._clock())
        merged: list[tuple[str, Device]] = []
        writes: list[EntityWrite] = []
        for key, tally in pending.items():
            known = self._known_device(key)
            device = _combine(known.device, tally)
            merged.append((key, device))
            writes.append(
                EntityWrite(DEVICE_PARTITION, key, {**device.to_document(), "updated_at": updated_at}, known.etag)
            )
        conflicts: set[str] = set()
        for (key, device), result in zip(merged, self._state.write_many(DEVICES_TABLE, writes), strict=True):
            if isinstance(result, ConcurrencyConflict):
                self._known.pop(key, None)  # re-read on the next round; nothing of ours was written
                conflicts.add(key)
            else:
                self._known[key] = _Known(device, result.etag)
        if conflicts:
            logger.info("device entities changed under us for %d devices; re-merging", len(conflicts))
        return conflicts
