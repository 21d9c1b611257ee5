"""The CSV downloads' pure parts: the time span a query asks for, cells a spreadsheet must not run, file names,
and which rows a bounded download keeps."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from shared.dashboard.csv_export import (
    READINGS_CSV,
    SUMMARIES_CSV,
    TimeSpan,
    csv_bytes,
    escape_cell,
    export,
    filename,
    newest_rows,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_without_from_and_to_the_span_is_the_day_ending_now() -> None:
    assert TimeSpan.parse(None, None, NOW) == TimeSpan(NOW - timedelta(days=1), NOW)
    assert TimeSpan.parse("", "", NOW) == TimeSpan(NOW - timedelta(days=1), NOW)  # ?from=&to= as if absent


def test_to_alone_ends_the_day_there_and_from_alone_runs_until_now() -> None:
    to = datetime(2026, 2, 1, 8, 30, tzinfo=UTC)
    assert TimeSpan.parse(None, "2026-02-01T09:30:00+01:00", NOW) == TimeSpan(to - timedelta(days=1), to)
    assert TimeSpan.parse("2026-03-01T11:00:00Z", None, NOW) == TimeSpan(NOW - timedelta(hours=1), NOW)


def test_the_bounds_are_written_as_the_pipeline_writes_times() -> None:
    span = TimeSpan.parse("2026-03-01T11:00:00.123456+01:00", "2026-03-01T11:30:00Z", NOW)

    assert (span.since, span.until) == ("2026-03-01T10:00:00.123Z", "2026-03-01T11:30:00.000Z")


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("°C", "°C"),
        ("a=b", "a=b"),  # only the first character counts
        (-1.5, -1.5),  # numbers are not text
        (None, None),
    ],
)
def test_text_that_starts_a_formula_gets_an_apostrophe(value: object, cell: object) -> None:
    assert escape_cell(value) == cell


def test_csv_bytes_quote_what_needs_quoting_and_leave_missing_fields_empty() -> None:
    body = csv_bytes(("a", "b", "c"), [{"a": 'x,"y"', "b": "line\nbreak"}, {"c": 3}])

    assert body.endswith(b"\r\n")
    assert list(csv.reader(io.StringIO(body.decode("utf-8"), newline=""))) == [
        ["a", "b", "c"],
        ['x,"y"', "line\nbreak", ""],
        ["", "", "3"],
    ]


def test_a_file_name_holds_only_safe_characters() -> None:
    span = TimeSpan(datetime(2026, 3, 1, 10, 0, tzinfo=UTC), datetime(2026, 3, 1, 11, 0, 5, tzinfo=UTC))

    assert (
        filename("lab.3:north", None, READINGS_CSV, span)
        == "lab.3_north-all-readings-20260301T100000Z-20260301T110005Z.csv"
    )
    assert filename("s1", "people_count", SUMMARIES_CSV, span).startswith("s1-people_count-summaries-")


def _rows(*times: str) -> list[dict[str, str]]:
    return [{"timestamp": t, "id": f"{t}-{n}"} for n, t in enumerate(times)]


def test_a_bounded_download_keeps_the_newest_rows_ending_at_a_whole_instant() -> None:
    assert newest_rows(_rows("9", "8", "7"), 3, "timestamp") == (_rows("9", "8", "7"), False)
    kept, cut = newest_rows(_rows("9", "8", "7", "6"), 3, "timestamp")
    assert ([r["timestamp"] for r in kept], cut) == (["9", "8", "7"], True)
    # The first row left out shares its instant with the last one kept: that one goes too.
    kept, cut = newest_rows(_rows("9", "8", "7", "7"), 3, "timestamp")
    assert ([r["timestamp"] for r in kept], cut) == (["9", "8"], True)
    # Unless every row is of that one instant: then the newest max_rows, as there is no whole instant to end at.
    kept, cut = newest_rows(_rows("7", "7", "7", "7"), 3, "timestamp")
    assert (len(kept), cut) == (3, True)


def test_an_export_is_oldest_first_and_says_where_a_truncated_one_begins() -> None:
    span = TimeSpan(NOW - timedelta(hours=1), NOW)

    whole = export(READINGS_CSV, _rows("3", "2", "1"), 5, "s1", None, span)
    cut = export(READINGS_CSV, _rows("3", "2", "1"), 2, "s1", None, span)

    assert whole.body.decode().splitlines()[1:] == ["1,,,,,,1-2", "2,,,,,,2-1", "3,,,,,,3-0"]
    assert (whole.rows, whole.truncated) == (3, False)
    assert "X-Truncated" not in whole.headers()
    assert cut.body.decode().splitlines()[1:] == ["2,,,,,,2-1", "3,,,,,,3-0"]
    assert cut.headers()["X-Truncated"] == "true"
    assert cut.headers()["X-Earliest-Included"] == "2"
    assert cut.headers()["Content-Disposition"] == f'attachment; filename="{cut.filename}"'
