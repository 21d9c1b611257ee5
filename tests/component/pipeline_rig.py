"""The summariser pipeline in one process, as devhost runs it on embedded storage.

Readings written to `readings` reach the app's summarise_readings through devhost's ChangeFeedDriver, and
events published to the telemetry hub reach summarise_events through its EventHubDriver; each invocation is
retried by the app's own retry policy, whose delays are recorded rather than waited. The app finds its
services from the composition root (shared.app); the rig installs services on the stores of the run, faulty or not.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhost.app.function_index import FunctionSpec, load_functions
from devhost.app.host_config import HostConfig
from devhost.app.invoker import Invoker
from devhost.app.settings import find_settings_file, read_values
from devhost.triggers.change_feed import ChangeFeedDriver
from devhost.triggers.event_hub import EventHubDriver
from shared import app
from shared.alerts.store import AlertStore
from shared.intake.devices import Device, DeviceRegistry
from shared.readings.dead_letters import DeadLetterBox
from shared.readings.summariser import summary_from_state
from shared.storage.factory import Stores
from shared.storage.names import PARTITION_KEY_PATHS, READINGS, SUMMARIES, WINDOWS_TABLE
from shared.storage.ports import Document, OutboundEvent, StateStore, StorageError
from shared.storage.sqlite.blobs import BLOBS_FOLDER, FolderBlobStore
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.events import SqliteEventHub
from shared.storage.sqlite.state import SqliteStateStore
from tests.faults import FaultInjector, FaultyDocumentStore, FaultyEventHub, FaultyStateStore, FeedDocumentStore

APP_DIR = Path(__file__).resolve().parents[2]
MAX_POLLS = 1_000  # per drain: far more than any stream here needs, so a stuck feed fails instead of hanging
MAX_ATTEMPTS = 100  # a client's sends of one write
RETRY_BUDGET = 10_000  # retry delays in a run before the rig gives up, as a stopping host would


class SleeplessStop(threading.Event):
    """devhost's stop signal, which nobody sets: the retry policy's delays are recorded instead of waited.
    After RETRY_BUDGET of them it sets itself, so a pipeline that never recovers stops instead of hanging."""

    def __init__(self) -> None:
        super().__init__()
        self.delays: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.delays.append(0.0 if timeout is None else timeout)
        if len(self.delays) > RETRY_BUDGET:
            self.set()
        return self.is_set()


def app_settings() -> dict[str, str]:
    settings_file = find_settings_file(APP_DIR)
    assert settings_file is not None
    return read_values(settings_file)


def app_specs() -> dict[str, FunctionSpec]:
    """The app's functions as devhost indexes them: bindings resolved, retry policies read."""
    return {spec.name: spec for spec in load_functions(APP_DIR, app_settings())}


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the outside world hands the pipeline in one round: reading documents for `readings`, and events."""

    readings: list[dict[str, Any]]
    events: list[OutboundEvent]


@dataclass
class Backend:
    """The stores of one run: the app and devhost use `documents`, `state` and `hub` (faulty when `faults` is
    set); the checks read `database` directly."""

    database: SqliteDatabase
    documents: FeedDocumentStore
    state: StateStore
    hub: SqliteEventHub
    faults: FaultInjector | None = None

    @classmethod
    def embedded(cls, directory: Path, faults: FaultInjector | None = None) -> Backend:
        database = SqliteDatabase.in_directory(directory)
        documents = SqliteDocumentStore(database, PARTITION_KEY_PATHS)
        state = SqliteStateStore(database)
        if faults is None:
            return cls(database, documents, state, SqliteEventHub(database))
        return cls(
            database,
            FaultyDocumentStore(documents, faults),
            FaultyStateStore(state, faults),
            FaultyEventHub(database, faults),
            faults,
        )


def _new_services(backend: Backend) -> None:
    """A new host process on `backend`'s stores: the summariser's window cache and the device registry start
    empty."""
    blobs = FolderBlobStore(backend.database.path.parent / BLOBS_FOLDER)
    stores = Stores(backend.documents, backend.state, backend.hub, blobs)
    app.install(app.Services.from_env(os.environ, stores=stores))


def _with_retries(call: Callable[[], object]) -> None:
    """Send until storage accepts, as a client does; fixed ids make a repeated upsert harmless."""
    for _ in range(MAX_ATTEMPTS):
        try:
            call()
            return
        except StorageError:
            continue
    raise AssertionError(f"storage refused {MAX_ATTEMPTS} attempts in a row")


class PipelineHost:
    """devhost's change-feed and event-hub drivers over one backend, polled to the end after every delivery."""

    def __init__(self, backend: Backend, specs: dict[str, FunctionSpec], max_event_batch_size: int) -> None:
        self.backend = backend
        self.stop = SleeplessStop()
        self._readings_spec = specs["summarise_readings"]
        self._events_spec = specs["summarise_events"]
        self.hub_name = str(self._events_spec.trigger["eventHubName"])
        self._max_event_batch_size = max_event_batch_size
        self._invoker = Invoker(self.stop)
        self._feed: ChangeFeedDriver | None = None
        self._hub: EventHubDriver | None = None

    def start(self) -> None:
        """Start (or restart) the host: fresh app instances, drivers that resume from their lease/checkpoints."""
        self._invoker.close()
        _new_services(self.backend)
        self._invoker = Invoker(self.stop)
        b = self.backend
        self._feed = ChangeFeedDriver(self._readings_spec, self._invoker, b.documents, b.state, self.stop, {})
        _with_retries(self._feed.acquire_lease)
        self._hub = EventHubDriver(self._events_spec, self._invoker, b.hub, self.stop, self._max_event_batch_size)

    def deliver(self, delivery: Delivery) -> None:
        """Write the readings and publish the events as clients do (retrying), then let both triggers catch up."""
        if delivery.readings:
            _with_retries(lambda: self.backend.documents.upsert_many(READINGS, delivery.readings))
        if delivery.events:
            _with_retries(lambda: self.backend.hub.publish(self.hub_name, delivery.events))
        assert self._feed is not None and self._hub is not None, "start the host first"
        feed, hub = self._feed, self._hub
        self._drain(feed.poll_once)
        for partition in range(self.backend.hub.partitions):
            self._drain(lambda p=partition: hub.poll_partition(p))  # type: ignore[misc]

    @staticmethod
    def _drain(poll: Callable[[], int]) -> None:
        for _ in range(MAX_POLLS):
            try:
                if poll() == 0:
                    return
            except StorageError:
                continue  # the feed or a checkpoint could not be read or written: poll again, as the drivers' loops do
        raise AssertionError(f"still delivering after {MAX_POLLS} polls")

    def close(self) -> None:
        self._invoker.close()


