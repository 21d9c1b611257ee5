"""Reading the rows of a JSON array of readings from a position: each element is `orjson.loads` of its bytes.

An element may span lines and read blocks: a window of at least MAX_ROW_BYTES (and a margin) is decoded ahead of
each element, and the stdlib's JSON scanner (C speed) finds where the element ends. A position is just after the
`[` or a `,` that separates elements, or at the closing `]`.

- `]` ends the file; anything but blanks after it is one last RowError, and a file that ends before it gets one
  too. Leniently, a comma before `]` is accepted.
- An element followed by neither `,` nor `]` is a RowError, and reading goes on at what follows it.
- The extent of an element that is not valid JSON, or longer than MAX_ROW_BYTES, is unknown: reading resyncs at
  the next `}` `,` `{` (the boundary between two objects) and, without one, at the end of the file. A string that
  holds `}, {` inside such an element may mislead it; the file is broken there anyway, and no FileRefused is
  raised for it.
"""

from __future__ import annotations

import json
import re
from typing import BinaryIO

import orjson

from shared.imports.formats import (
    MAX_ROW_BYTES,
    NOT_UTF8,
    TOO_LONG,
    Chunk,
    Position,
    Row,
    RowError,
)

UNCLOSED = "is not valid JSON: the file ends before the array's closing ']'"
AFTER_CLOSE = "is not valid JSON: there is more after the array's closing ']'"
NO_SEPARATOR = "is not valid JSON: ',' or ']' expected after it"
NO_ELEMENT = "is not valid JSON: a ',' where a value should be"
_NEXT_OBJECT = re.compile(r"\}[ \t\n\r]*,(?=[ \t\n\r]*\{)")  # where to resync after a broken element
_WINDOW_BYTES = MAX_ROW_BYTES + 4096  # decoded ahead of an element: it is whole in there unless too long
_OVERLAP = 4096  # kept when a resync search moves on to the next window
_LINE_GUESS = 4096  # an element alone on a line no longer than this is read without a scan
# Finds where an element ends; orjson then reads its bytes, as for JSON Lines. NaN and the like only end an
# element here: orjson refuses them.
_scan = json.JSONDecoder(parse_constant=lambda name: None).raw_decode
_blanks = re.compile(r"[ \t\n\r]*").match
_separator = re.compile(r"[ \t\n\r]*(,?)[ \t\n\r]*").match


def json_problem(error: orjson.JSONDecodeError, column: bool = True) -> str:
    """The RowError message of a line or element orjson refuses; `column` for a line, where it is the editor's."""
    if error.msg.startswith("str is not valid UTF-8"):
        return NOT_UTF8
    return f"is not valid JSON: {error.msg}{f' (column {error.colno})' if column else ''}"


def utf8_size(text: str) -> int:
    """The bytes of text decoded with surrogateescape, as they were."""
    return len(text.encode("utf-8", "surrogateescape"))


def read_json_array(content: BinaryIO, position: Position, limit: int, read_size: int) -> Chunk:
    """At most `limit` rows of the array from `position`, where `content` stands, read `read_size` bytes at a time."""
    rows: list[Row | RowError] = []
    window = _Window(content, position, read_size)
    pos, ahead = _skip_blanks(window, 0)
    while len(rows) < limit:
        if ahead == "":
            rows.append(RowError(window.line(pos), "", UNCLOSED))
            return Chunk(rows, None)
        if ahead == "]":
            pos, ahead = _skip_blanks(window, pos + 1)
            if ahead:
                rows.append(RowError(window.line(pos), "", AFTER_CLOSE))
            return Chunk(rows, None)
        if ahead == ",":
            rows.append(RowError(window.line(pos), "", NO_ELEMENT))
            pos, ahead = _skip_blanks(window, pos + 1)
            continue
        row, pos = _element(window, pos)
        if pos < 0:  # a broken element ran to the end of the file
            rows.append(row)
            return Chunk(rows, None)
        pos, ahead, separated = _next_element(window, pos)
        if not separated and ahead not in ("]", "") and isinstance(row, Row):
            row = RowError(row.line, "", NO_SEPARATOR)
        rows.append(row)
    if ahead == "]" and window.ends_after(pos):
        return Chunk(rows, None)
    return Chunk(rows, Position(window.offset(pos), window.line(pos), position.rows + len(rows)))


