"""What an import file is and what reading it gives. The cheap check (`sniff`) judges a file by its name and its
first HEAD_BYTES: its format, its compression, its CSV header; `first_position` says where its first row starts and
`open_content` gives its content as a stream of decompressed bytes that refuses a gzip bomb. The rows are read by
`shared.imports.parsing`, a chunk at a time, into Rows and RowErrors.

A file is CSV with a header, JSON Lines (one reading object per line) or a JSON array of reading objects, each
optionally gzip-compressed. Choices where the brief of the import left one:
- gzip is recognised by its magic bytes whatever the name says, and `.gz` on a plain file is ignored.
- a name without a known extension (.csv, .jsonl, .ndjson, .json, each optionally + .gz) is judged by its first
  character: `[` a JSON array, `{` JSON Lines, anything else CSV.
- a `.json` file (or one judged by content) that starts with `{` is read as JSON Lines when its first line is a whole
  JSON value (many tools write JSON Lines under .json), and refused otherwise: it is most likely one pretty-printed
  object, which would give an error for every line.
- a `.csv` file that starts with `[` or `{`, and a `.jsonl` file that does not start with `{`, are refused.
- NUL bytes or invalid UTF-8 anywhere in the head refuse the file as not text (a file in Latin-1 would otherwise
  give an error for every row); further on, a row that is not UTF-8 is one RowError.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, BinaryIO, NamedTuple

import orjson

HEAD_BYTES = 64 * 1024
MAX_ROW_BYTES = 64 * 1024
READ_BYTES = 1024 * 1024  # the content is read in blocks of this size
TOO_LONG = f"is longer than {MAX_ROW_BYTES} bytes"  # the message of a row longer than MAX_ROW_BYTES
NOT_UTF8 = "is not valid UTF-8"
REQUIRED_COLUMNS = ("sensor_id", "metric", "value", "timestamp")
OPTIONAL_COLUMNS = ("unit", "id", "source")
COLUMNS = frozenset(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"
_BLANK = " \t\r\n"
_SHOWN_NAME_LENGTH = 40  # a column name quoted in a reason is cut there
_TRUNCATED = "the gzip file is truncated: it ends before its compressed data does"


class ImportFormat(StrEnum):
    """How a file holds its readings."""

    CSV = "csv"
    JSON_LINES = "jsonl"
    JSON_ARRAY = "json"


_EXTENSIONS = (
    (".csv", ImportFormat.CSV),
    (".jsonl", ImportFormat.JSON_LINES),
    (".ndjson", ImportFormat.JSON_LINES),
    (".json", ImportFormat.JSON_ARRAY),
)


class FileRefused(Exception):
    """The whole file cannot be imported; `reason` is one sentence for a user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Layout:
    """What the cheap check learned from the file's name and first bytes."""

    format: ImportFormat
    gzip: bool
    header: tuple[str, ...] | None  # CSV: the canonical column names in file order; None otherwise


@dataclass(frozen=True, slots=True)
class Position:
    """Where the next chunk starts; JSON-serialisable, so an activity in another process can carry on from it."""

    offset: int  # byte offset in the decompressed content
    line: int  # 1-based line number of the line at `offset`
    rows: int  # rows (good or bad) read before this position

    def to_json(self) -> dict[str, Any]:
        return {"offset": self.offset, "line": self.line, "rows": self.rows}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Position:
        """The position `to_json` gave; raises ValueError for anything else."""
        offset, line, rows = (_count(value.get(name)) for name in ("offset", "line", "rows"))
        if line < 1:
            raise ValueError("a position's line is at least 1")
        return cls(offset, line, rows)


def _count(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"a position holds counts, not {value!r:.40}")
    return value


