"""Reading an import file's rows a chunk at a time, from a Position, possibly in another process each time; the
CSV and JSON Lines readers (the JSON array's is shared.imports.json_array). The whole API is importable from here.

`read_chunk` reads at most `max_rows` rows of the decompressed content (positioned at the Position: the one
`first_position` gives, or the `next` of the previous chunk) and says where the next chunk starts. Reading chunk
after chunk gives exactly the rows of one pass. Memory is bounded by the chunk, never the file: the content is
read in blocks of READ_BYTES, and a row longer than MAX_ROW_BYTES becomes one RowError without being held whole
(a CSV or JSON Lines reader skips to the next line end).

A row's line is the 1-based physical line (ended by LF or CRLF; a lone CR ends none) of the decompressed file where
it starts, as an editor shows it: the CSV header is line 1 (after a BOM), and blank lines are skipped but counted.

- CSV: RFC 4180 through the stdlib csv module in strict mode: a quoted field may hold commas, doubled quotes and
  line ends; a quote inside an unquoted field is kept as it is. Cells are strings, an empty one None, none
  trimmed; the value cell becomes an int or a float when it is a number literal (`12`, `-3.5`, `1e3`), and stays
  a string otherwise (`nan`, `0x1F`, `1_000`, ` 12`) for the reading rules to refuse. A row whose number of fields
  is not the header's, or that is not valid UTF-8 or not valid CSV (an unclosed quote, text after a closing
  quote) is a RowError. A record that grows past MAX_ROW_BYTES (after an unclosed quote, say) is cut at the end of
  the line where it does, and the next row starts on the line after.
- JSON Lines: each non-blank line is `orjson.loads` of it, whatever JSON value it holds.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import orjson

from shared.imports.formats import (
    HEAD_BYTES,
    MAX_ROW_BYTES,
    NOT_UTF8,
    READ_BYTES,
    TOO_LONG,
    Chunk,
    FileRefused,
    ImportFormat,
    Layout,
    Position,
    Row,
    RowError,
    first_position,
    open_content,
    sniff,
    split_lines,
)
from shared.imports.json_array import json_problem, read_json_array, utf8_size

__all__ = [  # the whole API of the import's parsing, including what shared.imports.formats defines
    "HEAD_BYTES",
    "MAX_ROW_BYTES",
    "Chunk",
    "FileRefused",
    "ImportFormat",
    "Layout",
    "Position",
    "Row",
    "RowError",
    "first_position",
    "open_content",
    "read_chunk",
    "sniff",
]

_number_literal = re.compile(r"[-+]?(?:[0-9]+(\.[0-9]*)?|(\.[0-9]+))([eE][-+]?[0-9]+)?").fullmatch
_ROW_BYTES_GUESS = 128  # a reading takes 50 to 150 bytes as a CSV row or JSON object
_LEAST_READ_BYTES = 64 * 1024
_CSV_PROBLEMS = {  # the csv module's messages, as a user would understand them
    "unexpected end of data": "a quoted field is not closed before the end of the file",
    "new-line character seen in unquoted field": "a field holds a lone carriage return",
    "',' expected after '\"'": "a closing quote must be followed by ',' or the end of the line",
}


def read_chunk(content: BinaryIO, layout: Layout, position: Position, max_rows: int, file_max_rows: int) -> Chunk:
    """At most `max_rows` rows from `position`, where `content` stands. Raises FileRefused when the file has more
    than `file_max_rows` rows in all (blank lines are no rows), or for a gzip stream that is corrupt or too large."""
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    allowed = file_max_rows - position.rows
    limit = max(0, min(max_rows, allowed + 1))  # one more than allowed tells that there is one too many
    # A small chunk reads small blocks: what is read past its last row is read again by the next chunk.
    read_size = max(_LEAST_READ_BYTES, min(READ_BYTES, limit * _ROW_BYTES_GUESS))
    if layout.format is ImportFormat.CSV:
        if layout.header is None:
            raise ValueError("a CSV layout has a header")
        chunk = _read_csv(_line_blocks(content, read_size), layout.header, position, limit)
    elif layout.format is ImportFormat.JSON_LINES:
        chunk = _read_json_lines(_line_blocks(content, read_size), position, limit)
    else:
        chunk = read_json_array(content, position, limit, read_size)
    if len(chunk.rows) > allowed:
        raise FileRefused(f"the file has more than {file_max_rows} rows")
    return chunk


def _line_blocks(content: BinaryIO, read_size: int) -> Iterator[bytes | int]:
    """The content from where it stands as blocks of whole lines (the last may lack its line end); a line that grows
    past its block and MAX_ROW_BYTES is skipped unread and given as its size in bytes instead. Where the blocks are
    cut changes no row."""
    rest = b""
    while True:
        data = content.read(read_size)
        if not data:
            if rest:
                yield rest
            return
        if rest:
            data = rest + data
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data if cut == len(data) else data[:cut]
        rest = data[cut:]
        if len(rest) > MAX_ROW_BYTES + 2:  # already too long, whatever its line end
            skipped, rest = _skip_line(content, read_size)
            yield len(data) - cut + skipped


def _skip_line(content: BinaryIO, read_size: int) -> tuple[int, bytes]:
    """Reads past the next line end: the bytes skipped, line end included, and those read after it."""
    skipped = 0
    while True:
        data = content.read(read_size)
        end = data.find(b"\n") + 1
        if end or not data:
            return skipped + (end or len(data)), data[end:]
        skipped += len(data)


def _content_length(line: bytes) -> int:
    """The bytes of a line without its line end."""
    if line.endswith(b"\n"):
        line = line[:-1]
    return len(line) - line.endswith(b"\r")


# JSON Lines


def _read_json_lines(blocks: Iterator[bytes | int], position: Position, limit: int) -> Chunk:
    rows: list[Row | RowError] = []
    line, offset = position.line, position.offset
    if limit == 0:
        return Chunk(rows, position)
    for block in blocks:
        if isinstance(block, int):
            rows.append(RowError(line, "", TOO_LONG))
            line, offset = line + 1, offset + block
            if len(rows) == limit:
                return Chunk(rows, Position(offset, line, position.rows + len(rows)))
            continue
        lines = block.split(b"\n")
        if not lines[-1]:
            lines.pop()
        for index, text in enumerate(lines):
            row = _json_line(text, line + index)
            if row is not None:
                rows.append(row)
                if len(rows) == limit:
                    used = lines[: index + 1]
                    end = offset + min(len(block), sum(map(len, used)) + len(used))
                    return Chunk(rows, Position(end, line + index + 1, position.rows + len(rows)))
        line, offset = line + len(lines), offset + len(block)
    return Chunk(rows, None)


def _json_line(text: bytes, line: int) -> Row | RowError | None:
    """The row of one line, None for a blank one."""
    if len(text) > MAX_ROW_BYTES and _content_length(text) > MAX_ROW_BYTES:
        return RowError(line, "", TOO_LONG)
    try:
        return Row(line, orjson.loads(text))
    except orjson.JSONDecodeError as error:
        return RowError(line, "", json_problem(error)) if text.strip() else None


# CSV


def _read_csv(blocks: Iterator[bytes | int], header: tuple[str, ...], position: Position, limit: int) -> Chunk:
    rows: list[Row | RowError] = []
    source = _CsvLines(blocks)
    reader = csv.reader(source.lines(), strict=True)
    width, value_at, first_line = len(header), header.index("value"), position.line
    while len(rows) < limit:
        start = source.start = reader.line_num
        try:
            cells = next(reader)
        except StopIteration:
            return Chunk(rows, None)
        except csv.Error as error:
            rows.append(RowError(first_line + start, "", source.take_mark() or _csv_problem(error)))
            continue
        if source.mark is not None:
            rows.append(RowError(first_line + start, "", source.mark))
            source.mark = None
        elif len(cells) == width:
            rows.append(Row(first_line + start, _csv_item(header, cells, value_at)))
        elif cells and (len(cells) > 1 or cells[0].strip()):
            rows.append(RowError(first_line + start, "", f"has {len(cells)} fields, the header has {width}"))
    used = reader.line_num
    return Chunk(
        rows, Position(position.offset + source.bytes_of(used), position.line + used, position.rows + len(rows))
    )


def _csv_item(header: tuple[str, ...], cells: list[str], value_at: int) -> dict[str, object]:
    item: dict[str, object] = dict(zip(header, cells, strict=False))  # as many cells as names: checked before
    if "" in cells:
        for name, cell in item.items():
            if cell == "":
                item[name] = None
    value = cells[value_at]
    number = _number_literal(value)
    if number is not None:
        item["value"] = float(value) if number.lastindex else _integer(value)  # a group: a fraction or an exponent
    return item


def _integer(literal: str) -> int | float:
    try:
        return int(literal)
    except ValueError:  # more digits than int() takes from a string
        return float(literal)


def _csv_problem(error: csv.Error) -> str:
    message = str(error)
    for known, said in _CSV_PROBLEMS.items():
        if message.startswith(known):
            return f"is not valid CSV: {said}"
    return f"is not valid CSV: {message}"


@dataclass(slots=True)
class _TextBlock:
    """A block of whole lines, decoded for csv.reader."""

    lines: list[str]
    size: int  # bytes
    ascii: bool  # one byte per character
    plain: bool = False  # no quote, nothing marked
    marks: dict[int, str] = field(default_factory=dict)  # line index -> why it can be part of no row
    replaced: dict[int, int] = field(default_factory=dict)  # line index -> bytes of a long line given as a blank one

    def bytes_before(self, count: int) -> int:
        """The bytes of the block's first `count` lines."""
        if count >= len(self.lines):
            return self.size
        text = "".join(self.lines[:count])
        size = len(text) if self.ascii else utf8_size(text)
        return size + sum(self.replaced[index] - 1 for index in self.replaced if index < count)  # each given as "\n"


