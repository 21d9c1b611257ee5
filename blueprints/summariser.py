"""The sliding-window summariser, fed by the `readings` change feed and by the telemetry Event Hub."""

from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from shared.app import services
from shared.ops.invocation import observed_function
from shared.storage.names import LEASES, READINGS

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library's __init__ is unannotated

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
    # A backlog (a bulk import, a restart after downtime) comes in large batches: the summariser's cost is per series
    # per batch, so 5,000 readings of 1,000 series cost about what 500 do; live traffic never fills a batch.
    max_items_per_invocation=5000,
)
@observed_function("summarise_readings", trigger="cosmos")
def summarise_readings(documents: func.DocumentList, context: func.Context) -> None:
    # A Document is a UserDict: its `data` is the document itself, read without copying it key by key (to_dict does).
    services().batches.summarise_documents([doc.data for doc in documents], received_at=datetime.now(UTC))


@bp.function_name("summarise_events")
@bp.retry(**_RETRY)
@bp.event_hub_message_trigger(
    arg_name="events",
    connection="EVENTHUB",
    event_hub_name="%EVENTHUB_NAME%",
    consumer_group="%EVENTHUB_CONSUMER_GROUP%",
    cardinality=func.Cardinality.MANY,
)
@observed_function("summarise_events", trigger="eventhub")
def summarise_events(events: list[func.EventHubEvent], context: func.Context) -> None:
    services().batches.summarise_events(events, received_at=datetime.now(UTC))