class Row(NamedTuple):
    """A row read whole: the line it starts on and its item, as a JSON object would give it (for JSON, whatever
    value the line or element holds: the reading rules refuse what is not an object). A named tuple: a frozen
    dataclass takes twice as long to make, and a file has millions of rows."""

    line: int
    item: object


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that gives no item: `message` reads after "line N" (`field` "" is the row as a whole)."""

    line: int
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """The rows of one chunk, and where the next one starts."""

    rows: list[Row | RowError]  # in file order
    next: Position | None  # None: the file ended


@dataclass(frozen=True, slots=True)
class _Head:
    data: bytes  # the first decompressed bytes, BOM included
    complete: bool  # whether `data` is the whole content


def sniff(name: str, head: bytes, max_bytes: int) -> Layout:
    """The layout of a file named `name` whose stored (maybe compressed) content starts with `head`: its first
    HEAD_BYTES, or all of it when shorter. Raises FileRefused when the file cannot be imported whole, including when
    its head alone is larger than `max_bytes` once decompressed."""
    if not head:
        raise FileRefused("the file is empty")
    compressed = head.startswith(_GZIP_MAGIC)
    content = _content_head(head, compressed)
    if len(content.data) > max_bytes:
        raise FileRefused(f"the file is larger than {max_bytes} bytes{' once decompressed' if compressed else ''}")
    text = _text(content).removeprefix("\ufeff")
    first = text.lstrip(_BLANK)[:1]
    if not first:
        if content.complete:
            raise FileRefused("the file is empty")
        raise FileRefused(f"the file starts with more than {HEAD_BYTES} bytes of blank lines")
    found = _format(name, first, text, content.complete)
    header = _csv_header(text, content.complete)[0] if found is ImportFormat.CSV else None
    return Layout(found, compressed, header)


def first_position(layout: Layout, head: bytes) -> Position:
    """Where the first row starts: after a BOM, and after the CSV header (and any blank lines before it) or the
    JSON array's `[`. `head` is what `sniff` was given (its decompressed form works too)."""
    content = _content_head(head, head.startswith(_GZIP_MAGIC))
    bom = len(BOM) if content.data.startswith(BOM) else 0
    if layout.format is ImportFormat.CSV:
        consumed = _csv_header(_text(content).removeprefix("\ufeff"), content.complete)[1]
        return Position(bom + len(consumed.encode()), consumed.count("\n") + 1, 0)
    if layout.format is ImportFormat.JSON_LINES:
        return Position(bom, 1, 0)
    body = content.data[bom:]
    opening = len(body) - len(body.lstrip(_BLANK.encode()))
    if body[opening : opening + 1] != b"[":
        raise ValueError("the head does not start a JSON array")
    return Position(bom + opening + 1, body.count(b"\n", 0, opening) + 1, 0)


def open_content(raw: BinaryIO, layout: Layout, max_bytes: int) -> BinaryIO:
    """The decompressed content from its start. A gzip file's stream raises FileRefused once more than `max_bytes`
    come out of it, or when it is corrupt or truncated; it seeks forward by decompressing. A plain file is `raw`
    itself: the caller bounds its size by the stored size."""
    if not layout.gzip:
        return raw
    return io.BufferedReader(_GzipContent(raw, max_bytes), buffer_size=256 * 1024)


class _GzipContent(io.RawIOBase):
    """A gzip stream's decompressed bytes, at most `max_bytes` of them; gzip's own errors become FileRefused."""

    def __init__(self, raw: BinaryIO, max_bytes: int) -> None:
        super().__init__()
        self._gzip = gzip.GzipFile(fileobj=raw, mode="rb")
        self._max_bytes = max_bytes
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        with _refusing_bad_gzip():
            data = self._gzip.read(len(buffer))
        self._moved_to(self._position + len(data))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self._position + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < 0:
            raise ValueError("the decompressed content seeks from its start or the current position only")
        self._moved_to(target)
        with _refusing_bad_gzip():
            self._position = self._gzip.seek(target)
        return self._position

    def _moved_to(self, position: int) -> None:
        if position > self._max_bytes:
            raise FileRefused(f"the file is larger than {self._max_bytes} bytes once decompressed")
        self._position = position

    def close(self) -> None:
        self._gzip.close()
        super().close()


@contextmanager
def _refusing_bad_gzip() -> Iterator[None]:
    """Turns gzip's complaints about the data into FileRefused; an error reading the stored file stays what it is
    (it may pass, the file is not at fault)."""
    try:
        yield
    except EOFError as error:
        raise FileRefused(_TRUNCATED) from error
    except (gzip.BadGzipFile, zlib.error) as error:
        raise FileRefused(f"the file is not a valid gzip file: {error}") from error


def _content_head(head: bytes, compressed: bool) -> _Head:
    # A head shorter than HEAD_BYTES is the whole stored file (sniff's contract).
    stored_complete = len(head) < HEAD_BYTES
    if not compressed:
        return _Head(head, stored_complete)
    data = b""
    rest = head
    try:
        while len(data) < HEAD_BYTES:  # one round per gzip member
            member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            data += member.decompress(rest, HEAD_BYTES - len(data))
            if not member.eof:
                if stored_complete and not member.unconsumed_tail and len(data) < HEAD_BYTES:
                    raise FileRefused(_TRUNCATED)
                return _Head(data, False)
            rest = member.unused_data
            if not rest.strip(b"\x00"):  # gzip tolerates zero padding after the last member
                return _Head(data, stored_complete)
    except zlib.error as error:
        raise FileRefused(f"the file is not a valid gzip file: {error}") from error
    return _Head(data, False)


