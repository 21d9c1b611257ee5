"""The data the Microshare stand-in serves: people-counter records, hourly snapshot lines and device clusters.

Records are kept as given (tests load malformed ones on purpose) and indexed per (recType, loc1) in lists
sorted by (time, id), so a page of a dashboard-view query costs a bisect and a slice, not a scan: a client
fetching a hundred pages of 999 records should spend its time on its own side. A record whose time or
location cannot be read is still served, so the forwarder meets it: without a readable `data.time` it is
returned by every query of its building, and without a readable `data.meta.device[0]` by every building.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import heapq
import math
import random
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.microshare.api import DEVICE_CLUSTER, PEOPLE_COUNTER

DEFAULT_OWNER_ORG = "Sensor Pulse Demo"
DEFAULT_CLUSTER_ID = "sensor-pulse-cluster"
DEFAULT_LOCATIONS = ("Building A", "Building B", "Building C")
INTERVAL = timedelta(minutes=15)

# People per device and 15-minute interval on a weekday, by UTC hour: arrivals peak in the morning and after
# lunch, departures at lunch and in the evening. Weekends see a fraction of it.
# fmt: off
_ARRIVALS = (0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.4, 2.0, 6.0, 5.0, 2.0, 1.5,
             3.0, 4.0, 1.5, 1.0, 1.0, 0.8, 0.5, 0.3, 0.2, 0.1, 0.1, 0.05)
_DEPARTURES = (0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.5, 0.8, 1.0, 1.5,
               4.0, 2.0, 1.0, 1.5, 4.0, 6.0, 3.0, 1.5, 1.0, 0.8, 0.5, 0.3)
# fmt: on
_WEEKEND_SHARE = 0.15
_EVENING_DRAIN = 0.3  # share of the people still inside who leave per interval after 18:00


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and Z, as the API writes times (and wants `from`/`to`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(value: object) -> datetime | None:
    """A record's time, or None when it is missing or unreadable (the record is then served untimed)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def record_time(record: object) -> datetime | None:
    data = record.get("data") if isinstance(record, dict) else None
    return parse_time(data.get("time")) if isinstance(data, dict) else None


def record_location(record: object) -> list[str] | None:
    """`data.meta.device`: the location list, when it is a non-empty list of strings."""
    data = record.get("data") if isinstance(record, dict) else None
    meta = data.get("meta") if isinstance(data, dict) else None
    location = meta.get("device") if isinstance(meta, dict) else None
    if isinstance(location, list) and location and all(isinstance(part, str) for part in location):
        return list(location)
    return None


def record_device_id(record: object) -> str | None:
    data = record.get("data") if isinstance(record, dict) else None
    device = data.get("device") if isinstance(data, dict) else None
    device_id = device.get("id") if isinstance(device, dict) else None
    return device_id if isinstance(device_id, str) else None


def _record_id(record: object) -> str:
    value = record.get("id") if isinstance(record, dict) else None
    return "" if value is None else str(value)


def _record_type(record: object) -> str:
    """A record without a readable recType is taken for a people-counter record: that is all the dataset holds."""
    value = record.get("recType") if isinstance(record, dict) else None
    return value if isinstance(value, str) else PEOPLE_COUNTER


@dataclass(frozen=True, slots=True)
class ClusterDevice:
    id: str
    location: tuple[str, ...]
    status: str = "online"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "meta": {"location": list(self.location)}, "status": self.status}


@dataclass(frozen=True, slots=True)
class DeviceCluster:
    """A device cluster as GET /device/{recType}/{clusterId} lists it; devices only with details=true."""

    id: str
    owner_org: str
    devices: tuple[ClusterDevice, ...] = ()
    rec_type: str = DEVICE_CLUSTER

    def to_json(self, details: bool) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.id}
        if details:
            data["devices"] = [device.to_json() for device in self.devices]
        return {"id": self.id, "recType": self.rec_type, "owner": {"org": self.owner_org}, "data": data}


# (time, id, insertion number, record): the insertion number keeps equal (time, id) pairs in load order and
# spares the sort from comparing records.
_Entry = tuple[datetime, str, int, Any]


def _entry_time(entry: _Entry) -> datetime:
    return entry[0]


