"""The summariser over real SQLite stores: one correct summary per series, whatever the delivery order."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.alerts.rulebook import RuleBook
from shared.alerts.rules import parse_rule
from shared.alerts.store import AlertStore
from shared.alerts.thresholds import ThresholdAlerts
from shared.intake.event_bodies import readings_from_events
from shared.readings.dead_letters import DeadLetterBox
from shared.readings.summariser import Summariser, summary_from_state
from shared.readings.window import summary_id
from shared.storage.names import DEAD_LETTERS_TABLE, PARTITION_KEY_PATHS, SUMMARIES, WINDOWS_TABLE
from shared.storage.ports import Document, StorageError
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.state import SqliteStateStore

WINDOW = 5
Batch = list[dict[str, object]]
SOURCE = "test-source"
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
COMPUTED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Stores:
    database: SqliteDatabase
    documents: SqliteDocumentStore
    state: SqliteStateStore

    def summariser(self) -> Summariser:
        """A fresh instance, as a new host instance would have: its own empty window cache."""
        return Summariser(self.documents, self.state, WINDOW, clock=lambda: COMPUTED_AT)

    def summaries(self) -> dict[str, Document]:
        """Every document in `summaries`, by id, without the store's system fields."""
        batch = self.documents.read_changes(SUMMARIES, None, 100_000)
        return {d["id"]: {k: v for k, v in d.items() if not k.startswith("_")} for d in batch.documents}

    def latest(self, sensor_id: str, metric: str = "temperature") -> dict[str, Any]:
        """The summary the series' stored window state implies (what the dashboard lists as its latest)."""
        entity = self.state.get(WINDOWS_TABLE, sensor_id, metric)
        assert entity is not None
        latest = summary_from_state(sensor_id, metric, entity.properties)
        assert latest is not None
        return latest

    def window_ids(self, sensor_id: str, metric: str = "temperature") -> list[str]:
        entity = self.state.get(WINDOWS_TABLE, sensor_id, metric)
        assert entity is not None
        return [rid for _, rid, _ in json.loads(entity.properties["entries"])]


def open_stores(directory: Path) -> Stores:
    database = SqliteDatabase.in_directory(directory)
    return Stores(database, SqliteDocumentStore(database, PARTITION_KEY_PATHS), SqliteStateStore(database))


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    opened = open_stores(tmp_path / "app")
    yield opened
    opened.database.close()


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Stores]:
    """Another store that received `series_batch()` once, whole: what every delivery pattern must match."""
    opened = open_stores(tmp_path / "reference")
    opened.summariser().apply(series_batch(), source=SOURCE)
    yield opened
    opened.database.close()


def reading(
    sensor_id: str, second: int, value: float, metric: str = "temperature", **overrides: object
) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": f"{sensor_id}-{metric}-{second:04d}",
        "sensor_id": sensor_id,
        "metric": metric,
        "value": value,
        "unit": "°C" if metric == "temperature" else "%",
        "timestamp": (T0 + timedelta(seconds=second)).isoformat().replace("+00:00", "Z"),
        "source": "simulator",
    }
    doc.update(overrides)
    return doc


def series_batch() -> Batch:
    """Three series, eight readings each, values chosen so min/max/avg of the newest five are easy to see."""
    batch = []
    for second in range(8):
        batch.append(reading("sensor-01", second, 20.0 + second))
        batch.append(reading("sensor-02", second, 100.0 - second * 2))
        batch.append(reading("sensor-01", second, 40.0 + second, metric="humidity"))
    return batch