def _text(content: _Head) -> str:
    """The head as text; refuses a binary file. A character cut at the head's end is left out."""
    data = content.data
    if b"\x00" in data:
        raise FileRefused("not a text file: it contains NUL bytes")
    try:
        return data.decode()
    except UnicodeDecodeError as error:
        if not content.complete and error.end == len(data) and error.reason == "unexpected end of data":
            return data[: error.start].decode()
        line = data.count(b"\n", 0, error.start) + 1
        raise FileRefused(f"not a text file: line {line} is not valid UTF-8 (save the file as UTF-8)") from None


def _format(name: str, first: str, text: str, complete: bool) -> ImportFormat:
    named, extension = _named_format(name)
    if named is ImportFormat.CSV and first in "[{":
        raise FileRefused(f"the file is named {extension} but holds JSON")
    if named is ImportFormat.JSON_LINES and first != "{":
        raise FileRefused(f"the file is named {extension} but does not start with a JSON object ('{{')")
    if named is ImportFormat.JSON_ARRAY and first not in "[{":
        raise FileRefused(f"the file is named {extension} but starts with neither '[' (an array) nor '{{'")
    if named is ImportFormat.JSON_LINES or named is ImportFormat.CSV:
        return named
    if first == "[":
        return ImportFormat.JSON_ARRAY
    if first == "{":
        _check_first_line_whole(text, complete)
        return ImportFormat.JSON_LINES
    return ImportFormat.CSV


def _named_format(name: str) -> tuple[ImportFormat | None, str]:
    lower = name.lower().rsplit("/", 1)[-1].removesuffix(".gz")
    for extension, named in _EXTENSIONS:
        if lower.endswith(extension):
            return named, extension
    return None, ""


def _check_first_line_whole(text: str, complete: bool) -> None:
    """A file read as JSON Lines because it starts with `{` must have a whole JSON value on its first line."""
    body = text.lstrip(_BLANK)
    end = body.find("\n")
    if end < 0 and not complete:
        return  # a first line longer than the head: its row will say so
    try:
        orjson.loads(body if end < 0 else body[:end])
    except orjson.JSONDecodeError:
        raise FileRefused(
            "the file starts with '{' but its first line is not a whole JSON object: give a JSON array of "
            "readings, or JSON Lines (one reading object per line)"
        ) from None


def _csv_header(text: str, complete: bool) -> tuple[tuple[str, ...], str]:
    """The canonical column names of the CSV header at the start of `text` (BOM removed), and the text up to the
    end of the header's line, blank lines before it included."""
    lines = split_lines(text)
    reader = csv.reader(iter(lines), strict=True)
    try:
        cells = next((cells for cells in reader if cells and (len(cells) > 1 or cells[0].strip())), None)
    except csv.Error as error:
        if "new-line character" in str(error):
            raise FileRefused(
                "the CSV header holds a lone carriage return: save the file with LF or CRLF line ends"
            ) from None
        if complete or reader.line_num < len(lines):
            raise FileRefused(f"the CSV header is not valid CSV: {error}") from None
        cells = None
    if cells is None:
        if complete:
            raise FileRefused("the file is empty")
        raise FileRefused(f"the CSV header is longer than {HEAD_BYTES} bytes")
    used = reader.line_num
    if used == len(lines) and not complete and not lines[-1].endswith("\n"):
        raise FileRefused(f"the CSV header is longer than {HEAD_BYTES} bytes")
    return _columns(cells), "".join(lines[:used])


def split_lines(text: str) -> list[str]:
    """`text` cut after each line feed and only there (a lone CR or a Unicode line separator ends no line), the
    line ends kept."""
    lines = text.splitlines(keepends=True)
    if len(lines) == text.count("\n") + (not text.endswith("\n") and bool(text)):
        return lines  # str.splitlines cut nowhere else: the common case, at C speed
    pieces = text.split("\n")
    last = pieces.pop()
    lines = [piece + "\n" for piece in pieces]
    if last:
        lines.append(last)
    return lines


def _columns(cells: list[str]) -> tuple[str, ...]:
    names = tuple(cell.strip().lower() for cell in cells)
    for number, (cell, name) in enumerate(zip(cells, names, strict=True), start=1):
        if not name:
            raise FileRefused(f"the CSV header has a column without a name (column {number})")
        if name not in COLUMNS:
            if len(names) == 1 and (";" in name or "\t" in name):
                raise FileRefused("the CSV header must separate its columns with commas")
            shown = cell.strip()[:_SHOWN_NAME_LENGTH]
            raise FileRefused(
                f"the CSV header has an unknown column {shown!r}: the columns are {', '.join(REQUIRED_COLUMNS)}"
                f" and optionally {', '.join(OPTIONAL_COLUMNS)}"
            )
        if name in names[: number - 1]:
            raise FileRefused(f"the CSV header has the column {name!r} more than once")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise FileRefused(f"the CSV header lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return names
