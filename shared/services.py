"""Process-wide instances built from settings and stores; created on first use, then reused."""

from __future__ import annotations

import functools

from shared.dashboard import DashboardReader
from shared.settings import get_settings
from shared.simulator import SensorSimulator
from shared.storage.factory import get_stores
from shared.summariser import Summariser


@functools.cache
def get_summariser() -> Summariser:
    settings, stores = get_settings(), get_stores()
    return Summariser(stores.documents, stores.state, settings.window_size, settings.summary_ttl_seconds)


@functools.cache
def get_simulator() -> SensorSimulator:
    stores = get_stores()
    return SensorSimulator(stores.documents, stores.state, get_settings().reading_ttl_seconds)


@functools.cache
def get_dashboard() -> DashboardReader:
    stores = get_stores()
    return DashboardReader(stores.documents, stores.state)
