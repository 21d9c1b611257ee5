"""eventHubTrigger: reads each partition of the embedded hub for one consumer group.

As the Event Hubs trigger does: a batch holds at most host.json's maxEventBatchSize events of one
partition, in order; cardinality "many" hands the function the list, "one" calls it once per event; the
consumer group's checkpoint moves on after the function returns or its retry policy gives up. A stop
mid-retry keeps the checkpoint, so the batch comes again after restart (at-least-once delivery).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import azure.functions as func

from devhost.app.function_index import FunctionSpec
from devhost.app.invoker import Invoker
from shared.storage.sqlite.events import HubEvent, SqliteEventHub

logger = logging.getLogger("devhost")

IDLE_POLL_SECONDS = 0.5


IOTHUB_PREFIX = "iothub-"


def to_event(event: HubEvent) -> func.EventHubEvent:
    """The event as the Functions host hands it over.

    The embedded hub stands in for an Event Hub that IoT Hub routes device messages to: there IoT Hub sets
    system properties such as `iothub-connection-device-id`, which the worker exposes as `iothub_metadata`
    without the prefix. Here an application property named `iothub-...` plays that part. Other application
    properties are not passed on: azure.functions.EventHubEvent has no argument for them."""
    iothub = {
        name[len(IOTHUB_PREFIX) :]: str(value)
        for name, value in event.properties.items()
        if name.startswith(IOTHUB_PREFIX)
    }
    return func.EventHubEvent(
        body=event.body,
        enqueued_time=datetime.fromtimestamp(event.enqueued_time, tz=UTC),
        partition_key=event.partition_key,
        sequence_number=event.sequence_number,
        offset=str(event.sequence_number),
        iothub_metadata=iothub or None,
    )


class EventHubDriver:
    def __init__(
        self,
        spec: FunctionSpec,
        invoker: Invoker,
        hub: SqliteEventHub,
        stop: threading.Event,
        max_batch_size: int,
    ) -> None:
        trigger = spec.trigger
        self.spec = spec
        self.hub_name = str(trigger["eventHubName"])
        self.consumer_group = str(trigger.get("consumerGroup") or "$Default")
        self.many = str(trigger.get("cardinality", "many")).lower() == "many"
        self.max_batch_size = max_batch_size
        self._invoker = invoker
        self._hub = hub
        self._stop = stop

    def _deliver(self, events: list[HubEvent]) -> bool:
        name = str(self.spec.trigger["name"])
        if self.many:
            batch = [to_event(event) for event in events]
            return self._invoker.call_with_retry(self.spec, lambda: {name: batch})
        for event in events:
            arguments = {name: to_event(event)}
            if not self._invoker.call_with_retry(self.spec, lambda a=arguments: a) and self._stop.is_set():  # type: ignore[misc]
                return False
        return True

    def poll_partition(self, partition: int) -> int:
        """Deliver at most one batch from `partition`; returns how many events it held."""
        after = self._hub.checkpoint(self.hub_name, self.consumer_group, partition)
        events = self._hub.receive(self.hub_name, partition, after, self.max_batch_size)
        if not events:
            return 0
        succeeded = self._deliver(events)
        if not succeeded and self._stop.is_set():
            return 0
        if not succeeded:
            logger.error(
                "Functions.%s failed on %d events of partition %d after its retries; moving on, as the host does",
                self.spec.name,
                len(events),
                partition,
            )
        self._hub.set_checkpoint(self.hub_name, self.consumer_group, partition, events[-1].sequence_number)
        return len(events)

    def run(self) -> None:
        while not self._stop.is_set():
            delivered = 0
            for partition in range(self._hub.partitions):
                if self._stop.is_set():
                    return
                try:
                    delivered += self.poll_partition(partition)
                except Exception:
                    logger.exception("event hub %s partition %d could not be read", self.hub_name, partition)
            if delivered == 0 and self._stop.wait(IDLE_POLL_SECONDS):
                return
