"""Event Hubs adapter: the EventPublisher port on azure-eventhub's sync producer, one client per hub per process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.eventhub import EventData, EventDataBatch, EventHubProducerClient
from azure.eventhub.exceptions import EventHubError

from shared.ops.log_context import app_logger
from shared.settings import SettingsError
from shared.storage.ports import OutboundEvent, PublishOutcome, StorageError

logger = app_logger(__name__)


class _RetryOptions(TypedDict):
    retry_total: int
    retry_backoff_factor: float
    retry_backoff_max: float
    retry_mode: Literal["exponential", "fixed"]


# The SDK retries a failed send itself, and the Functions host retries the whole invocation on top of that
# (HubFanout then sends only what has not reached the hub yet). So the SDK only needs to ride out a throttled
# or moved link: three attempts backing off 0.5 s, 1 s, 2 s. Its defaults (up to 120 s between attempts)
# would hold a Functions worker thread for minutes and multiply with the host's own retries.
RETRY_OPTIONS: _RetryOptions = {
    "retry_total": 3,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 8.0,
    "retry_mode": "exponential",
}


class ProducerClient(Protocol):
    """The part of EventHubProducerClient the publisher uses (tests pass a fake that builds real batches)."""

    def create_batch(self, *, partition_key: str | None = None) -> EventDataBatch: ...

    def send_batch(self, event_data_batch: EventDataBatch) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class _DescribableClient(Protocol):
    def get_eventhub_properties(self) -> dict[str, Any]: ...


class EventHubSendError(StorageError):
    """A hub could not be reached or refused a send; the message names the hub, never a credential."""


class AzureEventPublisher:
    """Publishes to any hub of one namespace; a hub's client is created on first use and kept for the process."""

    def __init__(self, client_for: Callable[[str], ProducerClient]) -> None:
        self._client_for = client_for
        self._clients: dict[str, tuple[ProducerClient, threading.Lock]] = {}
        self._guard = threading.Lock()

    @classmethod
    def from_connection_string(cls, conn_str: str) -> AzureEventPublisher:
        """For the local Event Hubs emulator only: in Azure the app authenticates with its managed identity."""
        if not _is_emulator(conn_str):
            raise SettingsError(
                "an Event Hubs connection string is accepted only for the local emulator "
                "(UseDevelopmentEmulator=true); in Azure use the namespace with a managed identity"
            )
        return cls(
            lambda hub: EventHubProducerClient.from_connection_string(conn_str, eventhub_name=hub, **RETRY_OPTIONS)
        )

    @classmethod
    def from_namespace(cls, fully_qualified_namespace: str, credential: TokenCredential) -> AzureEventPublisher:
        """Identity-based: `credential` is the process's one credential object, shared by every client."""
        return cls(lambda hub: EventHubProducerClient(fully_qualified_namespace, hub, credential, **RETRY_OPTIONS))

    def _client(self, hub: str) -> tuple[ProducerClient, threading.Lock]:
        with self._guard:
            if hub not in self._clients:
                # Creating a client opens nothing (the link opens on first use), so holding the guard is cheap.
                self._clients[hub] = (self._client_for(hub), threading.Lock())
            return self._clients[hub]

    def check(self, hub: str) -> None:
        """Readiness: the hub answers a properties request with this identity."""
        client, lock = self._client(hub)
        if not isinstance(client, _DescribableClient):
            raise TypeError(f"{type(client).__name__} cannot describe a hub")
        try:
            with lock:
                client.get_eventhub_properties()
        except EventHubError as error:
            raise EventHubSendError(f"event hub {hub!r} did not answer: {type(error).__name__}") from error

    def publish(self, hub: str, events: Sequence[OutboundEvent]) -> PublishOutcome:
        """Send in as few batches as fit, in order within each partition key; an event that does not fit into
        an empty batch is returned in too_large. If a send fails, the batches before it have gone out."""
        if not events:
            return PublishOutcome(0, [])
        client, lock = self._client(hub)
        too_large: list[OutboundEvent] = []
        sent = batches = 0
        try:
            # The SDK does not promise its clients are thread-safe, and Functions runs sync invocations on a
            # thread pool: one send at a time per hub.
            with lock:
                for partition_key, group in _by_partition_key(events).items():
                    for batch in _pack(client, partition_key, group, too_large):
                        client.send_batch(batch)
                        sent += len(batch)
                        batches += 1
        except (EventHubError, AzureError) as error:
            raise EventHubSendError(
                f"sending to event hub '{hub}' failed after {sent} of {len(events)} events: {type(error).__name__}"
            ) from error
        logger.info(
            "published %d events to %s in %d batches",
            sent,
            hub,
            batches,
            extra={"hub": hub, "sent": sent, "batches": batches, "too_large": len(too_large)},
        )
        return PublishOutcome(sent, too_large)

    def close(self) -> None:
        """Close every client; one that fails to close does not keep the others open."""
        with self._guard:
            clients = [client for client, _ in self._clients.values()]
            self._clients.clear()
        for client in clients:
            try:
                client.close()
            except (EventHubError, AzureError) as error:
                logger.warning("closing an event hub client failed: %s", type(error).__name__)


def _is_emulator(conn_str: str) -> bool:
    fields = dict(part.split("=", 1) for part in conn_str.split(";") if "=" in part)
    flags = {key.strip().lower(): value.strip().lower() for key, value in fields.items()}
    return flags.get("usedevelopmentemulator") == "true"


def _by_partition_key(events: Sequence[OutboundEvent]) -> dict[str | None, list[OutboundEvent]]:
    """A batch carries one partition key, so events are grouped by it; None lets the service choose."""
    groups: dict[str | None, list[OutboundEvent]] = {}
    for event in events:
        groups.setdefault(event.partition_key, []).append(event)
    return groups


def _pack(
    client: ProducerClient, partition_key: str | None, events: list[OutboundEvent], too_large: list[OutboundEvent]
) -> Iterator[EventDataBatch]:
    """Batches filled in order, each as full as it goes: for an ordered stream that is the fewest batches.
    Only the SDK knows an event's encoded size, so fitting is decided by `add` raising ValueError."""
    batch = client.create_batch(partition_key=partition_key)
    for event in events:
        if _add(batch, event):
            continue
        if len(batch) == 0:
            too_large.append(event)
            continue
        fresh = client.create_batch(partition_key=partition_key)
        if not _add(fresh, event):
            too_large.append(event)  # the open batch stays open for the events after this one
            continue
        yield batch
        batch = fresh
    if len(batch):
        yield batch


def _add(batch: EventDataBatch, event: OutboundEvent) -> bool:
    # A fresh EventData for every attempt: `add` stamps the message it is given, even when it then refuses it.
    data = EventData(event.body)
    if event.properties:
        data.properties = {key: value for key, value in event.properties.items()}
    try:
        batch.add(data)
    except ValueError:
        return False
    return True
