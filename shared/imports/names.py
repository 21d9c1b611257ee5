"""The names of a bulk import: its containers, the instance id of one file version, the report blobs, and what a
file may be called when it is uploaded through the API."""

from __future__ import annotations

import hashlib
import re

IMPORTS_CONTAINER = "imports"
RESULTS_CONTAINER = "imports-results"
RECORDS_TABLE = "imports"  # one entity per imported file version (shared.imports.records)
SOURCE = "import"  # a row without `source` gets this one

# What POST /api/imports?name= accepts: a plain file name (no folders), with an extension the importer knows.
UPLOAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()-]{0,199}")
EXTENSIONS = (".csv", ".jsonl", ".ndjson", ".json")
INSTANCE_ID = re.compile(r"imp-[0-9a-f]{32}")
_PARTS_FOLDER = ".parts"


class BadImportName(ValueError):
    """A name the upload route refuses; the message says why (the answer is 400)."""


def instance_id(name: str, etag: str) -> str:
    """The orchestration of one version of one blob: however often its event arrives, it is imported once."""
    digest = hashlib.sha256(f"{name}\x1f{etag}".encode()).hexdigest()
    return f"imp-{digest[:32]}"


def errors_blob(name: str) -> str:
    return f"{name}.errors.csv"


def result_blob(name: str) -> str:
    return f"{name}.result.json"


def error_part(import_id: str, first_line: int) -> str:
    """Where the rejected rows of the chunk that starts at `first_line` wait until the import ends and joins them,
    in name order (so in line order), into `<name>.errors.csv`."""
    return f"{_PARTS_FOLDER}/{import_id}/{first_line:012d}.csv"


def error_parts_prefix(import_id: str) -> str:
    return f"{_PARTS_FOLDER}/{import_id}/"


def check_upload_name(raw: str | None) -> str:
    """The `name` of an upload: 1-200 letters, digits, spaces, '.', '_', '-', '(' or ')', no folders, ending in a
    known extension (optionally followed by .gz)."""
    if not raw:
        raise BadImportName("name is required: the file's name, e.g. ?name=history.csv")
    if not UPLOAD_NAME.fullmatch(raw) or ".." in raw:
        raise BadImportName(
            "name must be 1-200 letters, digits, spaces, '.', '_', '-', '(' or ')', starting with a letter or digit"
        )
    base = raw[:-3] if raw.lower().endswith(".gz") else raw
    if not base.lower().endswith(EXTENSIONS):
        raise BadImportName("name must end in .csv, .jsonl, .ndjson or .json (optionally followed by .gz)")
    return raw
