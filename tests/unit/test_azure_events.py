"""The Event Hubs publisher packs events into the SDK's real batches, offline: a fake client, real EventDataBatch."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import pytest
from azure.eventhub import EventData, EventDataBatch
from azure.eventhub.amqp import AmqpAnnotatedMessage
from azure.eventhub.exceptions import EventHubError

from shared.settings import SettingsError
from shared.storage.azure.events import RETRY_OPTIONS, AzureEventPublisher
from shared.storage.ports import OutboundEvent, StorageError

MAX_BATCH_BYTES = 4096  # small, so that a few events fill a batch
SECRET = "c2VjcmV0LWtleS1kby1ub3QtbG9n"  # pragma: allowlist secret
CONNECTION_STRING = (
    f"Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={SECRET};"
    "UseDevelopmentEmulator=true"
)


class RecordingBatch(EventDataBatch):
    """A real batch, with the SDK's own size accounting, that remembers what it accepted."""

    def __init__(self, partition_key: str | None) -> None:
        super().__init__(max_size_in_bytes=MAX_BATCH_BYTES, partition_key=partition_key)
        self.partition_key = partition_key
        self.accepted: list[EventData] = []

    def add(self, event_data: EventData | AmqpAnnotatedMessage) -> None:
        super().add(event_data)
        assert isinstance(event_data, EventData)
        self.accepted.append(event_data)


class FakeProducer:
    def __init__(self, fail_with: Exception | None = None) -> None:
        self.fail_with = fail_with
        self.sent: list[RecordingBatch] = []
        self.closed = False

    def create_batch(self, *, partition_key: str | None = None) -> EventDataBatch:
        return RecordingBatch(partition_key)

    def send_batch(self, event_data_batch: EventDataBatch) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        assert isinstance(event_data_batch, RecordingBatch)
        self.sent.append(event_data_batch)

    def close(self) -> None:
        self.closed = True


class Producers:
    """The client factory: counts how often a client is made per hub."""

    def __init__(self, make: Callable[[], FakeProducer] = FakeProducer) -> None:
        self._make = make
        self.made: dict[str, list[FakeProducer]] = {}

    def __call__(self, hub: str) -> FakeProducer:
        producer = self._make()
        self.made.setdefault(hub, []).append(producer)
        return producer

    def only(self, hub: str) -> FakeProducer:
        (producer,) = self.made[hub]
        return producer


def _events_per_batch(body_bytes: int, partition_key: str | None, properties: dict[str, str]) -> int:
    """How many identical events the SDK puts into one batch of MAX_BATCH_BYTES."""
    batch = EventDataBatch(max_size_in_bytes=MAX_BATCH_BYTES, partition_key=partition_key)
    count = 0
    while True:
        data = EventData(b"x" * body_bytes)
        data.properties = {key: value for key, value in properties.items()}
        try:
            batch.add(data)
        except ValueError:
            return count
        count += 1


def test_each_partition_key_is_packed_in_order_into_the_fewest_batches() -> None:
    producers = Producers()
    publisher = AzureEventPublisher(producers)
    counts = {"sensor-a": 9, "sensor-b": 5, None: 4}
    properties = {"kind": "summary"}
    events = [
        OutboundEvent(f"{key}-{n:03d}".encode().ljust(700, b"."), key, properties)
        for n in range(max(counts.values()))
        for key, count in counts.items()
        if n < count
    ]

    outcome = publisher.publish("telemetry", events)

    batches = producers.only("telemetry").sent
    assert outcome.sent == len(events)
    assert outcome.too_large == []
    per_batch = {key: _events_per_batch(700, key, properties) for key in counts}
    assert 1 < min(per_batch.values()) < max(counts.values())  # packing is observable with these sizes
    assert len(batches) == sum(math.ceil(count / per_batch[key]) for key, count in counts.items())
    for key in counts:
        own = [batch for batch in batches if batch.partition_key == key]
        bodies = [data.body_as_str() for batch in own for data in batch.accepted]
        assert bodies == [e.body.decode() for e in events if e.partition_key == key]  # once each, in order
    assert all(data.properties == properties for batch in batches for data in batch.accepted)


def test_an_event_too_large_for_an_empty_batch_is_returned_and_the_others_are_sent() -> None:
    producers = Producers()
    publisher = AzureEventPublisher(producers)
    small_1, huge, small_2 = (OutboundEvent(body, "k") for body in (b"first", b"h" * 5000, b"second"))
    too_big_with_properties = OutboundEvent(b"p", "k", {"note": "n" * 5000})

    outcome = publisher.publish("telemetry", [small_1, huge, too_big_with_properties, small_2])

    assert outcome.sent == 2
    assert outcome.too_large == [huge, too_big_with_properties]
    assert outcome.too_large[0] is huge
    (batch,) = producers.only("telemetry").sent
    assert [data.body_as_str() for data in batch.accepted] == ["first", "second"]


def test_a_failed_send_raises_a_storage_error_naming_the_hub_and_never_the_key() -> None:
    def leaky_producer() -> FakeProducer:
        # As if the SDK echoed the connection string in an error: it must not reach our message.
        return FakeProducer(fail_with=EventHubError(f"link refused for {CONNECTION_STRING}"))

    publisher = AzureEventPublisher(Producers(leaky_producer))

    with pytest.raises(StorageError) as raised:
        publisher.publish("archive-hub", [OutboundEvent(b"one"), OutboundEvent(b"two")])

    assert "archive-hub" in str(raised.value)
    assert SECRET not in str(raised.value)
    assert isinstance(raised.value.__cause__, EventHubError)


def test_clients_are_made_once_per_hub_even_from_many_threads_and_all_are_closed() -> None:
    producers = Producers()
    publisher = AzureEventPublisher(producers)
    threads = 8
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def publish(worker: int) -> None:
        try:
            start.wait()
            publisher.publish("telemetry", [OutboundEvent(f"w{worker}".encode())])
        except BaseException as error:  # reported below: an exception in a thread would otherwise vanish
            errors.append(error)

    workers = [threading.Thread(target=publish, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    publisher.publish("archive", [OutboundEvent(b"a")])
    publisher.publish("archive", [OutboundEvent(b"b")])
    assert publisher.publish("never-used", []).sent == 0

    assert errors == []
    assert {hub: len(made) for hub, made in producers.made.items()} == {"telemetry": 1, "archive": 1}
    assert len(producers.only("telemetry").sent) == threads
    publisher.close()
    assert producers.only("telemetry").closed
    assert producers.only("archive").closed


def test_a_connection_string_is_refused_unless_it_points_at_the_emulator() -> None:
    azure_string = CONNECTION_STRING.replace("UseDevelopmentEmulator=true", "")

    with pytest.raises(SettingsError) as raised:
        AzureEventPublisher.from_connection_string(azure_string)

    assert SECRET not in str(raised.value)


def test_real_clients_get_the_chosen_retry_options() -> None:
    # The SDK takes them as **kwargs, where a misspelt option would be ignored without a word.
    publisher = AzureEventPublisher.from_connection_string(CONNECTION_STRING)
    client, _ = publisher._client("telemetry")  # creating a client opens no connection
    try:
        config = client._config  # type: ignore[attr-defined]
        assert config.retry_total == RETRY_OPTIONS["retry_total"]
        assert config.backoff_factor == RETRY_OPTIONS["retry_backoff_factor"]
        assert config.backoff_max == RETRY_OPTIONS["retry_backoff_max"]
        assert config.retry_mode == RETRY_OPTIONS["retry_mode"]
    finally:
        publisher.close()
