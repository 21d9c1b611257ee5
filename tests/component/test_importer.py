"""The bulk import's use-cases on a real embedded store: a file read chunk by chunk from the positions each chunk
returns (as the orchestration runs it, with small chunks), resumed after a chunk ran twice, its bad rows joined
into one report, and refusals with their result."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.app import ingest_limits
from shared.imports import importer as importer_module
from shared.imports.importer import ChunkResult, Importer, ImportJob, Skipped, Totals, UploadRefused
from shared.imports.names import RESULTS_CONTAINER, instance_id
from shared.imports.records import ImportLog
from shared.intake.reading_writer import ReadingWriter
from shared.settings import ImportSettings, Settings
from shared.storage.factory import Stores
from shared.storage.names import READINGS
from tests.component.alert_rig import embedded_stores

NOW = datetime.now(UTC).replace(microsecond=0)
HEADER = "sensor_id,metric,value,timestamp"


def _importer(stores: Stores, **limits: int) -> Importer:
    settings = Settings.from_env({})
    imports = ImportSettings(
        limits.get("max_bytes", 1 << 30), limits.get("max_rows", 10_000_000), limits.get("upload", 1 << 20)
    )
    writer = ReadingWriter(stores.documents, 0)
    return Importer(stores.blobs, ImportLog(stores.state), writer, ingest_limits(settings), imports)


def _rows(n: int, sensor: str = "imp-1") -> list[str]:
    return [f"{sensor},temperature,{20 + i % 10},{(NOW - timedelta(seconds=n - i)).isoformat()}" for i in range(n)]


def _run(importer: Importer, job: ImportJob, repeat_chunk: int | None = None) -> tuple[Totals, list[int]]:
    """Chunks in order from the job's start, as the orchestration runs them; `repeat_chunk` runs once more (a crash
    after the activity did its work but before its result was recorded)."""
    position, chunk, totals, offsets = job.start, 0, Totals(), []
    while True:
        result: ChunkResult = importer.import_chunk(job, position, totals)
        if chunk == repeat_chunk:
            result = importer.import_chunk(job, position, totals)
        totals = totals + result.totals
        offsets.append(position.offset)
        if result.next is None:
            importer.finish(job, totals, result.refused, None)
            return totals, offsets
        position, chunk = result.next, chunk + 1


def _stored(stores: Stores, sensor: str) -> list[dict[str, Any]]:
    return stores.documents.latest(READINGS, sensor, "timestamp", 100_000)


@pytest.mark.parametrize("compressed", [False, True])
def test_a_file_read_in_small_chunks_imports_every_row_once_even_when_a_chunk_runs_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compressed: bool
) -> None:
    monkeypatch.setattr(importer_module, "CHUNK_ROWS", 7)
    monkeypatch.setattr(importer_module, "GZIP_CHUNKS", 2)  # a gzip activity reads two chunks: 14 rows
    monkeypatch.setattr(importer_module, "PLAIN_CHUNKS", 3)  # an uncompressed one three: 21 rows
    stores = embedded_stores(tmp_path)
    importer = _importer(stores)
    content = ("\r\n".join([HEADER, *_rows(50)]) + "\r\n").encode()
    name = "history.csv.gz" if compressed else "history.csv"
    importer.upload(name, gzip.compress(content) if compressed else content)
    job = importer.examine(name)
    assert isinstance(job, ImportJob) and job.layout.gzip == compressed

    totals, offsets = _run(importer, job, repeat_chunk=3)
    assert totals == Totals(50, 50, 0)
    assert len(offsets) == (4 if compressed else 3) and offsets == sorted(offsets)
    assert len(_stored(stores, "imp-1")) == 50
    record = importer.log.get(job.id)
    assert record is not None and (record.state, record.rows, record.imported) == ("imported", 50, 50)
    assert isinstance(importer.examine(name), Skipped)  # the same version again: nothing to do


def test_bad_rows_from_every_chunk_are_joined_into_one_report_in_line_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer_module, "CHUNK_ROWS", 4)
    stores = embedded_stores(tmp_path)
    importer = _importer(stores)
    rows = _rows(12)
    rows[2] = "imp-1,temperature,=cmd(),2026-01-01T00:00:00Z"  # line 4: a formula in the value, and too old
    rows[9] = "imp-1,temperature,500,2026-01-01T00:00:00Z,extra"  # line 11: a field too many
    importer.upload("bad.csv", ("\n".join([HEADER, *rows]) + "\n").encode())
    job = importer.examine("bad.csv")
    assert isinstance(job, ImportJob)
    totals, _ = _run(importer, job)
    assert totals == Totals(12, 10, 2)
    report = stores.blobs.open_read(RESULTS_CONTAINER, "bad.csv.errors.csv").read().decode()
    lines = list(csv.reader(io.StringIO(report)))
    assert lines[0] == ["line", "field", "message"]
    assert [int(line[0]) for line in lines[1:]] == sorted(int(line[0]) for line in lines[1:])
    assert {int(line[0]) for line in lines[1:]} == {4, 11}
    value_error = next(line for line in lines[1:] if line[0] == "4" and line[1] == "value")
    assert value_error[2] == "must be a finite number"
    assert stores.blobs.list(RESULTS_CONTAINER, ".parts/") == []  # the parts are gone once joined
    # The end step again (a crash after it ran): the same report, nothing lost.
    importer.finish(job, totals, None, None)
    assert stores.blobs.open_read(RESULTS_CONTAINER, "bad.csv.errors.csv").read().decode() == report
    result = json.loads(stores.blobs.open_read(RESULTS_CONTAINER, "bad.csv.result.json").read())
    assert (result["rows"], result["imported"], result["rejected"], result["errors"]) == (
        12,
        10,
        2,
        "bad.csv.errors.csv",
    )


def test_a_row_whose_id_is_stored_with_other_content_is_rejected_and_changes_nothing(tmp_path: Path) -> None:
    stores = embedded_stores(tmp_path)
    importer = _importer(stores)
    moment = (NOW - timedelta(minutes=1)).isoformat()
    first = f"id,{HEADER}\nr-1,imp-2,temperature,21,{moment}\nr-2,imp-2,temperature,22,{moment}\n"
    importer.upload("one.csv", first.encode())
    job = importer.examine("one.csv")
    assert isinstance(job, ImportJob)
    _run(importer, job)
    second = f"id,{HEADER}\nr-1,imp-2,temperature,99,{moment}\nr-2,imp-2,temperature,22,{moment}\n"
    importer.upload("two.csv", second.encode())
    job = importer.examine("two.csv")
    assert isinstance(job, ImportJob)
    totals, _ = _run(importer, job)
    assert totals == Totals(2, 1, 1)  # r-2 is the same reading: imported (unchanged); r-1 is not
    assert {doc["id"]: doc["value"] for doc in _stored(stores, "imp-2")} == {"r-1": 21, "r-2": 22}
    report = stores.blobs.open_read(RESULTS_CONTAINER, "two.csv.errors.csv").read().decode()
    assert "2,id,r-1 " in report


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("empty.csv", b"", "empty"),
        ("picture.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "text"),
        ("big.csv", ("\n".join([HEADER, *_rows(200)]) + "\n").encode(), "IMPORT_MAX_BYTES"),
        ("nocolumns.csv", b"when,what\n1,2\n", "sensor_id"),
    ],
)
def test_a_file_that_cannot_be_imported_gets_a_result_saying_why(
    tmp_path: Path, name: str, body: bytes, reason: str
) -> None:
    stores = embedded_stores(tmp_path)
    importer = _importer(stores, max_bytes=4096)
    stores.blobs.put("imports", name, body)
    skipped = importer.examine(name)
    assert isinstance(skipped, Skipped)
    assert skipped.record.state == "refused" and reason in (skipped.record.reason or "")
    result = json.loads(stores.blobs.open_read(RESULTS_CONTAINER, f"{name}.result.json").read())
    assert result["state"] == "refused" and reason in result["reason"] and result["imported"] == 0
    assert _stored(stores, "imp-1") == []


def test_uploads_are_checked_before_anything_is_stored(tmp_path: Path) -> None:
    stores = embedded_stores(tmp_path)
    importer = _importer(stores, upload=2048)
    for name, body, status in [
        (None, b"x", 400),
        ("../etc.csv", b"x", 400),
        ("a/b.csv", b"x", 400),
        ("readings.txt", b"x", 400),
        ("ok.csv", b"", 400),
        ("ok.csv", b"x" * 2049, 413),
    ]:
        with pytest.raises(UploadRefused) as refused:
            importer.upload(name, body)
        assert refused.value.status == status, name
    assert stores.blobs.list("imports") == []
    stored = importer.upload("ok.csv.gz", gzip.compress(b"sensor_id,metric,value,timestamp\n"))
    record = importer.log.get(instance_id("ok.csv.gz", stored.etag))
    assert record is not None and record.state == "uploaded"


def test_a_file_past_its_row_limit_keeps_the_rows_stored_before_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer_module, "CHUNK_ROWS", 4)  # one activity reads five chunks: the limit falls inside
    stores = embedded_stores(tmp_path)
    importer = _importer(stores, max_rows=10)
    importer.upload("long.csv", ("\n".join([HEADER, *_rows(20, sensor="imp-3")]) + "\n").encode())
    job = importer.examine("long.csv")
    assert isinstance(job, ImportJob)
    result = importer.import_chunk(job, job.start, Totals())
    assert result.next is None and result.refused is not None and "10" in result.refused
    assert result.totals.imported == len(_stored(stores, "imp-3")) > 0  # what was stored is counted, nothing more
    record = importer.log.get(job.id)
    assert record is not None and record.imported == result.totals.imported  # the progress of every stored chunk
