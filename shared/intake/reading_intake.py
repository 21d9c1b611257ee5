"""Readings posted by devices: validated by shared.intake.ingest, written to `readings` by
shared.intake.reading_writer, all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from shared.intake.ingest import IngestLimits, IngestRejected, check_content_type, decode_body, validate_batch
from shared.intake.reading_writer import ReadingWriter, WriteOutcome
from shared.ops.log_context import app_logger
from shared.ops.metrics import PipelineMetrics
from shared.readings.reading import Reading
from shared.storage.names import READINGS
from shared.storage.ports import Document, DocumentStore, public_fields

logger = app_logger(__name__)

MAX_READINGS_LIMIT = 500


class ReadingIntake:
    def __init__(
        self,
        documents: DocumentStore,
        limits: IngestLimits,
        writer: ReadingWriter,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self._documents = documents
        self._writer = writer
        self._metrics = metrics
        self.limits = limits
        self._clock = clock

    def post(self, body: bytes, content_type: str | None) -> list[Reading]:
        """POST /api/readings: `accept`, counted in the metrics and logged, whether it is taken or refused."""
        try:
            readings = self.accept(body, content_type)
        except IngestRejected as rejected:
            if self._metrics is not None:
                self._metrics.ingest_rejected.labels(str(rejected.status)).inc()
            logger.info(
                "ingest refused (%d): %s",
                rejected.status,
                rejected.message,
                extra={"event": "ingest_refused", "status": rejected.status},
            )
            raise
        if self._metrics is not None:
            self._metrics.readings_ingested.inc(len(readings))
        sensors = {reading.sensor_id for reading in readings}
        fields: dict[str, object] = {"event": "ingested", "readings": len(readings), "sensors": len(sensors)}
        if len(sensors) == 1:
            fields["sensor_id"] = readings[0].sensor_id
        logger.info("ingested %d readings", len(readings), extra=fields)
        return readings

    def accept(self, body: bytes, content_type: str | None) -> list[Reading]:
        """Validate the whole request, then write every reading whose id is new; raises IngestRejected before
        anything is written: 400 for an invalid reading, 409 for an id already stored with other content (a
        retry of the same readings is a success that writes nothing again)."""
        check_content_type(content_type)
        readings = validate_batch(decode_body(body, self.limits), self.limits, self._clock)
        outcome = self._writer.write(readings, all_or_nothing=True)
        if outcome.conflicts:
            raise _conflict(outcome)
        return readings

    def latest(self, sensor_id: str, metric: str | None, limit: int) -> list[Document]:
        """The newest readings of a sensor (of one metric, when given), newest first, without storage fields."""
        equals = {"metric": metric} if metric else None
        found = self._documents.latest(READINGS, sensor_id, "timestamp", limit, equals)
        return [public_fields(doc) for doc in found]


def _conflict(outcome: WriteOutcome) -> IngestRejected:
    """409 naming the readings stored with other content; the first by id in the message."""
    ids = tuple(dict.fromkeys(reading.id for reading in outcome.conflicts))
    first = outcome.conflicts[0]
    others = f" (and {len(ids) - 1} more)" if len(ids) > 1 else ""
    # `written` is 0 unless another request stored one of these ids between the check and the write.
    written = "nothing was written" if outcome.written == 0 else f"the other {outcome.written} were written"
    message = (
        f"reading {first.id} of sensor {first.sensor_id} is already stored with other content{others}; "
        f"a stored reading is never replaced, so {written}"
    )
    return IngestRejected(409, message, ids=ids)
