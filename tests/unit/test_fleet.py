"""The fleet listing's rules, without storage: status, grouping, order, paging and its cursors."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.dashboard.fleet import (
    MAX_PAGE_SIZE,
    UNKNOWN_INTERVAL_STALE_MS,
    FleetQuery,
    SortedFleet,
    Tile,
    chart_versions,
    tile_from_summary,
)
from shared.readings.reading import epoch_ms, format_epoch_ms

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW_MS = epoch_ms(T0)
REFRESH = {"10m": 5, "1h": 30, "1d": 300, "7d": 1800}


def summary(
    sensor_id: str, metric: str = "temperature", end_ms: int = NOW_MS, step_ms: int = 5000, count: int = 5
) -> dict[str, Any]:
    return {
        "id": f"{sensor_id}-{metric}-{end_ms}",
        "sensor_id": sensor_id,
        "metric": metric,
        "unit": "°C",
        "count": count,
        "min": 1.0,
        "avg": 2.0,
        "max": 3.0,
        "window_start": format_epoch_ms(end_ms - step_ms * (count - 1)),
        "window_end": format_epoch_ms(end_ms),
    }


def tile(sensor_id: str, metric: str = "temperature", end_ms: int = NOW_MS, **kwargs: Any) -> Tile:
    made = tile_from_summary(summary(sensor_id, metric, end_ms, **kwargs))
    assert made is not None
    return made


def all_pages(fleet: SortedFleet, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        answer = fleet.page(limit, cursor, NOW_MS, REFRESH)
        pages.append([f"{t['sensor_id']}|{t['metric']}" for t in answer["items"]])
        cursor = answer["next_cursor"]
        if cursor is None:
            return pages


def test_a_series_is_stale_once_silent_for_more_than_three_of_its_usual_intervals() -> None:
    every_5s = tile("s", end_ms=NOW_MS - 15_000, step_ms=5000)
    one_reading = tile("t", end_ms=NOW_MS - 60_000, count=1)

    assert every_5s.interval_ms == 5000
    assert not every_5s.stale(NOW_MS)
    assert every_5s.stale(NOW_MS + 1)
    assert one_reading.interval_ms is None  # no usual interval yet: the fallback applies
    assert not one_reading.stale(NOW_MS)
    assert one_reading.stale(NOW_MS - 60_000 + UNKNOWN_INTERVAL_STALE_MS + 1)


def test_an_occupancy_series_is_grouped_under_its_parent_location() -> None:
    zone = tile("Building-A.Floor-2.Zone-3", "people_count")
    plain = tile("sensor-01")

    assert zone.location == "Building-A.Floor-2"
    assert plain.location == ""
    assert FleetQuery(group="location").group_of(zone) == "Building-A.Floor-2"
    assert FleetQuery(group="metric").group_of(zone) == "people_count"


def test_the_filter_matches_sensor_metric_or_location_whatever_the_case() -> None:
    tiles = [tile("Building-A.Floor-2.Zone-3", "people_count"), tile("sensor-01"), tile("lab-2", "humidity")]

    def ids(query: FleetQuery) -> list[str]:
        return [t["sensor_id"] for t in SortedFleet(tiles, query).page(50, None, NOW_MS, REFRESH)["items"]]

    assert ids(FleetQuery(q="floor-2")) == ["Building-A.Floor-2.Zone-3"]
    assert ids(FleetQuery(q="HUMID")) == ["lab-2"]
    assert ids(FleetQuery(metric="temperature")) == ["sensor-01"]
    assert ids(FleetQuery(q="nothing")) == []


def test_newest_and_stalest_order_by_the_newest_reading_within_groups() -> None:
    tiles = [
        tile("a", end_ms=NOW_MS - 3000),
        tile("b", end_ms=NOW_MS - 1000),
        tile("c", "humidity", end_ms=NOW_MS - 2000),
    ]

    def order(query: FleetQuery) -> list[str]:
        return [t["sensor_id"] for t in SortedFleet(tiles, query).page(50, None, NOW_MS, REFRESH)["items"]]

    assert order(FleetQuery(sort="newest")) == ["b", "c", "a"]
    assert order(FleetQuery(sort="stalest")) == ["a", "c", "b"]
    assert order(FleetQuery(sort="newest", group="metric")) == ["c", "b", "a"]  # humidity sorts before temperature
    groups = SortedFleet(tiles, FleetQuery(group="metric")).page(1, None, NOW_MS, REFRESH)["groups"]
    assert groups == [{"name": "humidity", "count": 1, "stale": 0}, {"name": "temperature", "count": 2, "stale": 0}]


def test_a_chart_version_changes_once_per_refresh_period_of_the_newest_reading() -> None:
    start = 1_000_000 * 5000  # a period boundary for 5 s
    assert chart_versions(start, REFRESH)["10m"] == chart_versions(start + 4999, REFRESH)["10m"]
    assert chart_versions(start + 5000, REFRESH)["10m"] == chart_versions(start, REFRESH)["10m"] + 1
    assert chart_versions(start + 5000, REFRESH)["1d"] == chart_versions(start, REFRESH)["1d"]


def test_a_cursor_resumes_after_its_tile_even_when_series_were_added_before_it() -> None:
    tiles = [tile(f"s{n:02d}") for n in range(10)]
    query = FleetQuery()
    first = SortedFleet(tiles, query).page(4, None, NOW_MS, REFRESH)

    grown = SortedFleet([*tiles, tile("s00a"), tile("s05a")], query)  # one behind the cursor, one ahead of it
    second = grown.page(4, first["next_cursor"], NOW_MS, REFRESH)

    assert [t["sensor_id"] for t in first["items"]] == ["s00", "s01", "s02", "s03"]
    assert [t["sensor_id"] for t in second["items"]] == ["s04", "s05", "s05a", "s06"]


def test_a_cursor_is_refused_with_another_query_or_when_tampered_with() -> None:
    tiles = [tile(f"s{n}") for n in range(5)]
    cursor = SortedFleet(tiles, FleetQuery()).page(2, None, NOW_MS, REFRESH)["next_cursor"]
    assert cursor is not None
    decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    decoded["k"][1] = "x"
    tampered = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode()

    with pytest.raises(ValueError, match="another q, metric, group or sort"):
        SortedFleet(tiles, FleetQuery(sort="newest")).page(2, cursor, NOW_MS, REFRESH)
    for bad in (tampered, "!!", "e30", cursor[:-3]):
        with pytest.raises(ValueError, match="cursor"):
            SortedFleet(tiles, FleetQuery()).page(2, bad, NOW_MS, REFRESH)


@pytest.mark.parametrize("limit", [0, MAX_PAGE_SIZE + 1])
def test_a_page_size_out_of_bounds_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be between 1 and"):
        SortedFleet([tile("a")], FleetQuery()).page(limit, None, NOW_MS, REFRESH)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"group": "room"}, "group must be one of"),
        ({"sort": "random"}, "sort must be one of"),
        ({"metric": "no spaces"}, "metric"),
        ({"q": "x" * 101}, "q must be at most 100 characters"),
    ],
)
def test_a_bad_query_parameter_is_named(params: dict[str, str], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        FleetQuery.parse(params)


_names = st.text(alphabet="abAB.-_09", min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(
    series=st.dictionaries(
        st.tuples(_names, st.sampled_from(["temperature", "humidity", "people_count"])),
        st.integers(min_value=0, max_value=50_000),
        max_size=40,
    ),
    group=st.sampled_from(["none", "location", "metric"]),
    sort=st.sampled_from(["name", "newest", "stalest"]),
    q=st.sampled_from(["", "a", "B.", "hum"]),
    limit=st.integers(min_value=1, max_value=12),
)
def test_paging_returns_every_matching_series_once_in_the_listing_order(
    series: dict[tuple[str, str], int], group: str, sort: str, q: str, limit: int
) -> None:
    tiles = [tile(sensor, metric, end_ms=NOW_MS - age) for (sensor, metric), age in series.items()]
    query = FleetQuery(q=q, group=group, sort=sort)
    fleet = SortedFleet(tiles, query)

    pages = all_pages(fleet, limit)

    listed = [key for page in pages for key in page]
    whole = fleet.page(MAX_PAGE_SIZE, None, NOW_MS, REFRESH)
    assert listed == [f"{t['sensor_id']}|{t['metric']}" for t in whole["items"]]
    assert len(listed) == whole["total"] == sum(query.matches(t) for t in tiles)
    assert all(len(page) == limit for page in pages[:-1])
    keys = [query.sort_key(t) for t in tiles if query.matches(t)]
    assert [f"{k[2]}|{k[3]}" for k in sorted(keys)] == listed


def test_a_quiet_fleet_answers_the_same_page_to_every_poll() -> None:
    tiles = [tile("a", end_ms=NOW_MS - 2000), tile("b", end_ms=NOW_MS - 4000)]
    fleet = SortedFleet(tiles, FleetQuery())

    assert fleet.page(10, None, NOW_MS, REFRESH) == fleet.page(10, None, NOW_MS + 3000, REFRESH)
    later = fleet.page(10, None, NOW_MS + 60_000, REFRESH)  # both silent for far more than 3 intervals
    assert [t["status"] for t in later["items"]] == ["stale", "stale"]
    assert later["stale"] == 2


def test_each_tile_names_when_it_turns_stale_for_the_page_to_flip_it_without_asking() -> None:
    answer = SortedFleet([tile("a", end_ms=NOW_MS, step_ms=5000)], FleetQuery()).page(1, None, NOW_MS, REFRESH)

    (only,) = answer["items"]
    assert only["stale_after"] == format_epoch_ms(NOW_MS + 15_000)
    assert datetime.fromisoformat(only["stale_after"]) - T0 == timedelta(seconds=15)
