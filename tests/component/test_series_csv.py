"""CSV downloads of a sensor's readings and summaries, called as the host calls them, over a temporary store."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
import pytest

from shared.app import services
from shared.readings.reading import format_timestamp
from shared.storage.names import READINGS
from tests.component.conftest import Handler
from tests.component.series_rig import T0, at, get, reading, seed

READINGS_HEADER = ["timestamp", "sensor_id", "metric", "value", "unit", "source", "id"]
SUMMARIES_HEADER = [
    "window_end",
    "window_start",
    "sensor_id",
    "metric",
    "count",
    "min",
    "avg",
    "max",
    "unit",
    "computed_at",
    "id",
]


def download(handlers: dict[str, Handler], kind: str, sensor_id: str = "sensor-01", **params: str) -> func.HttpResponse:
    return get(handlers[f"{kind}_csv"], f"api/sensors/{sensor_id}/{kind}.csv", params, {"sensor_id": sensor_id})


def table(response: func.HttpResponse) -> list[list[str]]:
    assert response.status_code == 200, response.get_body()[:300]
    assert (response.mimetype, response.charset) == ("text/csv", "utf-8")  # the host's text/csv; charset=utf-8
    return list(csv.reader(io.StringIO(response.get_body().decode("utf-8"), newline="")))


def error(response: func.HttpResponse) -> str:
    assert response.mimetype == "application/json"
    reason: str = json.loads(response.get_body())["error"]
    return reason


@pytest.fixture
def two_metrics(app_on_temp_store: Path) -> None:
    """sensor-01 reports temperature (20 + s °C) and humidity (40 + s %) every second from T0 to T0 + 9 s."""
    seed("sensor-01", range(10))
    seed("sensor-01", range(10), metric="humidity", unit="%", base=40.0)


@pytest.mark.usefixtures("two_metrics")
def test_readings_of_a_span_come_oldest_first_with_both_bounds_included(handlers: dict[str, Handler]) -> None:
    response = download(handlers, "readings", **{"from": at(2), "to": at(5)})

    rows = table(response)
    assert rows[0] == READINGS_HEADER
    # Every metric of the sensor, the readings at exactly `from` and exactly `to` among them.
    assert sorted(rows[1:], key=lambda r: (r[0], r[2])) == [
        [at(s), "sensor-01", metric, f"{base + s:.1f}", unit, "rig", f"sensor-01-{metric}-{s:04d}"]
        for s in range(2, 6)
        for metric, base, unit in (("humidity", 40.0, "%"), ("temperature", 20.0, "°C"))
    ]
    assert [r[0] for r in rows[1:]] == sorted(r[0] for r in rows[1:])  # oldest first
    assert response.headers["Cache-Control"] == "no-store"
    assert "X-Truncated" not in response.headers
    start, end = (f"{T0 + timedelta(seconds=s):%Y%m%dT%H%M%SZ}" for s in (2, 5))
    expected = f'attachment; filename="sensor-01-all-readings-{start}-{end}.csv"'
    assert response.headers["Content-Disposition"] == expected


@pytest.mark.usefixtures("two_metrics")
def test_a_metric_keeps_only_its_readings_and_names_the_file(handlers: dict[str, Handler]) -> None:
    response = download(handlers, "readings", metric="humidity", **{"from": at(0), "to": at(3)})

    rows = table(response)
    assert rows[1:] == [[at(s), "sensor-01", "humidity", f"{40.0 + s}", "%", "rig", f"sensor-01-humidity-{s:04d}"]
                        for s in range(4)]  # fmt: skip
    expected = f"sensor-01-humidity-readings-{(T0).strftime('%Y%m%dT%H%M%SZ')}-"
    assert f'filename="{expected}' in response.headers["Content-Disposition"]


@pytest.mark.usefixtures("two_metrics")
def test_without_from_and_to_the_download_is_the_last_24_hours(handlers: dict[str, Handler]) -> None:
    old = reading("sensor-01", 0, 1.0)
    old.update(id="two-days-old", timestamp=format_timestamp(datetime.now(UTC) - timedelta(days=2)))
    services().stores.documents.upsert_many(READINGS, [old])

    rows = table(download(handlers, "readings", metric="temperature"))

    assert [r[6] for r in rows[1:]] == [f"sensor-01-temperature-{s:04d}" for s in range(10)]


@pytest.mark.usefixtures("two_metrics")
def test_summaries_of_a_span_come_oldest_first_as_the_json_route_gives_them(handlers: dict[str, Handler]) -> None:
    listed = json.loads(
        get(
            handlers["list_summaries"],
            "api/sensors/sensor-01/summaries",
            {"metric": "temperature", "limit": "100"},
            {"sensor_id": "sensor-01"},
        ).get_body()
    )

    rows = table(download(handlers, "summaries", metric="temperature", **{"from": at(3), "to": at(6)}))

    assert rows[0] == SUMMARIES_HEADER
    in_span = [s for s in reversed(listed) if at(3) <= s["window_end"] <= at(6)]
    assert len(in_span) == 4  # one summary per reading; the bounds are included
    assert rows[1:] == [
        [
            s["window_end"],
            s["window_start"],
            "sensor-01",
            "temperature",
            str(s["count"]),
            str(s["min"]),
            str(s["avg"]),
            str(s["max"]),
            "°C",
            s["computed_at"],
            s["id"],
        ]
        for s in in_span
    ]


@pytest.mark.usefixtures("two_metrics")
def test_summaries_without_a_metric_are_of_the_series_the_json_route_picks(handlers: dict[str, Handler]) -> None:
    picked = json.loads(
        get(handlers["list_summaries"], "api/sensors/sensor-01/summaries", {}, {"sensor_id": "sensor-01"}).get_body()
    )[0]["metric"]

    response = download(handlers, "summaries", **{"from": at(0), "to": at(9)})

    rows = table(response)
    assert {r[3] for r in rows[1:]} == {picked}
    assert len(rows) == 11
    assert f"sensor-01-{picked}-summaries-" in response.headers["Content-Disposition"]


@pytest.fixture
def small_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSV_MAX_ROWS", "3")


@pytest.fixture
def app_with_small_downloads(small_downloads: None, app_on_temp_store: Path) -> Iterator[None]:
    assert services().settings.dashboard.csv_max_rows == 3
    yield


@pytest.mark.usefixtures("app_with_small_downloads")
def test_more_rows_than_csv_max_rows_keeps_the_newest_and_says_where_they_begin(handlers: dict[str, Handler]) -> None:
    seed("sensor-01", range(10))

    response = download(handlers, "readings", **{"from": at(0), "to": at(9)})

    assert [r[0] for r in table(response)[1:]] == [at(7), at(8), at(9)]
    assert response.headers["X-Truncated"] == "true"
    assert response.headers["X-Earliest-Included"] == at(7)
    # Asking again up to just before that gets the rows before, again the newest first.
    before = format_timestamp(T0 + timedelta(seconds=7) - timedelta(milliseconds=1))
    again = download(handlers, "readings", **{"from": at(0), "to": before})
    assert [r[0] for r in table(again)[1:]] == [at(4), at(5), at(6)]
    assert again.headers["X-Earliest-Included"] == at(4)
    summaries = download(handlers, "summaries", **{"from": at(0), "to": at(9)})
    assert [r[0] for r in table(summaries)[1:]] == [at(7), at(8), at(9)]
    assert summaries.headers["X-Truncated"] == "true"


@pytest.mark.usefixtures("app_with_small_downloads")
def test_a_truncated_download_ends_at_a_whole_instant_so_paging_misses_nothing(handlers: dict[str, Handler]) -> None:
    seeded = seed("sensor-01", range(5)) + seed("sensor-01", range(5), metric="humidity", unit="%", base=40.0)

    seen: list[str] = []
    to = at(4)
    for _ in range(10):
        response = download(handlers, "readings", **{"from": at(0), "to": to})
        rows = table(response)[1:]
        assert len({r[0] for r in rows}) == len(rows) // 2  # both metrics of every instant, never one of them
        seen += [r[6] for r in rows]
        if "X-Truncated" not in response.headers:
            break
        earliest = datetime.fromisoformat(response.headers["X-Earliest-Included"])
        to = format_timestamp(earliest - timedelta(milliseconds=1))

    assert sorted(seen) == sorted(doc["id"] for doc in seeded)  # every reading once


@pytest.mark.usefixtures("app_on_temp_store")
def test_text_a_spreadsheet_would_run_as_a_formula_is_kept_as_text(handlers: dict[str, Handler]) -> None:
    hostile = [
        reading("sensor-01", 0, -5.0, metric="pressure_x", unit="=1+2", source="@SUM(A1:A9)"),
        reading("sensor-01", 1, 3.0, metric="pressure_x", unit="+cmd|' /C calc'", source="-2+3"),
        reading("sensor-01", 2, 4.0, metric="pressure_x", unit='a,"b"', source="line\nbreak"),
    ]
    services().stores.documents.upsert_many(READINGS, hostile)
    services().summariser.apply(hostile, source="test")

    rows = table(download(handlers, "readings", **{"from": at(0), "to": at(2)}))

    assert [(r[3], r[4], r[5]) for r in rows[1:]] == [
        ("-5.0", "'=1+2", "'@SUM(A1:A9)"),  # a negative number stays a number
        ("3.0", "'+cmd|' /C calc'", "'-2+3"),
        ("4.0", 'a,"b"', "line\nbreak"),  # quoted, read back whole
    ]


@pytest.mark.usefixtures("two_metrics")
@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"from": "yesterday"}, "from is not an ISO 8601 date and time"),
        ({"to": "2024-13-01T00:00:00Z"}, "to is not an ISO 8601 date and time"),
        ({"from": "2024-05-01T10:00:00 02:00"}, "as %2B"),  # a '+' not encoded in the query string
        ({"from": "2024-05-01T10:00:00"}, "from has no UTC offset"),
        ({"to": "2024-05-01"}, "to has no UTC offset"),
        ({"from": "2024-05-01T10:00:00Z", "to": "2024-05-01T10:00:00Z"}, "from must be before to"),
        ({"from": "2024-05-01T12:00:00+02:00", "to": "2024-05-01T09:00:00Z"}, "from must be before to"),
        ({"from": "2099-01-01T00:00:00Z"}, "from must be before to (now, when to is not given)"),
        ({"from": "2024-05-01T00:00:00Z", "to": "2024-06-01T00:00:01Z"}, "at most 31 days apart"),
        ({"from": "2024-05-01T00:00:00Z", "to": "2024-05-01T00:00:00" + "0" * 40 + "Z"}, "to is not an ISO 8601"),
        ({"to": "0001-01-01T00:00:00+01:00"}, "to is out of range"),
    ],
)
@pytest.mark.parametrize("kind", ["readings", "summaries"])
def test_a_bad_time_span_is_a_400_with_the_reason(
    handlers: dict[str, Handler], kind: str, params: dict[str, str], reason: str
) -> None:
    response = download(handlers, kind, **params)

    assert response.status_code == 400
    assert reason in error(response)


@pytest.mark.usefixtures("two_metrics")
@pytest.mark.parametrize("kind", ["readings", "summaries"])
def test_a_span_of_exactly_31_days_is_allowed(handlers: dict[str, Handler], kind: str) -> None:
    response = download(handlers, kind, **{"from": "2024-05-01T00:00:00Z", "to": "2024-06-01T00:00:00Z"})

    assert table(response)[1:] == []  # nothing then, but a valid question


@pytest.mark.usefixtures("two_metrics")
@pytest.mark.parametrize("kind", ["readings", "summaries"])
def test_an_unknown_sensor_or_metric_is_a_404_and_a_malformed_one_a_400(
    handlers: dict[str, Handler], kind: str
) -> None:
    unknown = download(handlers, kind, sensor_id="nobody")
    no_such_metric = download(handlers, kind, metric="pressure")
    bad_id = download(handlers, kind, sensor_id="bad id!")
    bad_metric = download(handlers, kind, metric="Temp;drop")

    assert unknown.status_code == 404 and "nobody" in error(unknown)
    assert no_such_metric.status_code == 404 and "pressure" in error(no_such_metric)
    assert bad_id.status_code == 400 and "sensor_id" in error(bad_id)
    assert bad_metric.status_code == 400 and "metric" in error(bad_metric)
