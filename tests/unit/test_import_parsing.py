"""The bulk import's file parser, as a user importing a file would notice it: what is refused whole and why, and
where the first row starts."""

from __future__ import annotations

import gzip
import io
import json

import pytest

from shared.imports.formats import (
    HEAD_BYTES,
    FileRefused,
    ImportFormat,
    Layout,
    Position,
    first_position,
    open_content,
    sniff,
)

HEADER = b"sensor_id,metric,value,timestamp\n"
UNLIMITED = 10**12


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


def test_a_gzip_bomb_is_refused_as_soon_as_it_decompresses_past_the_limit() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)
    layout = Layout(ImportFormat.CSV, True, ("sensor_id", "metric", "value", "timestamp"))
    stored = io.BytesIO(bomb)
    content = open_content(stored, layout, 1024 * 1024)
    with pytest.raises(FileRefused, match="larger than 1048576 bytes once decompressed"):
        while content.read(64 * 1024):
            pass
    assert stored.tell() < len(bomb) // 4  # refused on the way, long before the 50 MB came out
