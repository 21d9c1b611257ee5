"""The bulk import's use-cases: accept a file's event (a cheap look at its size and first bytes), import one chunk
of rows, and end the import with its error report and result. The orchestration (shared.imports.orchestration)
calls them in order; each is safe to run again after a crash, so a file version is imported exactly once in
effect: rows are written with idempotent ids, and a row already stored with the same content counts as imported.

A row is checked by exactly the rules of POST /api/readings (shared.readings.rules, the ingest API's policy:
unknown fields refused, a missing id derived from the content, the timestamp judged against the clock). Unlike the
API, a file is not all or nothing: good rows are imported and every bad one is reported with its line number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

import orjson

from shared.dashboard.csv_export import escape_cell
from shared.imports.names import (
    IMPORTS_CONTAINER,
    RESULTS_CONTAINER,
    SOURCE,
    check_upload_name,
    error_part,
    error_parts_prefix,
    errors_blob,
    instance_id,
    result_blob,
)
from shared.imports.parsing import (
    HEAD_BYTES,
    FileRefused,
    ImportFormat,
    Layout,
    Position,
    Row,
    RowError,
    first_position,
    open_content,
    read_chunk,
    sniff,
)
from shared.imports.records import (
    FAILED,
    IMPORTED,
    IMPORTING,
    QUEUED,
    REFUSED,
    UPLOADED,
    ImportLog,
    ImportRecord,
)
from shared.imports.rereadable import Rereadable
from shared.intake.ingest import IngestLimits
from shared.intake.reading_writer import ReadingWriter, reading_content
from shared.ops.log_context import app_logger
from shared.ops.metrics import PipelineMetrics
from shared.readings.reading import Reading, format_timestamp, parse_timestamp
from shared.readings.rules import ReadingPolicy, check_reading
from shared.settings import ImportSettings
from shared.storage.ports import BlobChanged, BlobNotFound, BlobProperties, BlobStore

logger = app_logger(__name__)

CHUNK_ROWS = 20_000  # rows read and stored at once: bounds the memory, a chunk's readings are one store call
PLAIN_CHUNKS = 5  # chunks one activity reads of an uncompressed file: how much a crash makes it read again
GZIP_CHUNKS = 25  # chunks one activity reads of a gzip file: each one decompresses the file from its start
STORERS = 4  # imports whose chunks are stored at once (each import has one chunk being stored at a time)
_SKIP_BLOCK = 1 << 20
ERRORS_HEADER = b"line,field,message\r\n"


class UploadRefused(ValueError):
    """POST /api/imports cannot take the file; `status` is the answer's (400 or 413)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class ImportJob:
    """One file version to import: the orchestration's input, and each activity's."""

    id: str
    name: str
    etag: str
    size: int
    layout: Layout
    start: Position
    created: str

    def to_json(self) -> dict[str, Any]:
        layout = self.layout
        return {
            "id": self.id,
            "name": self.name,
            "etag": self.etag,
            "size": self.size,
            "layout": {
                "format": layout.format.value,
                "gzip": layout.gzip,
                "header": None if layout.header is None else list(layout.header),
            },
            "start": self.start.to_json(),
            "created": self.created,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ImportJob:
        layout = value["layout"]
        header = layout.get("header")
        return cls(
            id=str(value["id"]),
            name=str(value["name"]),
            etag=str(value["etag"]),
            size=int(value["size"]),
            layout=Layout(
                ImportFormat(layout["format"]), bool(layout["gzip"]), None if header is None else tuple(header)
            ),
            start=Position.from_json(value["start"]),
            created=str(value["created"]),
        )


@dataclass(frozen=True, slots=True)
class Totals:
    rows: int = 0
    imported: int = 0
    rejected: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.rows + other.rows, self.imported + other.imported, self.rejected + other.rejected)

    def to_json(self) -> dict[str, int]:
        return {"rows": self.rows, "imported": self.imported, "rejected": self.rejected}

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> Totals:
        value = value or {}
        return cls(int(value.get("rows", 0)), int(value.get("imported", 0)), int(value.get("rejected", 0)))


