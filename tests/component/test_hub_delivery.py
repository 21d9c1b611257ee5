"""Delivery to several hubs keeps per-hub records in the embedded state store: retries resend only what is missing."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from shared.microshare.hub_fanout import FanoutResult, HubFanout, KeyedEvent
from shared.ops.metrics import PipelineMetrics
from shared.readings.dead_letters import DeadLetterBox
from shared.settings import EVENTHUB_EXTRA_HUBS, EVENTHUB_NAME, HubTarget, SettingsError, parse_hub_targets
from shared.storage.ports import OutboundEvent, PublishOutcome, StorageError
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.events import SqliteEventHub
from shared.storage.sqlite.state import SqliteStateStore

STREAM = "summaries"
TABLE = "deliveries"


class RecordingPublisher:
    """Keeps what it was sent; raises like an unreachable hub while `failing` is set."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.failing = False

    def publish(self, hub: str, events: Sequence[OutboundEvent]) -> PublishOutcome:
        if self.failing:
            raise StorageError(f"sending to event hub '{hub}' failed: ConnectError")
        self.received.extend(event.body for event in events)
        return PublishOutcome(len(events), [])


@pytest.fixture
def state(database: SqliteDatabase) -> SqliteStateStore:
    return SqliteStateStore(database)


def deliver(
    fanout: HubFanout,
    state: SqliteStateStore,
    stream: str,
    events: Sequence[KeyedEvent],
    metrics: PipelineMetrics | None = None,
) -> FanoutResult:
    """A delivery in a session of its own, as each forwarder run opens one."""
    return fanout.open(stream, DeadLetterBox(state, metrics)).deliver(events)


def _keyed(*keys: str) -> list[KeyedEvent]:
    return [(key, OutboundEvent(f"body-{key}".encode(), partition_key="s1")) for key in keys]


def test_a_failed_hub_gets_only_what_it_missed_and_the_good_hub_gets_nothing_twice(state: SqliteStateStore) -> None:
    good, flaky = RecordingPublisher(), RecordingPublisher()
    fanout = HubFanout({"telemetry": good, "archive": flaky}, state)
    flaky.failing = True

    first = deliver(fanout, state, STREAM, _keyed("k1", "k2", "k3"))

    assert first.hubs["telemetry"].sent == 3
    assert first.hubs["telemetry"].error is None
    assert first.hubs["archive"].sent == 0
    assert first.failed == {"archive": "sending to event hub 'archive' failed: ConnectError"}
    assert first.everywhere == frozenset()

    flaky.failing = False
    second = deliver(fanout, state, STREAM, _keyed("k1", "k2", "k3", "k4"))

    assert (second.hubs["telemetry"].sent, second.hubs["telemetry"].skipped) == (1, 3)
    assert (second.hubs["archive"].sent, second.hubs["archive"].skipped) == (4, 0)
    assert second.failed == {}
    assert good.received == [b"body-k1", b"body-k2", b"body-k3", b"body-k4"]
    assert flaky.received == [b"body-k1", b"body-k2", b"body-k3", b"body-k4"]
    assert second.everywhere == {"k1", "k2", "k3", "k4"}


def test_delivered_keys_are_skipped_per_stream_and_a_repeated_key_is_sent_once(state: SqliteStateStore) -> None:
    hub = RecordingPublisher()
    fanout = HubFanout({"telemetry": hub}, state)
    deliver(fanout, state, STREAM, _keyed("k1", "k2"))

    again = deliver(fanout, state, STREAM, _keyed("k2", "k3", "k3", "k1"))
    other_stream = deliver(fanout, state, "alerts", _keyed("k1"))

    assert (again.hubs["telemetry"].sent, again.hubs["telemetry"].skipped) == (1, 2)
    assert other_stream.hubs["telemetry"].sent == 1  # delivery records are kept per stream
    assert hub.received == [b"body-k1", b"body-k2", b"body-k3", b"body-k1"]
    assert again.everywhere == {"k1", "k2", "k3"}