def test_a_batch_gives_one_summary_per_series_over_the_latest_readings(stores: Stores) -> None:
    batch = series_batch()
    random.Random(7).shuffle(batch)  # the window is by timestamp, not by arrival

    outcome = stores.summariser().apply(batch, source=SOURCE)

    assert (outcome.received, outcome.summarised, outcome.dead_lettered) == (24, 24, 0)
    assert outcome.summaries_written == 3
    summaries = stores.summaries()
    assert len(summaries) == 3
    by_series = {(s["sensor_id"], s["metric"]): s for s in summaries.values()}

    temperature = by_series[("sensor-01", "temperature")]
    # The newest five of 20..27 are 23..27.
    assert (temperature["count"], temperature["min"], temperature["max"]) == (5, 23.0, 27.0)
    assert temperature["avg"] == pytest.approx(25.0)
    assert temperature["unit"] == "°C"
    assert temperature["window_start"] == "2024-05-01T10:00:03.000Z"
    assert temperature["window_end"] == "2024-05-01T10:00:07.000Z"
    assert temperature["newest_reading_id"] == "sensor-01-temperature-0007"
    assert temperature["id"] == summary_id("sensor-01", "temperature", "sensor-01-temperature-0007")

    falling = by_series[("sensor-02", "temperature")]
    # 100, 98, ..., 86: the newest five are 94..86.
    assert (falling["count"], falling["min"], falling["max"]) == (5, 86.0, 94.0)
    assert falling["avg"] == pytest.approx(90.0)

    humidity = by_series[("sensor-01", "humidity")]
    assert (humidity["min"], humidity["max"], humidity["unit"]) == (43.0, 47.0, "%")

    assert stores.latest("sensor-01") == temperature
    assert stores.window_ids("sensor-01") == [f"sensor-01-temperature-{s:04d}" for s in range(3, 8)]


def test_summary_ids_are_the_same_in_another_store(stores: Stores, reference: Stores) -> None:
    stores.summariser().apply(series_batch(), source=SOURCE)

    assert stores.summaries() == reference.summaries()


@pytest.mark.parametrize(
    "deliveries",
    [
        pytest.param(lambda b: [b, b], id="replayed"),
        pytest.param(lambda b: [b + b[::3]], id="duplicates-inside"),
        pytest.param(lambda b: [list(reversed(b))], id="reversed"),
        pytest.param(lambda b: [random.Random(3).sample(b, len(b))], id="shuffled"),
        pytest.param(
            lambda b: [
                [r for r in b if r["sensor_id"] == "sensor-02"],
                [r for r in b if r["sensor_id"] != "sensor-02"],
            ],
            id="split-by-sensor",
        ),
        pytest.param(lambda b: [b, b[:5], list(reversed(b)), b[7:9]], id="replayed-in-pieces"),
    ],
)
def test_redelivery_duplicates_and_order_give_the_same_summaries(
    stores: Stores, reference: Stores, deliveries: Callable[[Batch], list[Batch]]
) -> None:
    summariser = stores.summariser()

    for delivery in deliveries(series_batch()):
        summariser.apply(delivery, source=SOURCE)

    assert stores.summaries() == reference.summaries()
    for sensor in ("sensor-01", "sensor-02"):
        assert stores.latest(sensor) == reference.latest(sensor)
        assert stores.window_ids(sensor) == reference.window_ids(sensor)


def test_a_redelivered_batch_writes_nothing(stores: Stores) -> None:
    summariser = stores.summariser()
    summariser.apply(series_batch(), source=SOURCE)
    feed_end = stores.documents.end_of_feed(SUMMARIES)
    etag = stores.state.get(WINDOWS_TABLE, "sensor-01", "temperature")

    again = summariser.apply(series_batch(), source=SOURCE)
    from_a_new_instance = stores.summariser().apply(series_batch(), source=SOURCE)

    assert again.summaries_written == 0
    assert from_a_new_instance.summaries_written == 0
    assert stores.documents.read_changes(SUMMARIES, feed_end, 100).documents == []
    assert stores.state.get(WINDOWS_TABLE, "sensor-01", "temperature") == etag


def test_smaller_batches_end_in_the_same_latest_summary(stores: Stores, reference: Stores) -> None:
    """Each batch summarises the window as it stands after it, so splitting one series' readings over
    several batches adds the intermediate summaries; the final one is the same as for the whole batch."""
    batch = series_batch()
    summariser = stores.summariser()

    for start in range(0, len(batch), 4):
        summariser.apply(batch[start : start + 4], source=SOURCE)

    whole, pieces = reference.summaries(), stores.summaries()
    assert whole.items() <= pieces.items()  # every summary of the whole batch, with the same content
    for sensor in ("sensor-01", "sensor-02"):
        assert stores.latest(sensor) == reference.latest(sensor)
        assert stores.window_ids(sensor) == reference.window_ids(sensor)
    # Every extra summary is of an earlier window: none is newer than the final one of its series.
    for extra in pieces.keys() - whole.keys():
        doc = pieces[extra]
        assert doc["window_end"] < stores.latest(doc["sensor_id"], doc["metric"])["window_end"]