@dataclass(frozen=True, slots=True)
class ChunkResult:
    totals: Totals  # of this chunk alone
    next: Position | None  # None: the file ended (or was refused)
    refused: str | None = None  # why the rest of the file cannot be imported

    def to_json(self) -> dict[str, Any]:
        return {
            "totals": self.totals.to_json(),
            "next": None if self.next is None else self.next.to_json(),
            "refused": self.refused,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ChunkResult:
        following = value.get("next")
        return cls(
            Totals.from_json(value.get("totals")),
            None if following is None else Position.from_json(following),
            value.get("refused"),
        )


@dataclass(frozen=True, slots=True)
class Skipped:
    """An event for a file version that is imported, importing or refused already: nothing to start."""

    record: ImportRecord


ErrorRow = tuple[int, str, str]  # line, field, message


class Importer:
    def __init__(
        self,
        blobs: BlobStore,
        log: ImportLog,
        writer: ReadingWriter,
        limits: IngestLimits,
        settings: ImportSettings,
        metrics: PipelineMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._blobs = blobs
        self.log = log
        self._writer = writer
        self._limits = limits
        self.settings = settings
        self._metrics = metrics
        self._clock = clock
        # Where chunks are stored while the next is read (see import_chunk): long-lived threads, one per import
        # running at once, rather than a new one for every activity.
        self._storers = ThreadPoolExecutor(STORERS, thread_name_prefix="import-store")

    # --- the upload route -------------------------------------------------------------------------------------
    def upload(self, name: str | None, body: bytes) -> BlobProperties:
        """POST /api/imports?name=: the body stored as `imports/<name>`; its BlobCreated event starts the import."""
        try:
            checked = check_upload_name(name)
        except ValueError as bad:
            raise UploadRefused(400, str(bad)) from None
        if len(body) > self.settings.upload_max_bytes:
            raise UploadRefused(
                413,
                f"the file is larger than {self.settings.upload_max_bytes} bytes (IMPORT_UPLOAD_MAX_BYTES); "
                "upload it to the imports container with storage tools instead",
            )
        if not body:
            raise UploadRefused(400, "the body is empty: send the file's bytes")
        stored = self._blobs.put(IMPORTS_CONTAINER, checked, body)
        now = format_timestamp(self._clock())
        import_id = instance_id(stored.name, stored.etag)
        self.log.put(ImportRecord(import_id, stored.name, stored.etag, stored.size, UPLOADED, now, now))
        return stored

    # --- the trigger ------------------------------------------------------------------------------------------
    def examine(self, name: str) -> ImportJob | Skipped | None:
        """What a BlobCreated event for `imports/<name>` calls for: a job to start, a skip (this version was taken
        already, or is refused now with its result written), or None when the blob is gone."""
        properties = self._blobs.properties(IMPORTS_CONTAINER, name)
        if properties is None:
            logger.info("import: %s is gone; nothing to import", name, extra={"event": "import_gone"})
            return None
        import_id = instance_id(name, properties.etag)
        known = self.log.get(import_id)
        if known is not None and known.state in (IMPORTED, REFUSED):
            return Skipped(known)
        now = format_timestamp(self._clock())
        # An upload through the API counts from when it was stored.
        created = known.created if known is not None and known.state == UPLOADED else now
        record = ImportRecord(import_id, name, properties.etag, properties.size, QUEUED, created, now)
        try:
            layout, start = self._look(name, properties)
        except FileRefused as refused:
            return Skipped(self._end(record, REFUSED, Totals(), refused.reason))
        except BlobChanged:
            return None  # replaced meanwhile: the new version has its own event
        if known is None or known.state in (UPLOADED, FAILED):
            self.log.put(record)
        else:  # queued or importing: the caller starts the orchestration only if it is not running already
            record = known
        return ImportJob(import_id, name, properties.etag, properties.size, layout, start, record.created)

    def _look(self, name: str, properties: BlobProperties) -> tuple[Layout, Position]:
        limit = self.settings.max_bytes
        if properties.size == 0:
            raise FileRefused("the file is empty")
        if properties.size > limit:
            raise FileRefused(f"the file is {properties.size} bytes, more than IMPORT_MAX_BYTES ({limit})")
        head = self._blobs.read_head(IMPORTS_CONTAINER, name, HEAD_BYTES, properties.etag)
        layout = sniff(name, head, limit)
        return layout, first_position(layout, head)  # the parser decompresses a gzip head itself

    # --- chunks -----------------------------------------------------------------------------------------------
    def import_chunk(self, job: ImportJob, position: Position, before: Totals) -> ChunkResult:
        """Import rows from `position` on: up to PLAIN_CHUNKS chunks of CHUNK_ROWS of an uncompressed file, or up
        to GZIP_CHUNKS of them of a gzip file (which cannot seek, so each activity decompresses from the start:
        fewer, longer activities keep that from growing with the square of the file). The good rows are stored,
        the bad ones put in the error report's part for their first line, and the progress recorded once a
        chunk is stored (`before`: the totals of earlier chunks).

        A chunk is stored while the next one is read and checked: storing mostly waits on the store (SQLite
        works without the GIL, Cosmos DB over the network), so the two overlap. One chunk is stored at a time,
        in order, and the activity returns only when the last one is."""
        runs = GZIP_CHUNKS if job.layout.gzip else PLAIN_CHUNKS
        done = Totals()
        storing: Future[Totals] | None = None

        def settle() -> None:
            nonlocal done, storing
            if storing is not None:
                done = done + storing.result()
                storing = None

        following: Position | None = position
        refused: str | None = None
        try:
            with Rereadable(self._open(job, position), position.offset) as content:
                for _ in range(runs):
                    read = read_chunk(cast(BinaryIO, content), job.layout, position, CHUNK_ROWS, self.settings.max_rows)
                    following, rows = read.next, len(read.rows)
                    readings, errors = self._check_rows(read.rows)
                    del read  # the rows as read: only the checked readings are kept while they are stored
                    settle()
                    storing = self._storers.submit(self._store, job, position, before + done, rows, readings, errors)
                    del readings, errors
                    if following is None:
                        break
                    position = following
                    content.rewind_to(position.offset)  # the reader read ahead of its last row
        except FileRefused as refusal:
            following, refused = None, refusal.reason
        except BlobChanged:
            following, refused = None, "the file was replaced during its import; the new version is imported"
        except BlobNotFound:
            following, refused = None, "the file was deleted during its import"
        except BaseException:
            if storing is not None:  # the chunk being stored ends before the activity does
                wait([storing])
            raise
        settle()
        return ChunkResult(done, following, refused)

    def _store(
        self,
        job: ImportJob,
        position: Position,
        earlier: Totals,
        rows: int,
        readings: list[tuple[int, Reading]],
        errors: list[ErrorRow],
    ) -> Totals:
        """One chunk's checked rows stored, its bad rows in the error report's part for its first line, and the
        progress recorded (`earlier`: the totals of the chunks before it). Returns the chunk's totals."""
        written = self._write(readings, errors)
        if errors:
            errors.sort()
            self._blobs.put(RESULTS_CONTAINER, error_part(job.id, position.line), _csv_lines(errors))
        rejected = len({line for line, _, _ in errors})
        if self._metrics is not None:
            self._metrics.import_rows.labels("imported").inc(written)
            self._metrics.import_rows.labels("rejected").inc(rejected)
        totals = Totals(rows, written, rejected)
        self.log.put(self._record(job, IMPORTING, earlier + totals, format_timestamp(self._clock())))
        return totals

    def _open(self, job: ImportJob, position: Position) -> BinaryIO:
        if not job.layout.gzip:
            return self._blobs.open_read(IMPORTS_CONTAINER, job.name, position.offset, job.etag)
        raw = self._blobs.open_read(IMPORTS_CONTAINER, job.name, 0, job.etag)
        content = open_content(raw, job.layout, self.settings.max_bytes)
        remaining = position.offset
        while remaining > 0:  # a gzip stream cannot seek: decompress and drop what earlier chunks read
            dropped = content.read(min(remaining, _SKIP_BLOCK))
            if not dropped:
                break
            remaining -= len(dropped)
        return content

    def _check_rows(self, rows: Sequence[Row | RowError]) -> tuple[list[tuple[int, Reading]], list[ErrorRow]]:
        limits = self._limits
        policy = ReadingPolicy.ingest_api(limits.metrics, limits.max_future, limits.max_age)
        now = self._clock()
        readings: list[tuple[int, Reading]] = []
        errors: list[ErrorRow] = []
        first_of_id: dict[tuple[str, str], tuple[int, Reading]] = {}  # (sensor_id, id): a reading's identity
        for row in rows:
            if isinstance(row, RowError):
                errors.append((row.line, row.field, row.message))
                continue
            checked = check_reading(row.item, policy, SOURCE, now)
            if isinstance(checked, list):
                errors.extend((row.line, violation.field, violation.message) for violation in checked)
                continue
            line, first = first_of_id.setdefault((checked.sensor_id, checked.id), (row.line, checked))
            if line == row.line:
                readings.append((row.line, checked))
            elif reading_content(first) != reading_content(checked):
                errors.append((row.line, "id", f"repeats the id of line {line} with different content"))
        return readings, errors

    def _write(self, readings: list[tuple[int, Reading]], errors: list[ErrorRow]) -> int:
        """Store the readings; those whose id is stored with other content become errors. Returns how many are
        stored now (written, or found stored with the same content)."""
        outcome = self._writer.write([reading for _, reading in readings], all_or_nothing=False)
        conflicting = {(reading.sensor_id, reading.id) for reading in outcome.conflicts}
        stored = 0
        for line, reading in readings:
            if (reading.sensor_id, reading.id) in conflicting:
                errors.append((line, "id", f"{reading.id} is stored already with different content"))
            else:
                stored += 1
        return stored

    # --- the end ----------------------------------------------------------------------------------------------
    def finish(self, job: ImportJob, totals: Totals, refused: str | None, failed: str | None) -> ImportRecord:
        """Join the error report, write the result, and record how the import ended."""
        if totals.rejected:
            self._join_error_parts(job)
        if failed is not None:
            state, reason = FAILED, failed
        elif refused is not None:
            state, reason = REFUSED, refused
        else:
            state, reason = IMPORTED, None
        return self._end(self._record(job, state, totals, job.created), state, totals, reason)

    def _join_error_parts(self, job: ImportJob) -> None:
        parts = self._blobs.list(RESULTS_CONTAINER, error_parts_prefix(job.id))
        if not parts:
            return  # joined already by an earlier run of this step

        def content() -> Iterator[bytes]:
            yield ERRORS_HEADER
            for part in parts:
                with self._blobs.open_read(RESULTS_CONTAINER, part.name) as stream:
                    while block := stream.read(_SKIP_BLOCK):
                        yield block

        self._blobs.put(RESULTS_CONTAINER, errors_blob(job.name), content(), "text/csv; charset=utf-8")
        for part in parts:
            self._blobs.delete(RESULTS_CONTAINER, part.name)

    def _record(self, job: ImportJob, state: str, totals: Totals, updated: str) -> ImportRecord:
        return ImportRecord(
            job.id,
            job.name,
            job.etag,
            job.size,
            state,
            job.created,
            updated,
            totals.rows,
            totals.imported,
            totals.rejected,
        )

    def _end(self, record: ImportRecord, state: str, totals: Totals, reason: str | None) -> ImportRecord:
        now = self._clock()
        seconds = round((now - parse_timestamp(record.created)).total_seconds(), 3)
        ended = record.with_(
            state=state,
            rows=totals.rows,
            imported=totals.imported,
            rejected=totals.rejected,
            reason=reason,
            updated=format_timestamp(now),
            finished=format_timestamp(now),
            seconds=seconds,
            errors=errors_blob(record.name) if totals.rejected else None,
            result=result_blob(record.name),
        )
        result = {"file": record.name, **{k: v for k, v in ended.to_json().items() if k not in ("name", "result")}}
        self._blobs.put(
            RESULTS_CONTAINER,
            result_blob(record.name),
            orjson.dumps(result, option=orjson.OPT_INDENT_2),
            "application/json",
        )
        self.log.put(ended)
        logger.info(
            "import of %s %s: %d rows, %d imported, %d rejected%s",
            record.name,
            state,
            totals.rows,
            totals.imported,
            totals.rejected,
            f" ({reason})" if reason else "",
            extra={"event": "import_ended", "instance_id": record.id, "state": state, **totals.to_json()},
        )
        if self._metrics is not None:
            self._metrics.imports_ended.labels(state).inc()
        return ended


def _csv_lines(errors: Sequence[ErrorRow]) -> bytes:
    """Rows of the error report (no header: a part is joined after the header), cells guarded against formulas."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerows((line, escape_cell(field), escape_cell(message)) for line, field, message in errors)
    return text.getvalue().encode("utf-8")