def _text_block(block: bytes | int) -> _TextBlock:
    if isinstance(block, int):
        return _TextBlock(["\n"], block, False, False, {0: TOO_LONG}, {0: block})
    try:
        text = block.decode()
    except UnicodeDecodeError:
        decoded = _text_block_line_by_line(block)
    else:
        decoded = _TextBlock(split_lines(text), len(block), len(text) == len(block), '"' not in text)
    if len(block) > MAX_ROW_BYTES and max(map(len, decoded.lines)) > MAX_ROW_BYTES // 4:  # 4 bytes a character
        _replace_long_lines(decoded)
    return decoded


def _text_block_line_by_line(block: bytes) -> _TextBlock:
    decoded = _TextBlock([], len(block), False)
    for index, line in enumerate(_split_at_lf(block)):
        try:
            decoded.lines.append(line.decode())
        except UnicodeDecodeError:
            decoded.lines.append(line.decode("utf-8", "surrogateescape"))
            decoded.marks[index] = NOT_UTF8
    return decoded


def _split_at_lf(block: bytes) -> list[bytes]:
    pieces = block.split(b"\n")
    last = pieces.pop()
    return [piece + b"\n" for piece in pieces] + ([last] if last else [])


def _replace_long_lines(decoded: _TextBlock) -> None:
    for index, line in enumerate(decoded.lines):
        if len(line) > MAX_ROW_BYTES // 4:
            raw = line.encode("utf-8", "surrogateescape")
            if _content_length(raw) > MAX_ROW_BYTES:
                decoded.lines[index] = "\n"
                decoded.marks[index] = TOO_LONG
                decoded.replaced[index] = len(raw)
                decoded.plain = False


