"""Process-wide instances built from settings and stores; created on first use, then reused."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from shared.dashboard import DashboardReader
from shared.devices import DeviceRegistry
from shared.reading_intake import ReadingIntake
from shared.settings import (
    BACKEND_EMBEDDED,
    EVENTHUB_EXTRA_HUBS,
    get_ingest_limits,
    get_microshare_settings,
    get_settings,
)
from shared.simulator import SensorSimulator
from shared.storage.factory import event_publisher, get_stores
from shared.storage.ports import EventPublisher
from shared.summariser import Summariser

if TYPE_CHECKING:
    from shared.forwarding import Forwarder


@functools.cache
def get_summariser() -> Summariser:
    settings, stores = get_settings(), get_stores()
    return Summariser(stores.documents, stores.state, settings.window_size, settings.summary_ttl_seconds)


@functools.cache
def get_simulator() -> SensorSimulator:
    stores = get_stores()
    return SensorSimulator(stores.documents, stores.state, get_settings().reading_ttl_seconds)


@functools.cache
def get_reading_intake() -> ReadingIntake:
    return ReadingIntake(get_stores().documents, get_ingest_limits(), get_settings().reading_ttl_seconds)


@functools.cache
def get_dashboard() -> DashboardReader:
    stores = get_stores()
    return DashboardReader(stores.documents, stores.state)


@functools.cache
def get_device_registry() -> DeviceRegistry:
    return DeviceRegistry(get_stores().state)


@functools.cache
def get_forwarder() -> Forwarder | None:
    """The Microshare forwarder, or None when Microshare is not configured (MICROSHARE_USERNAME unset)."""
    microshare = get_microshare_settings()
    if microshare is None:
        return None
    # Imported here: requests and the forwarding code only load in an app that forwards (cold start).
    from shared.forwarding import Forwarder
    from shared.hub_delivery import HubFanout, parse_hub_targets
    from shared.microshare import MicroshareClient

    settings, stores = get_settings(), get_stores()
    targets = parse_hub_targets(settings.eventhub_name, os.environ.get(EVENTHUB_EXTRA_HUBS))
    publishers: dict[str, EventPublisher] = {}
    for target in targets:
        if target.connection is None or settings.storage_backend == BACKEND_EMBEDDED:
            publishers[target.name] = stores.events  # the embedded hub holds every hub
        else:
            publishers[target.name] = event_publisher(os.environ, target.connection)
    client = MicroshareClient(microshare, stores.state)
    return Forwarder(client, HubFanout(publishers, stores.state), stores.state, microshare)
