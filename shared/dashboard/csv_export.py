"""CSV downloads of one sensor's readings or summaries over a time span: oldest first, at most CSV_MAX_ROWS rows.

Pure: no I/O. The caller reads the newest `max_rows + 1` documents of the span, newest first (DocumentStore.latest
with `since` and `until`), and `export` turns them into the answer: the body, its file name and, when the span
held more than `max_rows`, the truncation headers. A truncated download keeps the newest rows and ends at a whole
instant (rows that share a time with the first row left out are left out too), so asking again with `to` just
before X-Earliest-Included gets exactly the rows that are missing.

Azure Functions' Python HttpResponse carries a whole body (true HTTP streaming needs the FastAPI extension), so
the body is built from an iterator over the rows into one bytes object, whose size CSV_MAX_ROWS bounds.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.readings.reading import format_timestamp
from shared.readings.rules import TIMESTAMP_MAX_LENGTH
from shared.storage.names import READINGS, SUMMARIES

MAX_SPAN = timedelta(days=31)
DEFAULT_SPAN = timedelta(hours=24)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP's list, tab and carriage return
# included); a leading apostrophe makes it text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_EXAMPLE = "e.g. 2026-01-01T12:00:00Z"
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class CsvKind:
    name: str  # in the route and the file name: readings.csv
    container: str
    order_by: str  # the time a row is ordered and bounded by
    columns: tuple[str, ...]


READINGS_CSV = CsvKind(
    "readings", READINGS, "timestamp", ("timestamp", "sensor_id", "metric", "value", "unit", "source", "id")
)
SUMMARIES_CSV = CsvKind(
    "summaries",
    SUMMARIES,
    "window_end",
    ("window_end", "window_start", "sensor_id", "metric", "count", "min", "avg", "max", "unit", "computed_at", "id"),
)


def parse_time(name: str, raw: str) -> datetime:
    """An ISO 8601 date and time with a UTC offset or Z, in UTC; ValueError says what is wrong with it."""
    if len(raw) > TIMESTAMP_MAX_LENGTH:
        raise ValueError(f"{name} is not an ISO 8601 date and time, {_EXAMPLE}")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        # A '+' of an offset sent unencoded in a query string arrives as a space.
        hint = " (send a '+' in the query string as %2B)" if " " in raw.strip() else ""
        raise ValueError(f"{name} is not an ISO 8601 date and time, {_EXAMPLE}{hint}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{name} has no UTC offset: end it with Z or an offset such as +02:00, {_EXAMPLE}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{name} is out of range") from None


@dataclass(frozen=True, slots=True)
class TimeSpan:
    """From `start` to `end`, both included, in UTC."""

    start: datetime
    end: datetime

    @classmethod
    def parse(cls, raw_from: str | None, raw_to: str | None, now: datetime) -> TimeSpan:
        """From the query's `from` and `to`: `to` defaults to now and `from` to a day before `to`; ValueError with
        the reason for an unparsable or naive time, `from` not before `to`, or a span longer than MAX_SPAN."""
        end = now.astimezone(UTC) if not raw_to else parse_time("to", raw_to)
        if raw_from:
            start = parse_time("from", raw_from)
        else:
            try:
                start = end - DEFAULT_SPAN
            except OverflowError:
                raise ValueError("to is out of range") from None
        if start >= end:
            raise ValueError("from must be before to" + ("" if raw_to else " (now, when to is not given)"))
        if end - start > MAX_SPAN:
            raise ValueError(f"from and to may be at most {MAX_SPAN.days} days apart")
        return cls(start, end)

    @property
    def since(self) -> str:
        """`start` as the pipeline writes times (milliseconds, Z), so stored times compare with it as text."""
        return format_timestamp(self.start)

    @property
    def until(self) -> str:
        return format_timestamp(self.end)


def escape_cell(value: object) -> object:
    """A text value a spreadsheet would run as a formula gets a leading apostrophe; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_bytes(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    """A header line, then one line per row in the order given (a missing field is an empty cell); UTF-8."""
    text = io.StringIO()
    writer = csv.writer(text)  # quotes a cell holding a comma, a quote or a line break
    writer.writerow(columns)
    for row in rows:
        writer.writerow([escape_cell(row.get(column)) for column in columns])
    return text.getvalue().encode("utf-8")


def newest_rows(newest_first: Sequence[Mapping[str, Any]], max_rows: int, order_by: str) -> tuple[list[Any], bool]:
    """(the rows to answer, newest first; whether some were left out). Of more than `max_rows`, the newest
    `max_rows`, less those at the instant of the first row left out, unless that would leave none."""
    if len(newest_first) <= max_rows:
        return list(newest_first), False
    kept = list(newest_first[:max_rows])
    cut = newest_first[max_rows].get(order_by)
    whole = [row for row in kept if row.get(order_by) != cut]
    return (whole or kept), True


def filename(sensor_id: str, metric: str | None, kind: CsvKind, span: TimeSpan) -> str:
    """<sensor>-<metric or all>-<kind>-<from>-<to>.csv, in letters, digits, '.', '-' and '_' only."""
    times = "-".join(moment.strftime("%Y%m%dT%H%M%SZ") for moment in (span.start, span.end))
    return _UNSAFE_FILENAME.sub("_", f"{sensor_id}-{metric or 'all'}-{kind.name}-{times}") + ".csv"


@dataclass(frozen=True, slots=True)
class CsvExport:
    body: bytes
    filename: str
    rows: int
    earliest_included: str | None  # the oldest row's time, when rows were left out (None: nothing was)

    @property
    def truncated(self) -> bool:
        return self.earliest_included is not None

    def headers(self) -> dict[str, str]:
        headers = {
            "Content-Disposition": f'attachment; filename="{self.filename}"',
            "Cache-Control": "no-store",
        }
        if self.earliest_included is not None:
            headers["X-Truncated"] = "true"
            headers["X-Earliest-Included"] = self.earliest_included
        return headers


def export(
    kind: CsvKind,
    newest_first: Sequence[Mapping[str, Any]],
    max_rows: int,
    sensor_id: str,
    metric: str | None,
    span: TimeSpan,
) -> CsvExport:
    """The download of `newest_first` (the newest `max_rows + 1` documents of the span), oldest first."""
    rows, truncated = newest_rows(newest_first, max_rows, kind.order_by)
    earliest = str(rows[-1].get(kind.order_by, "")) if truncated and rows else None
    body = csv_bytes(kind.columns, reversed(rows))
    return CsvExport(body, filename(sensor_id, metric, kind, span), len(rows), earliest)