@contextmanager
def pipeline_host(backend: Backend) -> Iterator[PipelineHost]:
    """A started host whose app uses `backend`'s stores; the app's own stores are left alone, and forgotten after."""
    host = PipelineHost(backend, app_specs(), HostConfig.load(APP_DIR, app_settings()).max_event_batch_size)
    try:
        host.start()
        yield host
    finally:
        host.close()
        app.install(None)


@dataclass(frozen=True, slots=True)
class PipelineState:
    """What a run left in storage, read past any fault wrapper."""

    readings: dict[str, Document]
    summaries: dict[str, Document]  # by id, without the store's system fields
    windows: dict[tuple[str, str], dict[str, Any]]  # by (sensor, metric): entries, unit, the summary it implies
    dead_letters: dict[str, str]  # key → reason
    devices: dict[str, Device]
    alert_notifications: list[str]  # the outbox's keys (nothing sends them in these runs)


def _stored(documents: SqliteDocumentStore, container: str) -> dict[str, Document]:
    changes = documents.read_changes(container, None, 1_000_000)
    return {d["id"]: {k: v for k, v in d.items() if not k.startswith("_")} for d in changes.documents}


def stored_state(database: SqliteDatabase) -> PipelineState:
    documents, state = SqliteDocumentStore(database, PARTITION_KEY_PATHS), SqliteStateStore(database)
    windows = {
        (e.partition_key, e.row_key): {
            "entries": json.loads(e.properties["entries"]),
            "unit": e.properties["unit"],
            "latest": summary_from_state(e.partition_key, e.row_key, e.properties),
        }
        for e in state.query(WINDOWS_TABLE)
    }
    return PipelineState(
        readings=_stored(documents, READINGS),
        summaries=_stored(documents, SUMMARIES),
        windows=windows,
        dead_letters={letter["key"]: letter["reason"] for letter in DeadLetterBox(state).list()},
        devices={device.device_id: device for device in DeviceRegistry(state).list()},
        alert_notifications=sorted(row.row_key for row in AlertStore(state).outbox()),
    )


@dataclass(frozen=True, slots=True)
class RunReport:
    state: PipelineState
    retry_delays: list[float]  # one per retried invocation, as the app's retry policy set them


def run_pipeline(backend: Backend, deliveries: Sequence[Delivery], restart_every: int) -> RunReport:
    """Every delivery through the host, which restarts (before a delivery) every `restart_every` of them."""
    with pipeline_host(backend) as host:
        for n, delivery in enumerate(deliveries):
            if n and n % restart_every == 0:
                host.start()
            host.deliver(delivery)
        delays = list(host.stop.delays)
    return RunReport(stored_state(backend.database), delays)