SENSOR_ID_RULE = "must be 1-64 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"
TIMESTAMP_RULE = "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-01T12:00:00Z"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"value": None}, "value is required"),
        ({"value": "21.5"}, "value must be a finite number"),
        ({"value": True}, "value must be a finite number"),
        ({"value": math.nan}, "value must be a finite number"),
        ({"value": math.inf}, "value must be a finite number"),
        ({"value": -math.inf}, "value must be a finite number"),
        ({"value": 1000.0}, "value must be between -60 and 150 °C"),
        ({"unit": "°F"}, "unit must be '°C' for temperature"),
        ({"timestamp": "yesterday at noon"}, f"timestamp {TIMESTAMP_RULE}"),
        ({"timestamp": "2024-05-01T10:00:09"}, f"timestamp {TIMESTAMP_RULE}"),
        ({"timestamp": None}, "timestamp is required"),
        ({"sensor_id": None}, "sensor_id is required"),
        ({"sensor_id": "<b>x"}, f"sensor_id {SENSOR_ID_RULE}"),
        ({"id": None}, "id is required"),
    ],
)
def test_invalid_readings_are_dead_lettered_and_the_rest_summarised(
    stores: Stores, bad: dict[str, object], reason: str
) -> None:
    good = [reading("sensor-01", second, 10.0 + second) for second in range(3)]
    invalid = {**reading("sensor-01", 9, 99.0, note="the bad one"), **bad}

    outcome = stores.summariser().apply([good[0], invalid, *good[1:]], source=SOURCE)

    assert (outcome.received, outcome.summarised, outcome.dead_lettered) == (4, 3, 1)
    assert outcome.summaries_written == 1
    latest = stores.latest("sensor-01")
    assert (latest["count"], latest["min"], latest["max"]) == (3, 10.0, 12.0)  # the bad 99.0 is not in it
    letters = DeadLetterBox(stores.state).list(SOURCE)
    assert [letter["reason"] for letter in letters] == [reason]
    assert letters[0]["source"] == SOURCE
    assert "the bad one" in letters[0]["item"]  # the item itself is kept, to be looked at later
    assert [e.row_key for e in stores.state.query(DEAD_LETTERS_TABLE)] == [letters[0]["key"]]


def test_a_batch_of_only_invalid_readings_creates_no_series(stores: Stores) -> None:
    outcome = stores.summariser().apply([reading("sensor-01", 1, math.nan), "not an object", None], source=SOURCE)

    assert (outcome.received, outcome.summarised, outcome.dead_lettered, outcome.summaries_written) == (3, 0, 3, 0)
    assert stores.summaries() == {}
    assert stores.state.query(WINDOWS_TABLE) == []
    reasons = sorted(letter["reason"] for letter in DeadLetterBox(stores.state).list())
    assert reasons == [
        "reading must be a JSON object",
        "reading must be a JSON object",
        "value must be a finite number",
    ]


def test_two_instances_converge_on_the_true_latest_window(stores: Stores) -> None:
    a, b = stores.summariser(), stores.summariser()

    a.apply([reading("sensor-01", s, float(s)) for s in range(10)], source=SOURCE)
    b.apply([reading("sensor-01", s, float(s)) for s in range(10, 13)], source=SOURCE)  # A's cache is now stale
    outcome = a.apply([reading("sensor-01", s, float(s)) for s in (13, 14)], source=SOURCE)

    assert outcome.summaries_written == 1
    assert stores.window_ids("sensor-01") == [f"sensor-01-temperature-{s:04d}" for s in range(10, 15)]
    latest = stores.latest("sensor-01")
    assert (latest["count"], latest["min"], latest["max"], latest["avg"]) == (5, 10.0, 14.0, 12.0)
    newest = stores.documents.latest(SUMMARIES, "sensor-01", "window_end", 1)
    assert [d["id"] for d in newest] == [latest["id"]]
    assert {k: v for k, v in newest[0].items() if not k.startswith("_")} == latest

    # And B, whose cache is now stale in turn, also merges into the true window.
    b.apply([reading("sensor-01", 15, 15.0)], source=SOURCE)
    assert stores.window_ids("sensor-01") == [f"sensor-01-temperature-{s:04d}" for s in range(11, 16)]


