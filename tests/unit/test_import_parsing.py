"""The bulk import's file parser, as a user importing a file would notice it: what is refused whole and why, which
rows come out with which line numbers, what each row's item holds, and that reading chunk by chunk, each chunk
from a fresh stream as another process would, gives exactly the rows of one pass."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import tracemalloc
from datetime import timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.imports.formats import READ_BYTES, TOO_LONG
from shared.imports.parsing import (
    HEAD_BYTES,
    MAX_ROW_BYTES,
    Chunk,
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
from shared.readings.rules import (
    DEFAULT_METRICS,
    TIMESTAMP_MESSAGE,
    TRIGGER_POLICY,
    ReadingPolicy,
    Violation,
    check_reading,
)

HEADER = b"sensor_id,metric,value,timestamp\n"
UNLIMITED = 10**12


def read_all(
    name: str,
    data: bytes,
    chunk: int = 1000,
    max_rows: int = UNLIMITED,
    max_bytes: int = UNLIMITED,
    layout: Layout | None = None,
) -> list[Row | RowError]:
    """Every row of the file, a chunk at a time; each chunk starts from a fresh stream and a position that went
    through JSON, as the next activity of an import would."""
    head = data[:HEAD_BYTES]
    layout = layout or sniff(name, head, max_bytes)
    position: Position | None = first_position(layout, head)
    rows: list[Row | RowError] = []
    while position is not None:
        position = Position.from_json(json.loads(json.dumps(position.to_json())))
        content = open_content(io.BytesIO(data), layout, max_bytes)
        content.seek(position.offset)
        result = read_chunk(content, layout, position, chunk, max_rows)
        assert len(result.rows) <= chunk
        rows += result.rows
        if result.next is not None:
            assert result.next.rows == len(rows)
        position = result.next
    return rows


def read_all_measured(name: str, data: bytes) -> tuple[list[Row | RowError], int]:
    """The rows, and the most memory reading them took at once."""
    tracemalloc.start()
    try:
        return read_all(name, data), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def items(rows: list[Row | RowError]) -> list[object]:
    assert all(isinstance(row, Row) for row in rows), [row for row in rows if isinstance(row, RowError)]
    return [row.item for row in rows if isinstance(row, Row)]


def lines(rows: list[Row | RowError]) -> list[int]:
    return [row.line for row in rows]


def good(rows: list[Row | RowError]) -> list[tuple[int, object]]:
    return [(row.line, row.item) for row in rows if isinstance(row, Row)]


def errors(rows: list[Row | RowError]) -> list[tuple[int, str]]:
    return [(row.line, row.message) for row in rows if isinstance(row, RowError)]


def reading(number: int, **changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "sensor_id": f"sensor-{number % 7}",
        "metric": "temperature",
        "value": 20 + number % 10 / 4,
        "timestamp": f"2026-03-01T12:{number % 60:02d}:00Z",
    }
    item.update(changes)
    return item


def csv_rows(count: int, start: int = 0) -> bytes:
    """The CSV rows (under HEADER) of `reading(start)` and the following ones."""
    return "".join(
        "{sensor_id},{metric},{value},{timestamp}\n".format(**reading(number)) for number in range(start, start + count)
    ).encode()


# What the cheap check says about a file


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("readings.csv", HEADER, ImportFormat.CSV),
        ("READINGS.CSV", HEADER, ImportFormat.CSV),
        ("folder/readings.jsonl", b'{"a": 1}\n', ImportFormat.JSON_LINES),
        ("readings.ndjson", b'{"a": 1}\n', ImportFormat.JSON_LINES),
        ("readings.json", b'[{"a": 1}]', ImportFormat.JSON_ARRAY),
        # JSON Lines under .json, as many tools write them
        ("readings.json", b'{"a": 1}\n{"a": 2}\n', ImportFormat.JSON_LINES),
        ("readings.csv.gz", HEADER, ImportFormat.CSV),  # named .gz but not compressed: read as it is
        ("readings", b'\n  [{"a": 1}]', ImportFormat.JSON_ARRAY),
        ("readings.txt", b'{"a": 1}\n', ImportFormat.JSON_LINES),
        ("upload", HEADER, ImportFormat.CSV),
    ],
)
def test_the_format_comes_from_the_name_else_from_the_first_character(
    name: str, data: bytes, expected: ImportFormat
) -> None:
    layout = sniff(name, data, UNLIMITED)
    assert (layout.format, layout.gzip) == (expected, False)
    assert layout.header == (("sensor_id", "metric", "value", "timestamp") if expected is ImportFormat.CSV else None)


@pytest.mark.parametrize("name", ["readings.csv", "readings.csv.gz", "blob-without-extension"])
def test_gzip_is_known_by_its_magic_bytes_whatever_the_name(name: str) -> None:
    data = gzip.compress(HEADER + csv_rows(3))
    layout = sniff(name, data[:HEAD_BYTES], UNLIMITED)
    assert layout == Layout(ImportFormat.CSV, True, ("sensor_id", "metric", "value", "timestamp"))
    assert items(read_all(name, data)) == [reading(n) for n in range(3)]


def test_header_names_are_trimmed_case_free_in_any_order_with_optional_columns() -> None:
    data = (
        b"\xef\xbb\xbf Timestamp ,VALUE,source,Sensor_ID,  metric,Unit,id\r\n"
        b"2026-03-01T12:00:00Z,21.5,gw-1,s1,temperature,C,r-1\r\n"
    )
    layout = sniff("readings.csv", data, UNLIMITED)
    assert layout.header == ("timestamp", "value", "source", "sensor_id", "metric", "unit", "id")
    assert items(read_all("readings.csv", data)) == [
        {
            "timestamp": "2026-03-01T12:00:00Z",
            "value": 21.5,
            "source": "gw-1",
            "sensor_id": "s1",
            "metric": "temperature",
            "unit": "C",
            "id": "r-1",
        }
    ]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("readings.csv", b"", "the file is empty"),
        ("readings.csv", b"\xef\xbb\xbf\r\n  \n\n", "the file is empty"),
        ("readings.csv.gz", gzip.compress(b""), "the file is empty"),
        ("readings.csv", b"sensor_id,metric,timestamp\n", "the CSV header lacks the column value"),
        ("readings.csv", b"sensor_id,timestamp\n", "the CSV header lacks the columns metric, value"),
        ("readings.csv", b"sensor_id,metric,value,timestamp,Temp\n", "the CSV header has an unknown column 'Temp'"),
        (
            "readings.csv",
            b"sensor_id,metric,Value,timestamp, value \n",
            "the CSV header has the column 'value' more than once",
        ),
        (
            "readings.csv",
            b"sensor_id,metric,value,timestamp,\n",
            "the CSV header has a column without a name (column 5)",
        ),
        ("readings.csv", b"sensor_id;metric;value;timestamp\n", "the CSV header must separate its columns with commas"),
        (
            "readings.csv",
            b"sensor_id,metric,value,timestamp\rs1,temperature,1,t\r",
            "the CSV header holds a lone carriage return",
        ),
        ("readings.csv", b'[{"sensor_id": "s1"}]', "the file is named .csv but holds JSON"),
        ("readings.jsonl", b'[{"sensor_id": "s1"}]', "the file is named .jsonl but does not start with a JSON object"),
        ("readings.json", HEADER, "the file is named .json but starts with neither '[' (an array) nor '{'"),
        (
            "readings.json",
            b'{\n  "sensor_id": "s1"\n}\n',
            "the file starts with '{' but its first line is not a whole JSON object",
        ),
        ("readings.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file: it contains NUL bytes"),
        (
            "readings.csv",
            b"sensor_id,metric,value,timestamp\n\xff\xfe\xfd\n",
            "not a text file: line 2 is not valid UTF-8",
        ),
        (
            "readings.csv",
            "sensor_id,metric,value,timestamp,unit\ns1,temperature,21,t,°C\n".encode("latin-1"),
            "not a text file: line 2 is not valid UTF-8 (save the file as UTF-8)",
        ),
        ("readings.csv", b"\x1f\x8b\x08\x00garbage that is no deflate stream", "the file is not a valid gzip file"),
        ("readings.csv", gzip.compress(HEADER + csv_rows(50))[:-30], "the gzip file is truncated"),
    ],
)
def test_a_file_that_cannot_be_imported_whole_is_refused_with_a_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(FileRefused) as refused:
        sniff(name, data[:HEAD_BYTES], UNLIMITED)
    assert refused.value.reason.startswith(reason), refused.value.reason


def test_binary_content_is_refused_also_inside_gzip() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 10
    with pytest.raises(FileRefused, match="not a text file: it contains NUL bytes"):
        sniff("photo.png.gz", gzip.compress(png), UNLIMITED)


def test_a_head_larger_than_the_limit_is_refused() -> None:
    with pytest.raises(FileRefused, match="larger than 2048 bytes once decompressed"):
        sniff("readings.csv.gz", gzip.compress(HEADER + csv_rows(200)), 2048)


def test_a_character_cut_at_the_end_of_the_head_is_no_reason_to_refuse() -> None:
    filler = csv_rows(HEAD_BYTES // 40)
    data = HEADER + filler[: HEAD_BYTES - len(HEADER) - 1] + "°".encode()  # the head ends inside '°'
    assert sniff("readings.csv", data[:HEAD_BYTES], UNLIMITED).format is ImportFormat.CSV


@pytest.mark.parametrize(
    ("name", "data", "first", "line"),
    [
        ("readings.csv", b"\xef\xbb\xbf\n\r\nsensor_id,metric,value,timestamp\r\ns1", b"s1", 4),
        ("readings.jsonl", b'\xef\xbb\xbf{"a": 1}', b"{", 1),
        ("readings.json", b'\xef\xbb\xbf \n\n [{"a": 1}]', b"{", 3),
    ],
)
def test_the_first_row_starts_after_the_bom_the_header_and_blank_lines(
    name: str, data: bytes, first: bytes, line: int
) -> None:
    layout = sniff(name, data, UNLIMITED)
    expected = Position(data.index(first), line, 0)
    assert first_position(layout, data) == expected
    assert first_position(Layout(layout.format, True, layout.header), gzip.compress(data)) == expected


def test_a_position_goes_through_json_and_nothing_else_passes_for_one() -> None:
    position = Position(1234, 56, 78)
    assert Position.from_json(json.loads(json.dumps(position.to_json()))) == position
    for bad in (
        {"offset": 1, "line": 0, "rows": 0},
        {"offset": -1, "line": 1, "rows": 0},
        {"offset": True, "line": 1, "rows": 0},
        {"offset": 1, "line": 1},
        {"offset": "1", "line": 1, "rows": 0},
    ):
        with pytest.raises(ValueError):
            Position.from_json(bad)


# CSV rows


def test_quoted_fields_hold_commas_doubled_quotes_and_line_ends() -> None:
    data = (
        b"sensor_id,metric,value,timestamp,source\n"
        b'"s,1",temperature,21.5,2026-03-01T12:00:00Z,"the ""north"" gateway"\n'
        b's2,temperature,"22",2026-03-01T12:00:00Z,"two\nlines"\n'
        b's3,temperature,23,2026-03-01T12:00:00Z,"crlf\r\ninside"\r\n'
        b"s4,temperature,24,2026-03-01T12:00:00Z,plain\n"
    )
    rows = read_all("readings.csv", data)
    assert lines(rows) == [2, 3, 5, 7]
    assert [(item["sensor_id"], item["source"]) for item in items(rows) if isinstance(item, dict)] == [
        ("s,1", 'the "north" gateway'),
        ("s2", "two\nlines"),
        ("s3", "crlf\r\ninside"),
        ("s4", "plain"),
    ]


def test_crlf_bom_and_blank_lines_are_read_and_counted_but_give_no_rows() -> None:
    data = (
        b"\xef\xbb\xbf"
        + HEADER.replace(b"\n", b"\r\n")
        + b"\r\ns1,temperature,1,t\r\n   \r\n\t\r\ns2,temperature,2,t\r\n\r\n"
    )
    rows = read_all("readings.csv", data)
    assert lines(rows) == [3, 6]
    assert items(rows) == [
        {"sensor_id": "s1", "metric": "temperature", "value": 1, "timestamp": "t"},
        {"sensor_id": "s2", "metric": "temperature", "value": 2, "timestamp": "t"},
    ]


def test_a_row_with_more_or_fewer_fields_than_the_header_is_an_error_and_the_rest_goes_on() -> None:
    data = HEADER + b"s1,temperature,1,t,extra\ns2,temperature,2\ns3,temperature,3,t\n,,,\n"
    rows = read_all("readings.csv", data)
    assert errors(rows) == [(2, "has 5 fields, the header has 4"), (3, "has 3 fields, the header has 4")]
    assert [row.line for row in rows if isinstance(row, Row)] == [4, 5]
    assert rows[-1] == Row(5, {"sensor_id": None, "metric": None, "value": None, "timestamp": None})


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("12", 12),
        ("-3.5", -3.5),
        ("+7", 7),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("", None),
        ("abc", "abc"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("0x1F", "0x1F"),
        ("1_000", "1_000"),
        (" 12", " 12"),
        ("١٢", "١٢"),  # digits, but not ASCII ones
    ],
)
def test_the_value_cell_is_a_number_only_when_it_is_a_number_literal(cell: str, value: object) -> None:
    data = HEADER + f"s1,temperature,{cell},2026-03-01T12:00:00Z\n".encode()
    [row] = read_all("readings.csv", data)
    assert isinstance(row, Row) and isinstance(row.item, dict)
    assert row.item["value"] == value and type(row.item["value"]) is type(value)


def test_a_value_that_is_no_number_is_refused_by_the_reading_rules_as_such() -> None:
    rows = read_all("readings.csv", HEADER + b"s1,temperature,abc,2026-03-01T12:00:00Z\ns1,temperature,,t\n")
    policy = ReadingPolicy.ingest_api(DEFAULT_METRICS, timedelta(minutes=5), None)
    assert [check_reading(item, policy, "import") for item in items(rows)] == [
        [Violation("value", "must be a finite number")],
        [Violation("value", "is required"), Violation("timestamp", TIMESTAMP_MESSAGE)],
    ]


def test_quoting_that_breaks_csv_is_an_error_for_that_row_only() -> None:
    data = HEADER + b's1,temperature,"1"x,t\ns2,temperature,2,t\ns3,temperature,"3,t\n'
    rows = read_all("readings.csv", data)
    assert errors(rows) == [
        (2, "is not valid CSV: a closing quote must be followed by ',' or the end of the line"),
        (4, "is not valid CSV: a quoted field is not closed before the end of the file"),
    ]
    assert rows[1] == Row(3, {"sensor_id": "s2", "metric": "temperature", "value": 2, "timestamp": "t"})


def test_a_row_that_is_not_utf8_is_an_error_and_the_next_row_is_read() -> None:
    before = csv_rows(HEAD_BYTES // 40)  # past the head, which the cheap check would refuse
    data = HEADER + before + b"s1,temperature,1,caf\xe9\n" + b's2,"two\n\xfflines",2,t\n' + b"s3,temperature,3,t\n"
    rows = read_all("readings.csv", data)
    first = before.count(b"\n") + 2
    assert errors(rows) == [(first, "is not valid UTF-8"), (first + 1, "is not valid UTF-8")]
    assert rows[-1] == Row(first + 3, {"sensor_id": "s3", "metric": "temperature", "value": 3, "timestamp": "t"})


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
def test_a_huge_line_is_one_error_skipped_unread_and_the_next_row_parses(line_end: bytes) -> None:
    huge = b"s1,temperature,1," + b"x" * 20_000_000 + line_end
    data = HEADER + b"s0,temperature,0,t" + line_end + huge + b"s2,temperature,2,t" + line_end
    rows, peak = read_all_measured("readings.csv", data)
    assert errors(rows) == [(3, TOO_LONG)]
    assert lines(rows) == [2, 3, 4]
    assert peak < 6 * READ_BYTES  # a few read blocks, not the 20 MB line


def test_a_line_of_max_row_bytes_is_read_and_one_byte_more_is_too_long() -> None:
    source = "x" * (MAX_ROW_BYTES - len("s1,temperature,1,t,"))
    data = (
        b"sensor_id,metric,value,timestamp,source\r\n"
        + f"s1,temperature,1,t,{source}\r\n".encode()
        + f"s2,temperature,1,t,{source}y\r\n".encode()
    )
    rows = read_all("readings.csv", data)
    assert isinstance(rows[0], Row) and errors(rows) == [(3, TOO_LONG)]


def test_an_unclosed_quote_does_not_swallow_the_file() -> None:
    data = HEADER + b's1,temperature,"1,t\n' + csv_rows(3000)
    rows = read_all("readings.csv", data, chunk=100)
    assert errors(rows) == [(2, TOO_LONG)]
    cut = rows[1].line - 1  # the line where the record passed MAX_ROW_BYTES ends it
    assert MAX_ROW_BYTES // 60 < cut - 2 < MAX_ROW_BYTES // 40
    assert items(rows[1:]) == items(read_all("readings.csv", HEADER + csv_rows(3000 - (cut - 2), cut - 2)))
    assert rows[-1].line == 3002


# JSON Lines


def test_json_lines_give_each_line_as_json_and_errors_for_bad_lines() -> None:
    data = b'{"sensor_id": "s1", "value": 1}\r\n\r\n  \n[1, 2]\nnot json\n{"value": NaN}\n{"unit": "caf\xe9"}\n'
    data += b'{"value": 2}'
    rows = read_all("readings.jsonl", data, layout=Layout(ImportFormat.JSON_LINES, False, None))  # past the head
    assert good(rows) == [(1, {"sensor_id": "s1", "value": 1}), (4, [1, 2]), (8, {"value": 2})]
    assert [(line, message.split(":")[0]) for line, message in errors(rows)] == [
        (5, "is not valid JSON"),
        (6, "is not valid JSON"),
        (7, "is not valid UTF-8"),
    ]
    assert check_reading([1, 2], TRIGGER_POLICY, "import") == [Violation("", "must be a JSON object")]


def test_a_huge_json_line_is_one_error_and_the_next_line_parses() -> None:
    data = b'{"value": 1}\n{"source": "' + b"x" * 20_000_000 + b'"}\n{"value": 3}\n'
    rows, peak = read_all_measured("readings.jsonl", data)
    assert errors(rows) == [(2, TOO_LONG)]
    assert good(rows) == [(1, {"value": 1}), (3, {"value": 3})]
    assert peak < 6 * READ_BYTES


# JSON arrays


def test_array_elements_may_span_lines_and_keep_the_line_they_start_on() -> None:
    readings = [reading(n, unit="°C") for n in range(5)]
    data = json.dumps(readings, indent=2, ensure_ascii=False).encode()
    rows = read_all("readings.json", data, chunk=2)
    assert items(rows) == readings
    assert lines(rows) == [2 + 7 * n for n in range(5)]


def test_an_element_split_across_read_blocks_is_read_whole() -> None:
    element = orjson.dumps(reading(0, unit="°C"))
    before = READ_BYTES - element.index("°".encode())  # one pass reads from offset 1: '°' straddles its 2nd block
    filler = orjson.dumps(reading(1)) + b",\n"
    data = b"[" + filler * ((before - 1) // len(filler) - 1)
    data += b'{"source": "' + b"p" * (before - len(data) - len(b'{"source": ""},\n')) + b'"},\n'
    assert len(data) == before
    data += element + b",\n" + element + b"\n]\n"
    one_pass = read_all("readings.json", data, chunk=UNLIMITED)
    assert one_pass == read_all("readings.json", data, chunk=777)
    assert items(one_pass)[-2:] == [reading(0, unit="°C")] * 2


def test_an_array_ends_at_its_bracket_and_says_what_is_wrong_around_its_elements() -> None:
    data = b'[{"value": 1}, {"value": 2} {"value": 3},, {"value": NaN},\n{"value": 5},]\n trailing'
    rows = read_all("readings.json", data, chunk=2)
    assert good(rows) == [(1, {"value": 1}), (1, {"value": 3}), (2, {"value": 5})]
    assert errors(rows) == [
        (1, "is not valid JSON: ',' or ']' expected after it"),
        (1, "is not valid JSON: a ',' where a value should be"),
        (1, "is not valid JSON: unexpected character, expected a JSON value"),
        (3, "is not valid JSON: there is more after the array's closing ']'"),
    ]


def test_a_broken_element_is_skipped_up_to_the_next_object() -> None:
    data = b'[\n{"value": 1},\n{"value": oops, "unit": "C"},\n{"value": 3}\n]'
    rows = read_all("readings.json", data)
    assert good(rows) == [(2, {"value": 1}), (4, {"value": 3})]
    assert [line for line, _ in errors(rows)] == [3]


def test_a_huge_element_is_one_error_and_the_next_element_parses() -> None:
    data = b'[{"value": 1},\n {"source": "' + b"x" * 20_000_000 + b'"},\n {"value": 3}]'
    rows, peak = read_all_measured("readings.json", data)
    assert [(row.line, getattr(row, "item", None)) for row in rows] == [(1, {"value": 1}), (2, None), (3, {"value": 3})]
    assert errors(rows) == [(2, TOO_LONG)]
    assert peak < 6 * READ_BYTES
    for chunk in (1, 2):
        assert read_all("readings.json", data, chunk=chunk) == rows


def test_an_array_cut_short_says_so_and_an_empty_one_has_no_rows() -> None:
    assert errors(read_all("readings.json", b'[{"value": 1},\n{"value": 2}')) == [
        (2, "is not valid JSON: the file ends before the array's closing ']'")
    ]
    assert read_all("readings.json", b"[ ]") == []


# Compression, limits and chunks


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("readings.csv", HEADER + csv_rows(500)),
        ("readings.jsonl", b"\n".join(orjson.dumps(reading(n)) for n in range(500))),
        ("readings.json", orjson.dumps([reading(n) for n in range(500)])),
    ],
)
def test_a_gzip_file_gives_the_rows_of_the_plain_one(name: str, data: bytes) -> None:
    plain = read_all(name, data, chunk=64)
    assert len(plain) == 500
    assert read_all(name + ".gz", gzip.compress(data), chunk=64) == plain


def test_a_gzip_bomb_is_refused_as_soon_as_it_decompresses_past_the_limit() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)
    layout = Layout(ImportFormat.CSV, True, ("sensor_id", "metric", "value", "timestamp"))
    stored = io.BytesIO(bomb)
    content = open_content(stored, layout, 1024 * 1024)
    with pytest.raises(FileRefused, match="larger than 1048576 bytes once decompressed"):
        while content.read(64 * 1024):
            pass
    assert stored.tell() < len(bomb) // 4  # refused on the way, long before the 50 MB came out


def test_a_readings_file_larger_than_the_limit_once_decompressed_is_refused_while_reading() -> None:
    data = gzip.compress(HEADER + csv_rows(100_000))
    with pytest.raises(FileRefused, match="larger than 1000000 bytes once decompressed"):
        read_all("readings.csv.gz", data, chunk=10_000, max_bytes=1_000_000)


def test_a_gzip_stream_that_is_truncated_or_corrupt_is_refused_while_reading() -> None:
    data = gzip.compress(HEADER + csv_rows(50_000), compresslevel=1)
    assert len(data) > HEAD_BYTES  # the head alone looks fine
    with pytest.raises(FileRefused, match="the gzip file is truncated"):
        read_all("readings.csv.gz", data[: len(data) // 2], chunk=UNLIMITED)
    corrupt = data[:-8] + bytes(byte ^ 0xFF for byte in data[-8:-4]) + data[-4:]  # a wrong CRC
    with pytest.raises(FileRefused, match="not a valid gzip file"):
        read_all("readings.csv.gz", corrupt, chunk=UNLIMITED)


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
def test_the_row_limit_counts_rows_good_or_bad_but_not_blank_lines(chunk: int) -> None:
    data = HEADER + b"s1,temperature,1,t\n\n\ns2,oops\ns3,temperature,3,t\n\n"
    assert len(read_all("readings.csv", data, chunk=chunk, max_rows=3)) == 3
    with pytest.raises(FileRefused, match="the file has more than 2 rows"):
        read_all("readings.csv", data, chunk=chunk, max_rows=2)


def test_a_chunk_stops_at_max_rows_and_the_next_one_carries_on_from_its_position() -> None:
    data = HEADER + b"s1,temperature,1,t\r\n\r\ns2,temperature,2,t\r\ns3,temperature,3,t\r\n"
    layout = sniff("readings.csv", data, UNLIMITED)
    first = first_position(layout, data)
    chunk = read_chunk(io.BytesIO(data[first.offset :]), layout, first, 2, UNLIMITED)
    assert lines(chunk.rows) == [2, 4]
    assert chunk.next == Position(data.index(b"s3"), 5, 2)
    assert read_chunk(io.BytesIO(data[chunk.next.offset :]), layout, chunk.next, 2, UNLIMITED) == Chunk(
        [Row(5, {"sensor_id": "s3", "metric": "temperature", "value": 3, "timestamp": "t"})], None
    )


def test_a_quoted_field_spanning_a_read_block_is_read_whole() -> None:
    rows_before = csv_rows(READ_BYTES // 40)
    spanning = b's9,temperature,9,"' + b"line\n" * 200 + b'"\n'
    data = HEADER + rows_before[: READ_BYTES - len(HEADER) - 300] + b"\n" + spanning + csv_rows(10)
    one_pass = read_all("readings.csv", data, chunk=UNLIMITED)
    assert one_pass == read_all("readings.csv", data, chunk=997)
    assert any(
        isinstance(row, Row) and isinstance(row.item, dict) and row.item["timestamp"] == "line\n" * 200
        for row in one_pass
    )


# Any file, any chunking: the rows of one pass


cells = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)  # NUL: not text
values = st.one_of(
    st.integers(-(10**6), 10**6).map(lambda n: (str(n), n)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: (repr(x), x)),
    st.sampled_from(["abc", "nan", "inf", "0x1F", "1_000", " 12", ""]).map(lambda s: (s, s or None)),
)
records = st.lists(st.tuples(cells, values, cells, st.booleans()), max_size=25)


def _csv_file(
    records: list[tuple[str, tuple[str, object], str, bool]], line_end: str, quote_all: bool
) -> tuple[bytes, list[tuple[int, dict[str, object]]]]:
    """The file, and the line and item of each record; a blank line before a record when its flag says so."""
    out = io.StringIO()
    # The csv module leaves a lone CR unquoted under LF line ends, which RFC 4180 (and the reader) do not allow.
    lone_cr = any("\r" in sensor + source for sensor, _, source, _ in records)
    writer = csv.writer(
        out, lineterminator=line_end, quoting=csv.QUOTE_ALL if quote_all or lone_cr else csv.QUOTE_MINIMAL
    )
    writer.writerow(["sensor_id", "value", "source", "metric", "timestamp"])
    expected = []
    for sensor, (value, parsed), source, blank_before in records:
        if blank_before:
            out.write(line_end)
        line = out.getvalue().count("\n") + 1
        writer.writerow([sensor, value, source, "temperature", "2026-03-01T12:00:00Z"])
        cell_values: dict[str, object] = {"sensor_id": sensor or None, "value": parsed, "source": source or None}
        expected.append((line, {**cell_values, "metric": "temperature", "timestamp": "2026-03-01T12:00:00Z"}))
    return out.getvalue().encode(), expected


def _json_file(
    records: list[tuple[str, tuple[str, object], str, bool]], line_end: str, array: bool
) -> tuple[bytes, list[tuple[int, dict[str, object]]]]:
    """The same as JSON Lines or a JSON array, whose elements are spread over lines when their flag says so."""
    docs = [{"sensor_id": sensor, "value": parsed, "source": source} for sensor, (_, parsed), source, _ in records]
    text, expected = ("[" + line_end if array else ""), []
    for index, (doc, (_, _, _, spread)) in enumerate(zip(docs, records, strict=True)):
        spread = spread and array  # a line of JSON Lines is a whole value
        body = json.dumps(doc, indent=1 if spread else None, ensure_ascii=False).replace("\n", line_end)
        expected.append((text.count("\n") + 1, doc))
        text += body + ("," if array and index < len(docs) - 1 else "") + line_end
    return (text + ("]" if array else "")).encode(), expected


@settings(max_examples=300, deadline=None)
@given(
    records,
    st.sampled_from(["csv", "jsonl", "json"]),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.booleans(),
    st.integers(1, 6),
)
def test_reading_in_chunks_of_any_size_gives_the_rows_of_one_pass(
    records: list[tuple[str, tuple[str, object], str, bool]],
    kind: str,
    line_end: str,
    compressed: bool,
    quote_all: bool,
    chunk: int,
) -> None:
    if kind == "csv":
        data, expected = _csv_file(records, line_end, quote_all)
    else:
        data, expected = _json_file(records, line_end, array=kind == "json")
    if not records and kind == "jsonl":
        return  # an empty file is refused: nothing to read
    name = f"readings.{kind}" + (".gz" if compressed else "")
    stored = gzip.compress(data) if compressed else data
    one_pass = read_all(name, stored, chunk=UNLIMITED)
    assert read_all(name, stored, chunk=chunk) == one_pass
    assert good(one_pass) == expected
    assert errors(one_pass) == []


fragments = st.lists(
    st.sampled_from(
        [b'"', b",", b"\n", b"\r\n", b"\r", b"{", b"}", b"[", b"]", b"x", b" ", b":", b"\\", b"12", b"NaN"]
        + [b'"a"', b'{"value": 1}', "°".encode(), b"\xc2", b"\xff"]
    ),
    max_size=80,
)
_STARTS = {
    ImportFormat.CSV: (HEADER, Position(len(HEADER), 2, 0)),
    ImportFormat.JSON_LINES: (b"", Position(0, 1, 0)),
    ImportFormat.JSON_ARRAY: (b"[", Position(1, 1, 0)),
}


def _read_from(layout: Layout, data: bytes, position: Position | None, chunk: int) -> list[Row | RowError]:
    rows: list[Row | RowError] = []
    while position is not None:
        result = read_chunk(io.BytesIO(data[position.offset :]), layout, position, chunk, UNLIMITED)
        rows += result.rows
        position = result.next
    return rows


@settings(max_examples=500, deadline=None)
@given(fragments, st.sampled_from(list(ImportFormat)), st.integers(1, 4))
def test_broken_content_gives_the_same_rows_in_chunks_as_in_one_pass(
    pieces: list[bytes], kind: ImportFormat, chunk: int
) -> None:
    prefix, start = _STARTS[kind]
    data = prefix + b"".join(pieces)
    layout = Layout(kind, False, ("sensor_id", "metric", "value", "timestamp") if kind is ImportFormat.CSV else None)
    one_pass = _read_from(layout, data, start, UNLIMITED)
    assert _read_from(layout, data, start, chunk) == one_pass
    assert all(row.line <= data.count(b"\n") + 1 for row in one_pass)


def _mixed_csv(rnd: random.Random) -> bytes:
    """About 3 MB of CSV with what breaks naive chunking: line ends of both kinds, multi-byte characters, quoted
    fields over several lines, blank lines, long lines, bad rows and bytes that are not UTF-8 (past the head)."""
    parts, size = [HEADER], len(HEADER)
    while size < 3_000_000:
        end = rnd.choice(["\n", "\r\n"])
        kind = rnd.random() if size > HEAD_BYTES else 1.0
        if kind < 0.05:
            lines = end.join("°C" * rnd.randint(0, 40) for _ in range(rnd.randint(2, 30)))
            part = f's{rnd.randint(0, 9)},temperature,1,"{lines}"{end}'.encode()
        elif kind < 0.052:
            part = b"s1,temperature,1," + b"x" * rnd.choice([MAX_ROW_BYTES - 17, MAX_ROW_BYTES, 200_000]) + end.encode()
        elif kind < 0.07:
            part = rnd.choice([b"", b"s1,oops", b"s1,caf\xe9,1,t"]) + end.encode()
        else:
            part = f"sensor-{rnd.randint(0, 99)},humidité,{rnd.uniform(0, 100)},2026-03-01T12:00:00Z{end}".encode()
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _mixed_json(rnd: random.Random, array: bool) -> bytes:
    """The same for JSON Lines or a JSON array, some of whose elements span lines."""
    parts, size = [b"[\n" if array else b""], 2
    while size < 3_000_000:
        doc = {"sensor_id": f"sensor-{rnd.randint(0, 99)}", "unit": "°C" * rnd.randint(0, 30), "value": rnd.random()}
        kind = rnd.random() if size > HEAD_BYTES else 1.0
        if kind < 0.002:
            text = b'{"source": "' + b"x" * rnd.choice([MAX_ROW_BYTES - 14, MAX_ROW_BYTES, 200_000]) + b'"}'
        elif kind < 0.02:
            text = rnd.choice([b'{"value": NaN}', b'{"value": oops}', b'{"unit": "caf\xe9"}'])
        else:
            text = json.dumps(doc, ensure_ascii=False, indent=2 if array and kind < 0.3 else None).encode()
        part = text + (b"," if array else b"") + rnd.choice([b"\n", b"\r\n", b"\n\n"])
        parts.append(part)
        size += len(part)
    return b"".join(parts) + (b'{"value": 1}\n]\n' if array else b"")


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json"])
def test_megabytes_of_mixed_content_give_the_same_rows_whatever_the_chunks(kind: str) -> None:
    rnd = random.Random(20260301)
    data = _mixed_csv(rnd) if kind == "csv" else _mixed_json(rnd, array=kind == "json")
    one_pass = read_all(f"readings.{kind}", data, chunk=UNLIMITED)
    assert read_all(f"readings.{kind}", data, chunk=999) == one_pass
    assert read_all(f"readings.{kind}", data, chunk=257) == one_pass
    assert len(one_pass) > 5_000
    assert 0 < len(errors(one_pass)) < len(one_pass) // 10
