"""The sliding-window summariser, fed by the `readings` change feed and by the telemetry Event Hub."""

from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from shared.app import get_device_registry, get_summariser
from shared.intake.telemetry import route_events
from shared.ops.invocation import observed
from shared.ops.metrics import get_metrics
from shared.settings import get_settings
from shared.storage.names import LEASES, READINGS

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library's __init__ is unannotated

_EVENTS_SOURCE = "eventhub-telemetry"
_READINGS_SOURCE = "cosmos-readings"

# A whole-batch failure means storage is unavailable: retry until it is back rather than checkpoint past
# the batch (bad items never fail a batch; they are dead-lettered inside it).
_RETRY: dict[str, Any] = {
    "strategy": "exponential_backoff",
    "max_retry_count": "-1",
    "minimum_interval": "00:00:01",
    "maximum_interval": "00:01:00",
}


@bp.function_name("summarise_readings")
@bp.retry(**_RETRY)
@bp.cosmos_db_trigger(
    arg_name="documents",
    connection="COSMOS",
    database_name="%COSMOS_DATABASE_NAME%",
    container_name=READINGS,
    lease_container_name=LEASES,
    # Creates `leases` on an emulator; in Azure infra/ creates it, as an identity with data-plane roles cannot.
    create_lease_container_if_not_exists=True,
    # A new deployment summarises what is already in `readings`; existing leases keep their position.
    start_from_beginning=True,  # type: ignore[arg-type]  # the decorator annotates it as datetime.time
    lease_container_prefix="%LEASE_CONTAINER_PREFIX%",
    # 500 ms keeps the dashboard within about a second of the sensors; an idle poll costs about 1 RU.
    feed_poll_delay=500,
    max_items_per_invocation=500,
)
def summarise_readings(documents: func.DocumentList, context: func.Context) -> None:
    with observed("summarise_readings", context, trigger="cosmos"):
        outcome = get_summariser().apply([doc.to_dict() for doc in documents], source=_READINGS_SOURCE)
        outcome.log(_READINGS_SOURCE, trigger="cosmos")


@bp.function_name("summarise_events")
@bp.retry(**_RETRY)
@bp.event_hub_message_trigger(
    arg_name="events",
    connection="EVENTHUB",
    event_hub_name="%EVENTHUB_NAME%",
    consumer_group="%EVENTHUB_CONSUMER_GROUP%",
    cardinality=func.Cardinality.MANY,
)
def summarise_events(events: list[func.EventHubEvent], context: func.Context) -> None:
    hub = get_settings().eventhub_name
    with observed("summarise_events", context, trigger="eventhub", hub=hub):
        get_metrics().events_processed.labels(hub).inc(len(events))
        batch = route_events(events, source=_EVENTS_SOURCE, received_at=datetime.now(UTC))
        outcome = get_summariser().apply(batch.items, source=_EVENTS_SOURCE, rejected=batch.rejected)
        # After the summaries: a failure here retries the batch, and re-summarising it changes nothing.
        devices = get_device_registry().record(batch.sightings)
        get_metrics().devices_seen(sighting.device_id for sighting in batch.sightings)
        outcome.log(
            _EVENTS_SOURCE,
            trigger="eventhub",
            hub=hub,
            events=len(events),
            people_counter=batch.people_counter,
            snapshots_skipped=batch.snapshots_skipped,
            devices=devices,
            **_sequence_numbers(events),
        )


def _sequence_numbers(events: list[func.EventHubEvent]) -> dict[str, int]:
    """The batch's first and last event (by sequence number), to find them on the hub."""
    numbers = [event.sequence_number for event in events if isinstance(event.sequence_number, int)]
    return {"first_sequence_number": min(numbers), "last_sequence_number": max(numbers)} if numbers else {}