def test_a_late_reading_seen_by_two_instances_leaves_the_summary_consistent(stores: Stores) -> None:
    """A's cache misses a reading B merged; A then gets a reading B already has. After A's conflict and
    re-merge, the summary document of the newest window must hold that window's stats, not A's stale view."""
    a, b = stores.summariser(), stores.summariser()
    a.apply([reading("sensor-01", s, float(s)) for s in range(5)], source=SOURCE)  # window 0..4
    # B merges a late reading (a second one at second 3) and the newest one, 5.
    b.apply([reading("sensor-01", 3, 100.0, id="late-3b"), reading("sensor-01", 5, 5.0)], source=SOURCE)

    a.apply([reading("sensor-01", 5, 5.0)], source=SOURCE)  # redelivered to A, whose cache lacks "late-3b"

    latest = stores.latest("sensor-01")
    assert "late-3b" in stores.window_ids("sensor-01")
    assert latest["max"] == 100.0
    stored = stores.summaries()[latest["id"]]
    assert (stored["count"], stored["min"], stored["max"], stored["avg"]) == (
        latest["count"],
        latest["min"],
        latest["max"],
        latest["avg"],
    )


def test_an_old_reading_after_the_window_is_full_changes_nothing(stores: Stores) -> None:
    summariser = stores.summariser()
    summariser.apply([reading("sensor-01", s, float(s)) for s in range(10, 10 + WINDOW)], source=SOURCE)
    before_window = stores.state.get(WINDOWS_TABLE, "sensor-01", "temperature")
    before_summaries = stores.summaries()
    feed_end = stores.documents.end_of_feed(SUMMARIES)

    outcome = summariser.apply([reading("sensor-01", 3, -50.0)], source=SOURCE)
    from_a_new_instance = stores.summariser().apply([reading("sensor-01", 4, -60.0)], source=SOURCE)

    assert outcome.summaries_written == 0
    assert from_a_new_instance.summaries_written == 0
    assert (outcome.summarised, outcome.dead_lettered) == (1, 0)
    assert stores.state.get(WINDOWS_TABLE, "sensor-01", "temperature") == before_window
    assert stores.summaries() == before_summaries
    assert stores.documents.read_changes(SUMMARIES, feed_end, 100).documents == []
    assert stores.latest("sensor-01")["min"] == 10.0


def test_an_older_reading_inside_the_window_is_merged(stores: Stores) -> None:
    summariser = stores.summariser()
    summariser.apply([reading("sensor-01", s, float(s)) for s in (10, 11, 13, 14, 15)], source=SOURCE)

    outcome = summariser.apply([reading("sensor-01", 12, -5.0)], source=SOURCE)

    assert outcome.summaries_written == 1
    assert stores.window_ids("sensor-01") == [f"sensor-01-temperature-{s:04d}" for s in (11, 12, 13, 14, 15)]
    assert stores.latest("sensor-01")["min"] == -5.0


# --- event bodies ------------------------------------------------------------------------------------


def test_event_bodies_become_readings_or_dead_letters(stores: Stores) -> None:
    one = reading("sensor-03", 1, 21.0)
    many = [reading("sensor-03", 2, 23.0), reading("sensor-04", 2, 30.0)]
    bodies = [
        json.dumps(one).encode(),
        json.dumps(many).encode(),
        b"\xff\xfe{not utf-8",
        b"{this is not json",
        b"42",
        b'"a string"',
        json.dumps([reading("sensor-03", 3, 25.0), 7]).encode(),  # a list may hold junk: parsed item by item
    ]

    items, rejected = readings_from_events(bodies, source="eventhub-telemetry")

    assert items == [one, *many, reading("sensor-03", 3, 25.0), 7]
    assert [(letter.reason, letter.item) for letter in rejected] == [
        ("event body is not UTF-8", b"\xff\xfe{not utf-8"),
        ("event body is not JSON", b"{this is not json"),
        ("event body is neither an object nor an array", b"42"),
        ("event body is neither an object nor an array", b'"a string"'),
    ]

    outcome = stores.summariser().apply(items, source="eventhub-telemetry", rejected=rejected)

    assert (outcome.received, outcome.summarised, outcome.dead_lettered, outcome.summaries_written) == (9, 4, 5, 2)
    assert (stores.latest("sensor-03")["count"], stores.latest("sensor-03")["max"]) == (3, 25.0)
    letters = DeadLetterBox(stores.state).list("eventhub-telemetry")
    assert sorted(letter["reason"] for letter in letters) == [
        "event body is neither an object nor an array",
        "event body is neither an object nor an array",
        "event body is not JSON",
        "event body is not UTF-8",
        "reading must be a JSON object",
    ]
    kept = {letter["reason"]: letter["item"] for letter in letters}
    assert kept["event body is not JSON"] == "{this is not json"
    assert kept["event body is not UTF-8"].startswith("\\xff\\xfe")


