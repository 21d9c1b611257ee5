"""The log of imports: one entity per imported file version in the `imports` table, written when its event is
accepted or refused, after every chunk, and when it ends; read by GET /api/imports."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from shared.imports.names import RECORDS_TABLE
from shared.storage.ports import Entity, StateStore

PARTITION = "imports"
# uploaded: stored by POST /api/imports, its event not seen yet; queued: the event was accepted, the orchestration
# started; importing: chunks are being read; then one of the final states.
UPLOADED, QUEUED, IMPORTING = "uploaded", "queued", "importing"
IMPORTED, REFUSED, FAILED = "imported", "refused", "failed"
STATES = (UPLOADED, QUEUED, IMPORTING, IMPORTED, REFUSED, FAILED)
FINAL_STATES = (IMPORTED, REFUSED, FAILED)
MAX_LISTED = 200  # imports one GET /api/imports lists at most


@dataclass(frozen=True, slots=True)
class ImportRecord:
    id: str
    name: str
    etag: str
    size: int
    state: str
    created: str  # ISO 8601 UTC
    updated: str
    rows: int = 0  # rows read so far (good and bad)
    imported: int = 0  # rows stored, or found stored already with the same content
    rejected: int = 0  # rows in the error report
    reason: str | None = None  # why a file was refused or failed
    finished: str | None = None
    seconds: float | None = None  # from the event's acceptance to the end
    errors: str | None = None  # the error report's blob in imports-results, when there are rejected rows
    result: str | None = None  # the result's blob in imports-results, once it ended

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_(self, **changes: Any) -> ImportRecord:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_entity(cls, entity: Entity) -> ImportRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in entity.properties.items() if k in known}
        return cls(id=entity.row_key, **{k: v for k, v in values.items() if k != "id"})


class ImportLog:
    def __init__(self, state: StateStore) -> None:
        self._state = state

    def put(self, record: ImportRecord) -> None:
        properties = {k: v for k, v in record.to_json().items() if k != "id" and v is not None}
        self._state.upsert(RECORDS_TABLE, PARTITION, record.id, properties)

    def get(self, import_id: str) -> ImportRecord | None:
        entity = self._state.get(RECORDS_TABLE, PARTITION, import_id)
        return None if entity is None else ImportRecord.from_entity(entity)

    def recent(self, limit: int) -> list[ImportRecord]:
        """The newest `limit` imports, newest first (the table holds one small entity per file version)."""
        records = [ImportRecord.from_entity(e) for e in self._state.query(RECORDS_TABLE, PARTITION)]
        records.sort(key=lambda record: (record.created, record.id), reverse=True)
        return records[:limit]