class _Window:
    """The array's text decoded a window at a time, ahead of the reading: at least _WINDOW_BYTES after where it
    stands, or the rest of the file. Positions are the window's characters; offsets and lines are the file's."""

    def __init__(self, content: BinaryIO, position: Position, read_size: int) -> None:
        self._content, self._read_size = content, read_size
        self._data = b""
        self.text = ""
        self.eof = False
        self._ascii = True
        self._offset = position.offset  # that of text[0]
        self._line_at, self._line = 0, position.line  # a position of the window and its line
        self._newline = -1  # the first line feed at or after some position, len(text) for none

    def fill(self, pos: int) -> int:
        """Reads on when fewer than _WINDOW_BYTES follow `pos`; the same character's position afterwards."""
        if self.eof or len(self.text) - pos >= _WINDOW_BYTES:  # characters: as many bytes at least
            return pos
        self._line = self.line(pos)
        cut = self._bytes_before(pos)
        self._offset += cut
        data = self._data[cut:]
        while len(data) < _WINDOW_BYTES:
            more = self._content.read(self._read_size)
            if not more:
                self.eof = True
                break
            data += more
        # surrogateescape keeps every byte, a character cut at the window's end and invalid UTF-8 included: each
        # encodes back to the same bytes, so offsets stay exact; orjson says later whether an element is UTF-8.
        self._data, self.text = data, data.decode("utf-8", "surrogateescape")
        self._ascii, self._line_at, self._newline = len(self.text) == len(data), 0, -1
        return 0

    def newline(self, pos: int) -> int:
        """The first line feed at or after `pos`, len(text) for none; a minified array is searched once, not once
        per element."""
        if self._newline < pos:
            found = self.text.find("\n", pos)
            self._newline = len(self.text) if found < 0 else found
        return self._newline

    def line(self, pos: int) -> int:
        """The line of `pos`, counted on from the last one asked for."""
        if pos >= self._line_at:
            self._line += self.text.count("\n", self._line_at, pos)
        else:
            self._line -= self.text.count("\n", pos, self._line_at)
        self._line_at = pos
        return self._line

    def offset(self, pos: int) -> int:
        return self._offset + self._bytes_before(pos)

    def bytes(self, start: int, end: int) -> bytes:
        if self._ascii:
            return self._data[start:end]
        return self.text[start:end].encode("utf-8", "surrogateescape")

    def ends_after(self, pos: int) -> bool:
        """Whether only blanks follow `pos` to the end of the file, as far as the window shows without reading on."""
        return self.eof and not self.text[pos + 1 :].strip(" \t\n\r")

    def _bytes_before(self, pos: int) -> int:
        return pos if self._ascii else utf8_size(self.text[:pos])


def _skip_blanks(window: _Window, pos: int) -> tuple[int, str]:
    """The position after the blanks at `pos` (reading on as far as they go) with the window filled from there, and
    the character there, "" at the end of the file."""
    while True:
        blanks = _blanks(window.text, pos)
        assert blanks is not None  # matches the empty string too
        pos = blanks.end()
        if pos < len(window.text):
            pos = window.fill(pos)
            return pos, window.text[pos]
        if window.eof:
            return pos, ""
        pos = window.fill(pos)


def _next_element(window: _Window, pos: int) -> tuple[int, str, bool]:
    """From the end of an element, past blanks and a comma: where the next element starts, the character there
    ("" at the end of the file) and whether a comma was there."""
    found = _separator(window.text, pos)
    assert found is not None  # matches the empty string too
    if found.end() + _WINDOW_BYTES <= len(window.text):  # the common case: no need to read on
        return found.end(), window.text[found.end()], bool(found.group(1))
    pos, ahead = _skip_blanks(window, pos)
    if ahead != ",":
        return pos, ahead, False
    return (*_skip_blanks(window, pos + 1), True)


def _element(window: _Window, pos: int) -> tuple[Row | RowError, int]:
    """The row of the element at `pos` and the position after it; -1 when a broken element ran to the file's end."""
    line = window.line(pos)
    end = window.newline(pos)
    if end - pos <= _LINE_GUESS and end < len(window.text):
        # Alone on the rest of its line (but blanks and commas), an element is read by orjson without the scan: a
        # JSON value is no prefix of another one (a number does not span lines) and only blanks may follow it.
        end = pos + len(window.text[pos:end].rstrip(" \t\r,"))
        try:
            return Row(line, orjson.loads(window.bytes(pos, end))), end
        except orjson.JSONDecodeError:
            pass  # more on the line, or an element spanning lines: the scan finds its end
    try:
        end = _scan(window.text, pos)[1]
    except (ValueError, RecursionError) as error:  # not JSON to the stdlib, too deep, or longer than the window
        return _broken_element(window, pos, line, str(getattr(error, "msg", error)))
    return _sized_element(window, pos, end, line), end


def _sized_element(window: _Window, start: int, end: int, line: int) -> Row | RowError:
    raw = window.bytes(start, end)
    if len(raw) > MAX_ROW_BYTES:
        return RowError(line, "", TOO_LONG)
    try:
        return Row(line, orjson.loads(raw))
    except orjson.JSONDecodeError as error:  # orjson has the last word, as for JSON Lines
        return RowError(line, "", json_problem(error, column=False))


def _broken_element(window: _Window, pos: int, line: int, reason: str) -> tuple[Row | RowError, int]:
    """An element whose extent is unknown ends where the next object starts: orjson judges it when the window shows
    that (it reads some JSON the stdlib does not, such as very long integers); otherwise it is skipped."""
    found = _NEXT_OBJECT.search(window.text, pos)
    if found is not None:
        return _sized_element(window, pos, found.start() + 1, line), found.start() + 1
    start = window.offset(pos)
    while found is None and not window.eof:
        pos = window.fill(max(pos, len(window.text) - _OVERLAP))
        found = _NEXT_OBJECT.search(window.text, pos)
    end = len(window.text) if found is None else found.start() + 1
    problem = TOO_LONG if window.offset(end) - start > MAX_ROW_BYTES else f"is not valid JSON: {reason}"
    return RowError(line, "", problem), -1 if found is None else end