class _CsvLines:
    """The physical lines of CSV content, one at a time for csv.reader, and what the reader cannot see.

    The reading loop sets `start` to the index of a record's first line before each record: a line asked for past
    it continues a quoted field, and a record that grows past MAX_ROW_BYTES is cut there (a '"' closes the field).
    `mark` says why the record just read is no row: a line too long, or not valid UTF-8."""

    def __init__(self, blocks: Iterator[bytes | int]) -> None:
        self._blocks = blocks
        self.start = 0
        self.mark: str | None = None
        self._block = _TextBlock([], 0, True)  # the block being read
        self._first = 0  # the index of its first line
        self._bytes_before = 0  # the bytes of the blocks before it

    def take_mark(self) -> str | None:
        mark, self.mark = self.mark, None
        return mark

    def bytes_of(self, count: int) -> int:
        """The bytes of the first `count` lines given (all read by then, in the block being read)."""
        return self._bytes_before + self._block.bytes_before(count - self._first)

    def lines(self) -> Iterator[str]:
        index = 0
        record = 0  # the bytes of a record that runs past its first line
        previous = ""
        for block in self._blocks:
            self._bytes_before += self._block.size
            self._block, self._first = _text_block(block), index
            if self._block.plain and index == self.start:
                # Without a quote no record of the block runs past its line, and nothing is marked: no watching.
                yield from self._block.lines
                index += len(self._block.lines)
                continue
            marks, first = self._block.marks, index
            for line in self._block.lines:
                mark = marks.get(index - first) if marks else None
                if mark is not None and self.mark != TOO_LONG:  # a row too long is said so before anything else
                    self.mark = mark
                if index == self.start:
                    record = 0
                else:
                    record = (record or utf8_size(previous)) + utf8_size(line)
                    if record > MAX_ROW_BYTES or mark == TOO_LONG:
                        self.mark = TOO_LONG
                        line = '"\n'  # closes the quoted field: the record ends on this line
                previous = line
                index += 1
                yield line
