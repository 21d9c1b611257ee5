"""A forwarder wired to the Microshare stand-in and the embedded hub, with a clock the test moves."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from devhost.standins.microshare.dataset import MicroshareDataset
from devhost.standins.microshare.server import MicroshareStandIn
from shared.microshare.client import MicroshareClient, default_retry
from shared.microshare.forwarder import Forwarder
from shared.microshare.hub_fanout import HubFanout
from shared.ops.metrics import PipelineMetrics
from shared.settings import MicroshareSettings
from shared.storage.ports import EventPublisher
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.events import SqliteEventHub
from shared.storage.sqlite.state import SqliteStateStore

T0 = datetime(2025, 6, 9, tzinfo=UTC)
PASSWORD = "demo-password"
API_KEY = "demo-api-key"


def settings_for(standin: MicroshareStandIn, **overrides: str) -> MicroshareSettings:
    """The forwarder's settings pointing at `standin`. The timeout is the app's own (30 s) unless overridden: a
    busy machine's slow page must not become a timeout and a retry under a test that counts requests."""
    settings = MicroshareSettings.from_env({**standin.app_settings(), **overrides})
    assert settings is not None
    return settings


class Clock:
    """A clock the test (or bench) sets by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rig:
    standin: MicroshareStandIn
    database: SqliteDatabase
    state: SqliteStateStore
    hub: SqliteEventHub
    clock: Clock
    settings: MicroshareSettings

    def client(self, attempts: int = 4) -> MicroshareClient:
        # A tiny backoff keeps the tests quick; Retry-After is still honoured as the server gives it.
        return MicroshareClient(self.settings, self.state, retry=default_retry(attempts, 0.01), clock=self.clock)

    def forwarder(
        self,
        publishers: Mapping[str, EventPublisher] | None = None,
        client: MicroshareClient | None = None,
        metrics: PipelineMetrics | None = None,
    ) -> Forwarder:
        fanout = HubFanout(publishers or {"telemetry": self.hub}, self.state, clock=self.clock)
        return Forwarder(client or self.client(), fanout, self.state, self.settings, clock=self.clock, metrics=metrics)

    def bodies(self, hub: str = "telemetry") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for partition in range(self.hub.partitions):
            found.extend(json.loads(e.body) for e in self.hub.receive(hub, partition, None, 10_000_000))
        return found

    def records_per_key(self, hub: str = "telemetry") -> Counter[str]:
        return Counter(body.get("record") or json.dumps(body, sort_keys=True) for body in self.bodies(hub))


@contextmanager
def microshare_rig(
    database: SqliteDatabase,
    dataset: MicroshareDataset,
    now: datetime,
    standin_options: Mapping[str, Any] | None = None,
    **setting_overrides: str,
) -> Iterator[Rig]:
    with MicroshareStandIn(dataset, **dict(standin_options or {})) as standin:
        rig = Rig(
            standin=standin,
            database=database,
            state=SqliteStateStore(database),
            hub=SqliteEventHub(database),
            clock=Clock(now),
            settings=settings_for(standin, **setting_overrides),
        )
        yield rig


def day_of_data(days: int = 1, locations: tuple[str, ...] = ("Building A", "Building B")) -> MicroshareDataset:
    return MicroshareDataset.synthetic(T0, T0 + timedelta(days=days), locations=locations, devices_per_location=2)