@dataclass(slots=True)
class _Bucket:
    """The records of one (recType, loc1): timed ones sorted on demand, untimed ones in load order."""

    timed: list[_Entry] = field(default_factory=list)
    untimed: list[Any] = field(default_factory=list)
    unsorted: bool = False

    def add(self, entry: _Entry) -> None:
        if self.timed and not self.unsorted and entry[:3] < self.timed[-1][:3]:
            self.unsorted = True
        self.timed.append(entry)

    def between(self, start: datetime, end: datetime) -> tuple[int, int]:
        if self.unsorted:
            self.timed.sort(key=lambda entry: entry[:3])
            self.unsorted = False
        if end <= start:
            return 0, 0
        low = bisect.bisect_left(self.timed, start, key=_entry_time)
        return low, bisect.bisect_left(self.timed, end, lo=low, key=_entry_time)


class MicroshareDataset:
    """People-counter records, hourly snapshot lines per building, and the device clusters naming the devices.

    The main cluster (`cluster_id`, owned by `owner_org`) lists the distinct devices found in the records;
    `extra_clusters` are answered alongside it, so a client's filter on the owning organisation can be tested.
    """

    def __init__(
        self,
        *,
        owner_org: str = DEFAULT_OWNER_ORG,
        cluster_id: str = DEFAULT_CLUSTER_ID,
        extra_clusters: Sequence[DeviceCluster] = (),
    ) -> None:
        self.owner_org = owner_org
        self.cluster_id = cluster_id
        self.extra_clusters = tuple(extra_clusters)
        self._lock = threading.RLock()
        self._buckets: dict[tuple[str, str | None], _Bucket] = {}
        self._lines: dict[str, list[tuple[datetime | None, int, dict[str, Any]]]] = {}
        self._devices: dict[str, tuple[str, ...]] = {}
        self._count = 0

    @classmethod
    def synthetic(
        cls,
        start: datetime,
        end: datetime,
        locations: Sequence[str] = DEFAULT_LOCATIONS,
        devices_per_location: int = 4,
        seed: int = 7,
        *,
        owner_org: str = DEFAULT_OWNER_ORG,
        cluster_id: str = DEFAULT_CLUSTER_ID,
        extra_clusters: Sequence[DeviceCluster] = (),
    ) -> MicroshareDataset:
        """One record per device and 15-minute interval in [start, end); the same arguments give the same data."""
        dataset = cls(owner_org=owner_org, cluster_id=cluster_id, extra_clusters=extra_clusters)
        rng = random.Random(seed)
        devices = [
            (
                building,
                f"pc-{b * 100 + k + 1:04d}",
                [building, f"Floor {k // 4 + 1}", f"Zone {chr(65 + k % 4)}", f"Spot {k + 1}"],
            )
            for b, building in enumerate(locations)
            for k in range(devices_per_location)
        ]
        current = {device_id: 0 for _, device_id, _ in devices}
        daily = {device_id: [0, 0] for _, device_id, _ in devices}
        moment = _ceil_to_interval(start.astimezone(UTC))
        day = moment.date()
        records: list[dict[str, Any]] = []
        lines: dict[str, list[dict[str, Any]]] = {building: [] for building in locations}
        while moment < end:
            if moment.date() != day:
                day = moment.date()
                daily = {device_id: [0, 0] for device_id in daily}
            stamp = format_time(moment)
            if moment.minute == 0:
                for building in locations:
                    occupancy = sum(current[device_id] for place, device_id, _ in devices if place == building)
                    lines[building].append({"time": stamp, "current": occupancy})
            share = _WEEKEND_SHARE if moment.weekday() >= 5 else 1.0
            hour = moment.hour
            arrivals, departures = _ARRIVALS[hour], _DEPARTURES[hour]
            age_days = (moment - start).total_seconds() / 86400
            for _, device_id, location in devices:
                came = _draw(rng, arrivals * share)
                left = _draw(rng, departures * share)
                if hour >= 18:
                    left += round(current[device_id] * _EVENING_DRAIN)
                left = min(left, current[device_id] + came)  # nobody leaves who is not inside
                current[device_id] = max(0, current[device_id] + came - left)
                totals = daily[device_id]
                totals[0] += came
                totals[1] += left
                record_id = hashlib.sha256(f"{device_id}|{stamp}".encode()).hexdigest()[:24]
                records.append(
                    {
                        "id": record_id,
                        "_id": record_id,
                        "recType": PEOPLE_COUNTER,
                        "data": {
                            "time": stamp,
                            "change": {"in": came, "out": left, "count": came - left, "traffic": came + left},
                            "daily_total": {
                                "in": totals[0],
                                "out": totals[1],
                                "count": totals[0] - totals[1],
                                "traffic": totals[0] + totals[1],
                            },
                            "current": current[device_id],
                            "device": {"id": device_id, "battery": round(3.6 - 0.002 * age_days, 3), "alerts": []},
                            "meta": {
                                "device": list(location),
                                "iot": {
                                    "rssi": rng.randint(-105, -70),
                                    "snr": round(rng.uniform(-5.0, 10.0), 1),
                                    "fport": 20,
                                },
                            },
                        },
                    }
                )
            moment += INTERVAL
        dataset._add(records)
        for building, building_lines in lines.items():
            dataset.add_snapshot_lines(building, building_lines)
        return dataset

    def __len__(self) -> int:
        return self._count

    def add_records(self, records: Iterable[object]) -> int:
        """Loads records exactly as given (copied, never corrected); answers how many were added."""
        return self._add([copy.deepcopy(record) for record in records])

    def _add(self, records: Sequence[object]) -> int:
        with self._lock:
            for record in records:
                location = record_location(record)
                loc1 = location[0] if location else None
                bucket = self._buckets.setdefault((_record_type(record), loc1), _Bucket())
                moment = record_time(record)
                if moment is None:
                    bucket.untimed.append(record)
                else:
                    bucket.add((moment, _record_id(record), self._count, record))
                device_id = record_device_id(record)
                if device_id is not None and location is not None:
                    self._devices[device_id] = tuple(location)
                self._count += 1
        return len(records)

    def add_snapshot_lines(self, location: str, lines: Iterable[Mapping[str, Any]]) -> None:
        """Hourly `{"time", "current"}` lines for one building, kept as given and served in time order."""
        with self._lock:
            kept = self._lines.setdefault(location, [])
            for line in lines:
                kept.append((parse_time(line.get("time")), len(kept), dict(line)))
            # Lines without a readable time go first, as they would sort in the API (null before any date).
            kept.sort(key=lambda item: (item[0] is not None, item[0] or datetime.min.replace(tzinfo=UTC), item[1]))

    def query(
        self, rec_type: str, loc1: str, start: datetime, end: datetime, offset: int, limit: int
    ) -> tuple[int, list[Any]]:
        """(how many records match, the `limit` of them from `offset`), in (time, id) order.

        Records with start <= time < end in the building, after the ones without a readable time (returned
        by every query of their building, or of every building when they have no location either).
        """
        with self._lock:
            own = self._buckets.get((rec_type, loc1), _Bucket())
            anywhere = self._buckets.get((rec_type, None), _Bucket())
            untimed = own.untimed + anywhere.untimed
            own_low, own_high = own.between(start, end)
            any_low, any_high = anywhere.between(start, end)
            total = len(untimed) + (own_high - own_low) + (any_high - any_low)
            stop = offset + max(0, limit)
            page = untimed[offset:stop]
            if len(page) < stop - offset:
                skip = max(0, offset - len(untimed))
                wanted = stop - offset - len(page)
                if any_high == any_low:  # the usual case: a slice, not a merge
                    timed = own.timed[own_low + skip : min(own_high, own_low + skip + wanted)]
                else:  # records with a time but no location join every building's answer
                    merged = heapq.merge(
                        own.timed[own_low:own_high], anywhere.timed[any_low:any_high], key=lambda e: e[:3]
                    )
                    timed = list(merged)[skip : skip + wanted]
                page = page + [entry[3] for entry in timed]
            return total, page

    def snapshot_lines(self, location: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The building's lines with start <= time < end, and those without a readable time."""
        with self._lock:
            return [
                dict(line)
                for moment, _, line in self._lines.get(location, [])
                if moment is None or start <= moment < end
            ]

    def locations(self) -> list[str]:
        """The distinct buildings (loc1) of the devices, as a client derives them from the cluster."""
        with self._lock:
            return sorted({location[0] for location in self._devices.values()})

    def devices(self) -> tuple[ClusterDevice, ...]:
        with self._lock:
            return tuple(ClusterDevice(device_id, location) for device_id, location in sorted(self._devices.items()))

    def clusters(self) -> list[DeviceCluster]:
        """The main cluster, with the devices found in the records, then the extra clusters."""
        return [DeviceCluster(self.cluster_id, self.owner_org, self.devices()), *self.extra_clusters]


def _ceil_to_interval(moment: datetime) -> datetime:
    floor = moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)
    return floor if floor == moment else floor + INTERVAL


def _draw(rng: random.Random, mean: float) -> int:
    """A non-negative count around `mean`, with a spread like a Poisson count's."""
    if mean <= 0:
        return 0
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))
