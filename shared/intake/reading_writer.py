"""Readings written to `readings` by their identity, (sensor_id, id): the ingest API and the bulk import both
write through here.

A reading stored with the same content is left as it is and counts as unchanged, so a retry is harmless; one
stored with other content is a conflict, and a stored reading is never overwritten (the summary that counted its
first value would silently disagree with it). Content is what a reading says: sensor_id, metric, value, unit
and the instant of its timestamp as stored (to the millisecond, whatever its spelling). `source` is not content:
the same reading re-sent through another gateway is the same reading, and the stored source is kept.

All or nothing (the ingest API): the stored readings are read first, and if any conflicts nothing is written.
insert_new writes each document only where its address is free, so of two writers of one id only one ever wins;
but reading first and writing then are two steps. A reading with the same id and other content written by
someone else between them is found by insert_new, after the rest of the batch has been written: it is still a
conflict (the caller answers 409 naming it, saying the others were written), and a client re-sending the batch
without it gets the others back as unchanged. Each of what it wants (write or refuse per reading) holds; only
"nothing was written" does not in that race.

Write what can be (a bulk import): every reading whose address is free is written, conflicts are returned, with
no read first (insert_new answers with what was already stored).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.readings.reading import InvalidReading, Reading, format_timestamp, parse_timestamp
from shared.storage.names import READINGS
from shared.storage.ports import DocumentStore

ReadingKey = tuple[str, str]  # (sensor_id, id): the partition key and the id, a reading's address
Content = tuple[str, str, float, str, str]  # sensor_id, metric, value, unit, timestamp as stored


@dataclass(slots=True)
class WriteOutcome:
    written: int = 0  # readings stored by this call
    unchanged: int = 0  # readings already stored with the same content (or given twice): not written again
    conflicts: list[Reading] = field(default_factory=list)  # already stored with other content: not written


def reading_content(reading: Reading) -> Content:
    """What makes two readings of one (sensor_id, id) the same reading (the module's docstring says why)."""
    return (reading.sensor_id, reading.metric, reading.value, reading.unit, format_timestamp(reading.timestamp))


def _stored_content(document: Mapping[str, Any]) -> Content | None:
    """The content of a stored reading; None when it is not one this module could have written (never equal)."""
    value = document.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        timestamp = format_timestamp(parse_timestamp(document.get("timestamp")))
    except InvalidReading:
        return None
    sensor_id, metric, unit = document.get("sensor_id"), document.get("metric"), document.get("unit")
    if not isinstance(sensor_id, str) or not isinstance(metric, str) or not isinstance(unit, str):
        return None
    return (sensor_id, metric, float(value), unit, timestamp)


class ReadingWriter:
    """Writes readings to `readings` with their time to live; see the module's docstring for the rules."""

    def __init__(self, documents: DocumentStore, ttl_seconds: int) -> None:
        self._documents = documents
        self._ttl = ttl_seconds

    def write(self, readings: Sequence[Reading], all_or_nothing: bool) -> WriteOutcome:
        """Store the readings whose id is new; `all_or_nothing`: none at all when any conflicts (but see the race in
        the module's docstring). Conflicts are listed in the order given."""
        outcome = WriteOutcome()
        new: dict[ReadingKey, Reading] = {(reading.sensor_id, reading.id): reading for reading in readings}
        conflicts: list[tuple[int, Reading]] = []
        if len(new) == len(readings):  # the usual case: every address once
            positions = dict(zip(new, range(len(readings)), strict=True))
        else:  # an address given again: its first reading is the one written
            new, positions = {}, {}
            for position, reading in enumerate(readings):
                key = (reading.sensor_id, reading.id)
                first = new.get(key)
                if first is None:
                    new[key] = reading
                    positions[key] = position
                elif reading_content(first) == reading_content(reading):
                    outcome.unchanged += 1  # the same reading twice in one call: written once
                else:
                    conflicts.append((position, reading))  # other content than the first of its id in this call
        if all_or_nothing:
            for key, document in self._documents.read_many(READINGS, list(new)).items():
                reading = new.pop(key)
                if _stored_content(document) == reading_content(reading):
                    outcome.unchanged += 1
                else:
                    conflicts.append((positions[key], reading))
            if conflicts:
                outcome.conflicts = [reading for _, reading in sorted(conflicts, key=_position)]
                return outcome
        found = self._documents.insert_new(READINGS, [reading.to_document(self._ttl) for reading in new.values()])
        outcome.written = len(new) - len(found)
        for document in found:
            key = (str(document.get("sensor_id")), str(document.get("id")))
            if _stored_content(document) == reading_content(new[key]):
                outcome.unchanged += 1
            else:
                conflicts.append((positions[key], new[key]))  # written by someone else since read_many, or found now
        outcome.conflicts = [reading for _, reading in sorted(conflicts, key=_position)]
        return outcome


def _position(conflict: tuple[int, Reading]) -> int:
    return conflict[0]
