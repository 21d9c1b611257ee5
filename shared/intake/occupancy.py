"""Microshare people-counter events as occupancy readings: one `people_count` series per location.

Pure: no I/O. The forwarder sends one people-counter record per event (see shared/microshare/api.py); each
becomes a reading document for the summariser, or a dead letter saying why it cannot.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.readings.dead_letters import DeadLetter
from shared.readings.reading import format_timestamp
from shared.readings.rules import DEFAULT_METRICS, SENSOR_ID_MAX_LENGTH, BrokenRule, check_timestamp, check_value

METRIC = "people_count"
UNIT = DEFAULT_METRICS[METRIC].unit
READING_SOURCE = "microshare"
_DIGEST_CHARS = 12
_WHITESPACE = re.compile(r"\s+")
_NOT_KEPT = re.compile(r"[^A-Za-z0-9_-]")
_REPEATED_DASH = re.compile(r"-{2,}")


class NotAReading(ValueError):
    """A people-counter event that cannot become a reading; the message is the dead letter's reason."""


def _slug(tag: str) -> str:
    # Accents are dropped rather than the letter ("Bâtiment" → "Batiment"); anything else that is not a letter,
    # digit, '-' or '_' goes, so the result always matches the sensor id pattern.
    ascii_only = unicodedata.normalize("NFKD", tag).encode("ascii", "ignore").decode("ascii")
    kept = _NOT_KEPT.sub("", _WHITESPACE.sub("-", ascii_only.strip()))
    return _REPEATED_DASH.sub("-", kept).strip("-_")


def location_tags(event: Mapping[str, Any]) -> list[str]:
    """The event's location, outermost first: `_location_tags`, else the device's `meta.device`."""
    tags = event.get("_location_tags")
    if not tags:
        meta = event.get("meta")
        tags = meta.get("device") if isinstance(meta, Mapping) else None
    if not tags:
        raise NotAReading("people-counter event has no location tags")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise NotAReading("people-counter location tags are not a list of strings")
    return tags


def location_sensor_id(tags: Sequence[str]) -> str:
    """The series of a location: its tags slugged and joined with '.', e.g. "Building-A.Floor-2.Zone-3".

    Ids longer than 64 characters keep a prefix and end in ':' and a digest of the tags; slugs never contain
    ':', so a shortened id cannot equal another location's full one, and two long names sharing a prefix
    differ by their digest. Tags that differ only in dropped characters ("Zone 3" and "Zone 3!") share a
    series."""
    parts = [slug for slug in (_slug(tag) for tag in tags) if slug]
    if not parts:
        raise NotAReading("people-counter location tags have no letters or digits")
    sensor_id = ".".join(parts)
    if len(sensor_id) <= SENSOR_ID_MAX_LENGTH:
        return sensor_id
    digest = hashlib.sha256(json.dumps(list(tags), ensure_ascii=False).encode("utf-8")).hexdigest()[:_DIGEST_CHARS]
    prefix = sensor_id[: SENSOR_ID_MAX_LENGTH - _DIGEST_CHARS - 1].rstrip(".-_")
    return f"{prefix}:{digest}"


def _count(event: Mapping[str, Any]) -> float:
    """The reading's value, by the value rule; its bounds are the catalogue's, checked when it is summarised."""
    current = event.get("current")
    if isinstance(current, Mapping):
        current = current.get("count")
    try:
        return check_value(current, None)
    except BrokenRule as bad:
        raise NotAReading(f"people-counter current count {bad.message}") from None


def _time(event: Mapping[str, Any]) -> datetime:
    try:
        return check_timestamp(event.get("time"))
    except BrokenRule as bad:
        raise NotAReading(f"people-counter time {bad.message}") from None


def reading_id(event: Mapping[str, Any]) -> str:
    """Deterministic: from the Microshare record id, else from the whole body, so a redelivered event
    re-writes the same reading and the window does not count it twice."""
    record = event.get("record")
    if isinstance(record, str | int) and not isinstance(record, bool) and str(record):
        name = f"record\x1f{record}"
    else:
        name = "body\x1f" + json.dumps(event, sort_keys=True, ensure_ascii=False, default=repr)
    return "ms-" + hashlib.sha256(name.encode("utf-8", errors="surrogatepass")).hexdigest()[:32]


def occupancy_reading(event: Mapping[str, Any]) -> dict[str, Any]:
    """The reading document of one people-counter event; raises NotAReading with the reason."""
    timestamp = _time(event)
    sensor_id = location_sensor_id(location_tags(event))
    return {
        "id": reading_id(event),
        "sensor_id": sensor_id,
        "metric": METRIC,
        "value": _count(event),
        "unit": UNIT,
        "timestamp": format_timestamp(timestamp),
        "source": READING_SOURCE,
    }


def reading_or_dead_letter(event: Mapping[str, Any], source: str) -> dict[str, Any] | DeadLetter:
    """occupancy_reading, with a failure as a dead letter of `source` (the trigger that received it)."""
    try:
        return occupancy_reading(event)
    except NotAReading as invalid:
        return DeadLetter(source, str(invalid), dict(event))
