"""Readings posted by devices: validated by shared.intake.ingest, written to `readings` in one call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from shared.intake.ingest import IngestLimits, check_content_type, decode_body, validate_batch
from shared.readings.reading import Reading
from shared.storage.names import READINGS
from shared.storage.ports import Document, DocumentStore, public_fields

MAX_READINGS_LIMIT = 500


class ReadingIntake:
    def __init__(
        self,
        documents: DocumentStore,
        limits: IngestLimits,
        reading_ttl_seconds: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._documents = documents
        self.limits = limits
        self._ttl = reading_ttl_seconds
        self._clock = clock

    def accept(self, body: bytes, content_type: str | None) -> list[Reading]:
        """Validate the whole request, then write every reading (upserts by id: a retry rewrites the same
        documents); raises IngestRejected before anything is written."""
        check_content_type(content_type)
        readings = validate_batch(decode_body(body, self.limits), self.limits, self._clock)
        unique = {reading.id: reading for reading in readings}.values()
        self._documents.upsert_many(READINGS, [reading.to_document(self._ttl) for reading in unique])
        return readings

    def latest(self, sensor_id: str, metric: str | None, limit: int) -> list[Document]:
        """The newest readings of a sensor (of one metric, when given), newest first, without storage fields."""
        equals = {"metric": metric} if metric else None
        found = self._documents.latest(READINGS, sensor_id, "timestamp", limit, equals)
        return [public_fields(doc) for doc in found]