def test_events_too_large_are_reported_recorded_parked_and_counted_once_and_never_tried_again(
    database: SqliteDatabase, state: SqliteStateStore
) -> None:
    embedded = SqliteEventHub(database, max_event_bytes=100)
    other = RecordingPublisher()
    fanout = HubFanout({"telemetry": embedded, "archive": other}, state)
    big = OutboundEvent(b"x" * 101, partition_key="s1")
    events: list[KeyedEvent] = [("small", OutboundEvent(b"fits", partition_key="s1")), ("big", big)]

    metrics = PipelineMetrics()

    first = deliver(fanout, state, STREAM, events, metrics)
    second = deliver(fanout, state, STREAM, events, metrics)

    assert first.hubs["telemetry"].sent == 1
    assert first.hubs["telemetry"].too_large == [("big", big)]
    assert first.hubs["archive"].too_large == []
    assert first.everywhere == {"small", "big"}  # a too-large event must not hold the watermark back
    assert (second.hubs["telemetry"].sent, second.hubs["telemetry"].skipped) == (0, 2)
    assert second.hubs["telemetry"].too_large == []
    assert [e.body for p in range(embedded.partitions) for e in embedded.receive("telemetry", p, None, 10)] == [b"fits"]
    record = state.get(TABLE, f"telemetry|{STREAM}", "big")
    assert record is not None
    assert record.properties["too_large"] is True
    letters = DeadLetterBox(state).list("eventhub:telemetry")
    assert [(letter["reason"], letter["item"]) for letter in letters] == [
        ("event larger than the hub accepts", "x" * 101)
    ]
    counted = {"source": "eventhub:telemetry", "reason": "event larger than the hub accepts"}
    assert metrics.registry.get_sample_value("sensorpulse_dead_letters_total", counted) == 1


def test_keys_table_storage_would_refuse_are_stored_as_digests_and_still_deduplicate(state: SqliteStateStore) -> None:
    hub = RecordingPublisher()
    fanout = HubFanout({"telemetry": hub}, state)
    awkward = ["a/b", "back\\slash", "hash#", "what?", "tab\there", "x" * 201, "sha256-" + "0" * 64, "plain"]
    stream = "sensors/s1#today"

    deliver(fanout, state, stream, _keyed(*awkward))
    again = deliver(fanout, state, stream, _keyed(*awkward))

    assert again.hubs["telemetry"].skipped == len(awkward)
    stored = state.query(TABLE)
    assert len(stored) == len(awkward)
    forbidden = set("/\\#?") | {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]}
    for entity in stored:
        for key in (entity.partition_key, entity.row_key):
            assert not forbidden & set(key)
            assert len(key) <= 300
    assert "plain" in {e.row_key for e in stored}  # keys that are fine stay readable


def test_fanout_refuses_no_hubs_and_names_that_are_not_hub_names(state: SqliteStateStore) -> None:
    with pytest.raises(ValueError):
        HubFanout({}, state)
    with pytest.raises(ValueError):
        HubFanout({"a|b": RecordingPublisher()}, state)


# --- settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [None, "", "  ", "[]"])
def test_without_extra_hubs_there_is_only_the_primary(extra: str | None) -> None:
    assert parse_hub_targets("telemetry", extra) == [HubTarget("telemetry")]


def test_extra_hubs_are_names_or_objects_with_a_connection_prefix() -> None:
    extra = '["archive", {"name": "partner.feed", "connection": "PARTNER_EVENTHUB"}, {"name": "audit_1"}]'

    assert parse_hub_targets("telemetry", extra) == [
        HubTarget("telemetry"),
        HubTarget("archive"),
        HubTarget("partner.feed", "PARTNER_EVENTHUB"),
        HubTarget("audit_1"),
    ]


@pytest.mark.parametrize(
    "extra",
    [
        "[archive]",  # not JSON
        '{"name": "archive"}',  # not a list
        "[42]",
        '[""]',
        '[{"connection": "OTHER"}]',
        '[{"name": "archive", "conection": "OTHER"}]',  # a misspelt field is not ignored
        '["bad/name"]',
        '["-dash-first"]',
        '["x' + "y" * 256 + '"]',
        '["TELEMETRY"]',  # the primary again: hub names ignore case
        '["archive", "archive"]',
        '[{"name": "archive", "connection": "Endpoint=sb://x;SharedAccessKey=SeCrEt"}]',
    ],
)
def test_malformed_extra_hubs_name_the_setting_but_never_echo_its_value(extra: str) -> None:
    with pytest.raises(SettingsError) as raised:
        parse_hub_targets("telemetry", extra)

    message = str(raised.value)
    assert EVENTHUB_EXTRA_HUBS in message
    assert "SeCrEt" not in message
    assert "archive" not in message
    assert raised.value.__cause__ is None


def test_a_primary_that_is_not_a_hub_name_names_its_own_setting() -> None:
    with pytest.raises(SettingsError, match=EVENTHUB_NAME):
        parse_hub_targets("tele/metry", None)
