"""Microshare records to events: what a downstream consumer receives, and why a bad record is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.microshare.api import HOURLY_SNAPSHOT, PEOPLE_COUNTER
from shared.microshare.client import Page
from shared.microshare.events import InvalidRecord, people_counter_event, snapshot_event
from shared.microshare.watermark import WatermarkProgress

T0 = datetime(2025, 6, 9, 10, 0, tzinfo=UTC)


def record(**data_overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "time": "2025-06-09T10:15:00.000Z",
        "change": {"in": 3, "out": 1, "count": 2, "traffic": 4},
        "daily_total": {"in": 40, "out": 31, "count": 9, "traffic": 71},
        "current": 12,
        "device": {"id": "pc-0001", "battery": 3.6, "alerts": []},
        "meta": {"device": ["Building A", "Floor 2", "Zone 3", "Spot 1"], "iot": {"rssi": -81}},
    }
    data.update(data_overrides)
    return {"id": "rec-1", "_id": "rec-1", "recType": PEOPLE_COUNTER, "data": data}


def test_a_people_counter_record_becomes_one_flat_event_with_its_rec_type_and_location_tags() -> None:
    candidate = people_counter_event(record(), "Building A")
    body = json.loads(candidate.event.body)
    assert body["recType"] == PEOPLE_COUNTER
    assert body["record"] == "rec-1"
    assert body["time"] == "2025-06-09T10:15:00.000Z"
    assert body["change"] == {"in": 3, "out": 1, "count": 2, "traffic": 4}
    assert body["current"] == 12
    assert body["_location_tags"] == ["Building A", "Floor 2", "Zone 3", "Spot 1"]
    assert candidate.key == "rec-1"
    assert candidate.time == T0 + timedelta(minutes=15)
    assert candidate.event.partition_key == "Building A"
    assert candidate.event.properties == {"recType": PEOPLE_COUNTER, "location": "Building A"}


def test_a_record_without_an_id_is_keyed_by_a_digest_of_its_content() -> None:
    first, second = record(), record()
    del first["id"], first["_id"], second["id"], second["_id"]
    changed = record(current=13)
    del changed["id"], changed["_id"]
    key = people_counter_event(first, "Building A").key
    assert key.startswith("sha256-")
    assert people_counter_event(second, "Building A").key == key
    assert people_counter_event(changed, "Building A").key != key


def test_a_record_without_location_tags_is_tagged_with_the_queried_building() -> None:
    body = json.loads(people_counter_event(record(meta={"iot": {}}), "Building B").event.body)
    assert body["_location_tags"] == ["Building B"]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("not a record", "record is not a JSON object"),
        ({"id": "x"}, "record has no data object"),
        (record(time=None), "record has no time"),
        (record(time="yesterday"), "timestamp is not ISO 8601"),
        (record(time=1717927200), "timestamp must be an ISO 8601 string"),
        (record(time="2025-06-09T10:15:00"), "timestamp has no UTC offset"),
        (record(change=[1, 2]), "data.change must be an object"),
        (record(current="12"), "data.current must be a number or an object"),
        (record(current=True), "data.current must be a number or an object"),
        (record(meta={"device": "Building A"}), "data.meta.device must be a list of location names"),
        (record(meta=[]), "data.meta must be an object"),
    ],
)
def test_a_malformed_record_is_refused_with_its_reason(bad: object, reason: str) -> None:
    with pytest.raises(InvalidRecord) as refused:
        people_counter_event(bad, "Building A")
    assert refused.value.reason == reason


def snapshot_page(*lines: tuple[str, int], source: str = "db") -> Page:
    objs = [{"data": {"location": "Building A", "line": [{"time": t, "current": c} for t, c in lines]}}]
    return Page(1, 1, 1, objs)


def test_a_snapshot_answer_is_sent_whole_with_its_rec_type_and_keyed_by_its_data() -> None:
    page = snapshot_page(("2025-06-09T10:00:00.000Z", 42))
    candidate = snapshot_event("Building A", T0, T0 + timedelta(hours=1), [page])
    assert candidate is not None
    body = json.loads(candidate.event.body)
    assert body["recType"] == HOURLY_SNAPSHOT
    assert body["objs"] == page.objs
    assert (body["location"], body["from"], body["to"]) == (
        "Building A",
        "2025-06-09T10:00:00.000Z",
        "2025-06-09T11:00:00.000Z",
    )
    assert candidate.time == T0
    same = snapshot_event("Building A", T0, T0 + timedelta(hours=1), [snapshot_page(("2025-06-09T10:00:00.000Z", 42))])
    corrected = snapshot_event(
        "Building A", T0, T0 + timedelta(hours=1), [snapshot_page(("2025-06-09T10:00:00.000Z", 43))]
    )
    assert same is not None and corrected is not None
    assert same.key == candidate.key
    assert corrected.key != candidate.key


def test_an_hour_without_snapshot_lines_sends_nothing() -> None:
    assert snapshot_event("Building A", T0, T0 + timedelta(hours=1), [snapshot_page()]) is None
    assert snapshot_event("Building A", T0, T0 + timedelta(hours=1), []) is None


def test_a_snapshot_line_without_a_time_is_refused() -> None:
    page = Page(1, 1, 1, [{"data": {"line": [{"current": 4}]}}])
    with pytest.raises(InvalidRecord) as refused:
        snapshot_event("Building A", T0, T0 + timedelta(hours=1), [page])
    assert refused.value.reason == "timestamp must be an ISO 8601 string"


def test_the_watermark_stops_before_the_first_event_some_hub_missed() -> None:
    progress = WatermarkProgress()
    progress.note(T0 + timedelta(minutes=15), everywhere=True)
    progress.note(T0 + timedelta(minutes=30), everywhere=False)
    progress.note(T0 + timedelta(minutes=45), everywhere=True)
    assert progress.watermark(None, T0 + timedelta(hours=1)) == T0 + timedelta(minutes=15)


def test_the_watermark_never_moves_back_nor_past_the_end_of_the_fetched_window() -> None:
    progress = WatermarkProgress()
    progress.note(T0 + timedelta(hours=5), everywhere=True)
    assert progress.watermark(None, T0 + timedelta(hours=1)) == T0 + timedelta(hours=1)
    late = WatermarkProgress()
    late.note(T0, everywhere=True)
    assert late.watermark(T0 + timedelta(hours=2), T0 + timedelta(hours=3)) == T0 + timedelta(hours=2)
    assert WatermarkProgress().watermark(T0, T0 + timedelta(hours=1)) == T0


def test_when_every_event_was_missed_the_watermark_stays() -> None:
    progress = WatermarkProgress()
    progress.note(T0 + timedelta(minutes=15), everywhere=False)
    assert progress.watermark(T0, T0 + timedelta(hours=1)) == T0
