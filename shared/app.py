"""Process-wide instances built from settings and stores; created on first use, then reused."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from shared.dashboard.reader import DashboardReader
from shared.intake.devices import DeviceRegistry
from shared.intake.reading_intake import ReadingIntake
from shared.intake.simulator import SensorSimulator
from shared.ops.metrics import get_metrics
from shared.ops.readiness import Check
from shared.readings.summariser import Summariser
from shared.settings import (
    BACKEND_EMBEDDED,
    EVENTHUB_EXTRA_HUBS,
    get_ingest_limits,
    get_microshare_settings,
    get_settings,
)
from shared.storage.azure.request_charges import RequestCharges
from shared.storage.factory import Stores, event_publisher, get_stores
from shared.storage.ports import EventPublisher

if TYPE_CHECKING:
    from shared.microshare.forwarder import Forwarder


@functools.cache
def _stores() -> Stores:
    """The process's stores; Cosmos DB's request charges feed the metrics."""
    stores = get_stores()
    charges = getattr(stores.documents, "charges", None)
    if isinstance(charges, RequestCharges):
        get_metrics().track_request_charges(charges)
    return stores


@functools.cache
def get_summariser() -> Summariser:
    settings, stores = get_settings(), _stores()
    return Summariser(
        stores.documents, stores.state, settings.window_size, settings.summary_ttl_seconds, metrics=get_metrics()
    )


@functools.cache
def get_simulator() -> SensorSimulator:
    stores = _stores()
    return SensorSimulator(stores.documents, stores.state, get_settings().reading_ttl_seconds)


@functools.cache
def get_reading_intake() -> ReadingIntake:
    return ReadingIntake(get_stores().documents, get_ingest_limits(), get_settings().reading_ttl_seconds)


@functools.cache
def get_dashboard() -> DashboardReader:
    stores = _stores()
    return DashboardReader(stores.documents, stores.state)


@functools.cache
def get_device_registry() -> DeviceRegistry:
    return DeviceRegistry(get_stores().state)


@functools.cache
def _hub_publishers() -> dict[str, EventPublisher]:
    """Every hub the forwarder sends to, with the publisher of its namespace; made once, shared with readiness."""
    from shared.microshare.hub_fanout import parse_hub_targets

    settings, stores = get_settings(), _stores()
    targets = parse_hub_targets(settings.eventhub_name, os.environ.get(EVENTHUB_EXTRA_HUBS))
    publishers: dict[str, EventPublisher] = {}
    for target in targets:
        if target.connection is None or settings.storage_backend == BACKEND_EMBEDDED:
            publishers[target.name] = stores.events  # the embedded hub holds every hub
        else:
            publishers[target.name] = event_publisher(os.environ, target.connection)
    return publishers


@functools.cache
def get_forwarder() -> Forwarder | None:
    """The Microshare forwarder, or None when Microshare is not configured (MICROSHARE_USERNAME unset)."""
    microshare = get_microshare_settings()
    if microshare is None:
        return None
    # Imported here: requests and the forwarding code only load in an app that forwards (cold start).
    from shared.microshare.client import MicroshareClient
    from shared.microshare.forwarder import Forwarder
    from shared.microshare.hub_fanout import HubFanout

    stores = _stores()
    client = MicroshareClient(microshare, stores.state)
    fanout = HubFanout(_hub_publishers(), stores.state)
    return Forwarder(client, fanout, stores.state, microshare, metrics=get_metrics())


@functools.cache
def readiness_checks() -> dict[str, Check]:
    """One check per backend: documents, state, and each event hub the app sends to."""
    stores = _stores()
    checks: dict[str, Check] = {"documents": _check_of(stores.documents), "state": _check_of(stores.state)}
    hubs = dict(_hub_publishers()) if get_microshare_settings() is not None else {}
    hubs.setdefault(get_settings().eventhub_name, stores.events)
    for hub, publisher in hubs.items():
        checks[f"eventhub:{hub}"] = functools.partial(_check_of(publisher), hub)
    return checks


def _check_of(backend: object) -> Callable[..., None]:
    """The adapter's readiness check (every adapter in shared.storage has one; the ports do not require it)."""
    check = getattr(backend, "check", None)
    if not callable(check):
        raise TypeError(f"{type(backend).__name__} has no readiness check")
    return cast(Callable[..., None], check)
