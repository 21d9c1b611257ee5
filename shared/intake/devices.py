"""Devices seen on the telemetry hub: first and last seen, how many deliveries, and by which route.

One entity per device in Table Storage, written with the same discipline as the summariser's windows: per
batch, one conditional write per device (insert-only for a new one, If-Match for a known one), cached
etags so a steady stream needs no reads, and a conflict answered by re-reading and re-merging.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from shared.ops.log_context import app_logger
from shared.readings.reading import format_timestamp
from shared.storage.entity_update import Change, EntityKey, KeptChanging, update_entities
from shared.storage.names import DEVICES_TABLE
from shared.storage.ports import Entity, StateStore, StorageError

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


def _from_properties(properties: Mapping[str, Any]) -> Device:
    return Device(
        device_id=str(properties["device_id"]),
        source=str(properties.get("source", "")),
        first_seen=_aware(datetime.fromisoformat(str(properties["first_seen"]))),
        last_seen=_aware(datetime.fromisoformat(str(properties["last_seen"]))),
        count=int(properties.get("count", 0)),
    )


class DeviceRegistry:
    """One per process. The count is of deliveries seen, not of distinct events: a batch the trigger
    redelivers (after a failure, or a restart before its checkpoint) counts its events again."""

    def __init__(self, state: StateStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._state = state
        self._clock = clock
        self._known: dict[EntityKey, Entity] = {}  # as this process last wrote them
        self._lock = threading.Lock()

    def record(self, sightings: Iterable[Sighting]) -> int:
        """Add a batch of sightings: one conditional write per device; returns how many devices changed."""
        tallies: dict[EntityKey, Device] = {}
        for sighting in sightings:
            key = (DEVICE_PARTITION, device_key(sighting.device_id))
            tallies[key] = _combine(tallies.get(key), _one_delivery(sighting))
        if not tallies:
            return 0
        updated_at = format_timestamp(self._clock())
        changes = {key: _merge_into(tally, updated_at) for key, tally in tallies.items()}
        with self._lock:
            known = {key: self._known[key] for key in tallies if key in self._known}
            try:
                written = update_entities(
                    self._state,
                    DEVICES_TABLE,
                    changes,
                    known=known,
                    rounds=MAX_CONFLICT_ROUNDS,
                    on_conflict=_re_merging,
                )
            except KeptChanging as exhausted:
                for key in tallies:
                    self._known.pop(key, None)  # some may have been written: read them all next time
                raise StorageError(
                    f"{len(exhausted.keys)} device entities kept changing; the batch will be retried"
                ) from exhausted
            self._known.update((key, entity) for key, entity in written.items() if entity is not None)
        return len(tallies)

    def list(self) -> list[Device]:
        """Every device, the most recently seen first."""
        devices = [_from_properties(entity.properties) for entity in self._state.query(DEVICES_TABLE)]
        return sorted(devices, key=lambda d: (d.last_seen, d.device_id), reverse=True)


def _re_merging(keys: Collection[EntityKey]) -> None:
    logger.info("device entities changed under us for %d devices; re-merging", len(keys))


def _merge_into(tally: Device, updated_at: str) -> Change:
    def merged(stored: Mapping[str, Any] | None) -> Mapping[str, Any]:
        device = _combine(None if stored is None else _from_properties(stored), tally)
        return {**device.to_document(), "updated_at": updated_at}

    return merged
