"""Microshare records as the events the hubs receive, each with its dedup key and event time. No I/O."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.microshare.api import HOURLY_SNAPSHOT, PEOPLE_COUNTER
from shared.readings.reading import InvalidReading, format_timestamp, parse_timestamp
from shared.storage.ports import OutboundEvent

if TYPE_CHECKING:
    from shared.microshare.client import Page


class InvalidRecord(ValueError):
    """A Microshare record or answer that cannot become an event; `reason` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Candidate:
    """An event to deliver, with its dedup key and the event time the watermark moves by."""

    key: str
    time: datetime
    event: OutboundEvent


def _event_time(value: object) -> datetime:
    try:
        return parse_timestamp(value)
    except InvalidReading as bad:
        raise InvalidRecord(bad.reason) from None


def _digest(value: object) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256-" + hashlib.sha256(canonical.encode("utf-8", errors="surrogatepass")).hexdigest()


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def people_counter_event(record: object, location: str) -> Candidate:
    """One people-counter record as one flattened event with its location tags; InvalidRecord says why not."""
    if not isinstance(record, dict):
        raise InvalidRecord("record is not a JSON object")
    data = record.get("data")
    if not isinstance(data, dict):
        raise InvalidRecord("record has no data object")
    if "time" not in data or data["time"] is None:
        raise InvalidRecord("record has no time")
    time = _event_time(data["time"])
    for name in ("change", "daily_total", "device"):
        if name in data and not isinstance(data[name], dict):
            raise InvalidRecord(f"data.{name} must be an object")
    current = data.get("current")
    if current is not None and (isinstance(current, bool) or not isinstance(current, int | float | dict)):
        raise InvalidRecord("data.current must be a number or an object")
    meta = data.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise InvalidRecord("data.meta must be an object")
    tags = (meta or {}).get("device")
    if tags is None:
        tags = [location]
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise InvalidRecord("data.meta.device must be a list of location names")
    record_id = record.get("id") or record.get("_id")
    key = record_id if isinstance(record_id, str) and record_id else _digest(record)
    body = {
        "recType": PEOPLE_COUNTER,
        "record": key,
        "time": format_timestamp(time),
        "change": data.get("change"),
        "daily_total": data.get("daily_total"),
        "current": current,
        "device": data.get("device"),
        "meta": meta,
        "_location_tags": tags,
    }
    properties = {"recType": PEOPLE_COUNTER, "location": location}
    return Candidate(key, time, OutboundEvent(_encode(body), partition_key=location, properties=properties))


def snapshot_event(location: str, start: datetime, end: datetime, pages: list[Page]) -> Candidate | None:
    """One location's hourly-snapshot answer, sent whole; None when it holds no line at all.

    The dedup key digests the location, the window and the data (not the paging meta, which varies between
    identical answers), so the overlap re-fetching an hour sends nothing, while an hour whose data changed
    afterwards (late records) is sent again as the corrected answer."""
    objs = [obj for page in pages for obj in page.objs]
    times: list[datetime] = []
    for obj in objs:
        lines = obj.get("data", {}).get("line") if isinstance(obj, dict) and isinstance(obj.get("data"), dict) else None
        if not isinstance(lines, list):
            raise InvalidRecord("snapshot answer object has no data.line list")
        for line in lines:
            if not isinstance(line, dict):
                raise InvalidRecord("snapshot line is not an object")
            times.append(_event_time(line.get("time")))
    if not times:
        return None
    window = {"location": location, "from": format_timestamp(start), "to": format_timestamp(end)}
    body = {
        "recType": HOURLY_SNAPSHOT,
        **window,
        "meta": {"totalPages": len(pages), "currentCount": len(objs), "totalCount": len(objs)},
        "objs": objs,
    }
    properties = {"recType": HOURLY_SNAPSHOT, "location": location}
    event = OutboundEvent(_encode(body), partition_key=location, properties=properties)
    return Candidate(_digest({**window, "objs": objs}), max(times), event)