def test_an_oversized_event_body_is_dead_lettered() -> None:
    body = b"[" + b" " * (1024 * 1024) + b"]"

    items, rejected = readings_from_events([body], source="eventhub-telemetry")

    assert items == []
    assert [letter.reason for letter in rejected] == ["event body larger than 1 MB"]


def test_a_stale_instance_does_not_overwrite_an_older_summary(stores: Stores) -> None:
    a, b = stores.summariser(), stores.summariser()
    a.apply([reading("sensor-01", s, float(s)) for s in range(5)], source=SOURCE)  # window 0..4
    b.apply([reading("sensor-01", 3, 100.0, id="late-3b"), reading("sensor-01", 5, 5.0)], source=SOURCE)
    summary_at_5 = stores.latest("sensor-01")
    b.apply([reading("sensor-01", 6, 6.0)], source=SOURCE)

    a.apply([reading("sensor-01", 5, 5.0)], source=SOURCE)  # A's stale cache has no "late-3b"

    assert stores.window_ids("sensor-01")[0] == "late-3b"
    assert stores.summaries()[summary_at_5["id"]]["max"] == summary_at_5["max"] == 100.0


class _SummaryWriteFails:
    """A document store whose next summary upsert fails, as a dropped connection would."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail_next = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upsert_many(self, container: str, documents: Any) -> None:
        if self.fail_next:
            self.fail_next = False
            raise StorageError("connection reset")
        self.inner.upsert_many(container, documents)


@pytest.mark.parametrize("same_process", [True, False])
def test_a_summary_lost_after_its_state_write_is_rewritten_on_redelivery(stores: Stores, same_process: bool) -> None:
    batch = [reading("sensor-01", s, float(s)) for s in range(4)]
    flaky = _SummaryWriteFails(stores.documents)
    first = Summariser(flaky, stores.state, WINDOW)
    with pytest.raises(StorageError):
        first.apply(batch, source=SOURCE)
    assert stores.summaries() == {}

    retry = first if same_process else Summariser(stores.documents, stores.state, WINDOW)
    retry.apply(batch, source=SOURCE)  # the trigger delivers the same batch again
    summaries = stores.summaries()
    assert len(summaries) == 1
    (only,) = summaries.values()
    assert (only["count"], only["max"]) == (4, 3.0)


class _DiesBeforeJudging:
    """A summary watcher whose process dies after the summaries are written, before it judges them."""

    def __init__(self, inner: ThresholdAlerts) -> None:
        self.inner = inner

    def forget(self, key: tuple[str, str]) -> None:
        self.inner.forget(key)

    def judge(self, summaries: Any) -> int:
        raise KeyboardInterrupt  # not an Exception: nothing in the batch gets to handle it, as with a SIGKILL


@pytest.mark.parametrize("newer_reading", [False, True], ids=["same-batch", "with-a-newer-reading"])
def test_a_summary_written_but_not_judged_before_a_crash_is_judged_after_it(
    stores: Stores, newer_reading: bool
) -> None:
    alerts = AlertStore(stores.state)
    rule = {"kind": "threshold", "metric": "temperature", "sensors": "sensor-01", "op": ">", "value": 30, "clear": 28}
    alerts.put_rule(parse_rule("hot", rule), "2024-05-01T00:00:00.000Z")

    def process(watcher: Callable[[ThresholdAlerts], Any] = lambda alerts: alerts) -> Summariser:
        judge = watcher(ThresholdAlerts(alerts, RuleBook(alerts)))
        return Summariser(stores.documents, stores.state, 1, watcher=judge)

    process().apply([reading("sensor-01", 0, 25.0)], source=SOURCE)
    with pytest.raises(KeyboardInterrupt):
        process(_DiesBeforeJudging).apply([reading("sensor-01", 1, 35.0)], source=SOURCE)
    assert alerts.outbox() == []

    # After the restart the change feed delivers the batch again, perhaps with what came after it.
    redelivered = [reading("sensor-01", 1, 35.0)] + ([reading("sensor-01", 2, 27.0)] if newer_reading else [])
    process().apply(redelivered, source=SOURCE)
    process().apply(redelivered, source=SOURCE)  # and once more: nothing fires twice

    statuses = [row.row_key.rsplit("-", 1)[1] for row in alerts.outbox()]
    assert sorted(statuses) == (["firing", "resolved"] if newer_reading else ["firing"])
