"""The composition root: every process-wide service, built once from the settings and the stores.

The blueprints ask `services()` for what they need. In Azure and under `func start` the services are built from
the environment on first use; devhost builds them from the stores it opened (`install`), so a process keeps one
connection pool per database file; tests build their own the same way.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, cast

from shared.alerts.admin import RuleAdmin
from shared.alerts.board import AlertBoard
from shared.alerts.rulebook import RuleBook
from shared.alerts.sender import WebhookSender
from shared.alerts.silences import SilenceWatch
from shared.alerts.store import AlertStore
from shared.alerts.thresholds import ThresholdAlerts
from shared.dashboard.reader import DashboardReader
from shared.dashboard.series_view import SeriesView
from shared.intake.batches import BatchIntake
from shared.intake.devices import DeviceRegistry
from shared.intake.ingest import IngestLimits
from shared.intake.reading_intake import ReadingIntake
from shared.intake.reading_writer import ReadingWriter
from shared.intake.simulator import SensorSimulator
from shared.ops.metrics import PROCESS_METRICS, PipelineMetrics
from shared.ops.readiness import Check
from shared.readings.dead_letters import DeadLetterBox
from shared.readings.rules import IngestSettingsError, ReadingPolicy, metric_catalogue
from shared.readings.summariser import Summariser
from shared.settings import MicroshareSettings, Settings, SettingsError
from shared.storage.azure.request_charges import RequestCharges
from shared.storage.factory import Stores, open_stores
from shared.storage.ports import EventPublisher

if TYPE_CHECKING:
    from shared.imports.importer import Importer
    from shared.microshare.forwarder import Forwarder


class Services:
    """What the functions use, made once per process from `settings` and `stores`."""

    def __init__(
        self,
        settings: Settings,
        stores: Stores,
        env: Mapping[str, str],
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.stores = stores
        self.metrics = PROCESS_METRICS if metrics is None else metrics
        self._env = env
        self.ingest_limits = ingest_limits(settings)
        charges = getattr(stores.documents, "charges", None)
        if isinstance(charges, RequestCharges):
            self.metrics.track_request_charges(charges)
        self.alert_store = AlertStore(stores.state)
        self.alert_rules = RuleBook(self.alert_store)
        self.thresholds = ThresholdAlerts(self.alert_store, self.alert_rules, self.metrics)
        self.alert_board = AlertBoard(self.alert_store, self.metrics)
        self.summariser = Summariser(
            stores.documents,
            stores.state,
            settings.window_size,
            settings.summary_ttl_seconds,
            metrics=self.metrics,
            # The catalogue the ingest API writes by is the one the triggers read by, INGEST_METRICS included.
            policy=ReadingPolicy.trigger(self.ingest_limits.metrics, settings.reading_max_age),
            watcher=self.thresholds,
        )
        self.simulator = SensorSimulator(stores.documents, stores.state, settings.reading_ttl_seconds, self.metrics)
        self.dashboard = DashboardReader(
            stores.documents,
            stores.state,
            settings.dashboard.chart_refresh_seconds,
            metrics=self.metrics,
            alerts=self.alert_board,
        )
        self.series = SeriesView(stores.documents, self.dashboard, settings.dashboard.csv_max_rows)
        self.devices = DeviceRegistry(stores.state)
        self.batches = BatchIntake(self.summariser, self.devices, self.metrics, settings.eventhub_name)

    @classmethod
    def from_env(cls, env: Mapping[str, str], stores: Stores | None = None) -> Services:
        """Services from the app settings in `env`, on `stores` or on the ones the settings choose."""
        settings = Settings.from_env(env)
        return cls(settings, open_stores(settings, env) if stores is None else stores, env)

    # The Microshare settings are parsed on first use: a mistake in them stops the forwarding functions, with a
    # message naming the setting, and not the summariser or the dashboard.
    @functools.cached_property
    def microshare(self) -> MicroshareSettings | None:
        """None when MICROSHARE_USERNAME is unset: forwarding is off."""
        return MicroshareSettings.from_env(self._env)

    @functools.cached_property
    def alert_admin(self) -> RuleAdmin:
        return RuleAdmin(self.alert_store, self.alert_rules, self.metrics)

    @functools.cached_property
    def alert_sender(self) -> WebhookSender:
        alerts = self.settings.alerts
        return WebhookSender(
            self.alert_store,
            alerts.webhook_urls,
            alerts.webhook_timeout_seconds,
            alerts.delivery_deadline_seconds,
            DeadLetterBox(self.stores.state, self.metrics),
            self.metrics,
        )

    @functools.cached_property
    def silences(self) -> SilenceWatch:
        state = self.stores.state
        return SilenceWatch(self.alert_store, self.alert_rules, state, self.settings.alerts.history_days, self.metrics)

    @functools.cached_property
    def reading_writer(self) -> ReadingWriter:
        """Writes readings by their identity, never replacing a stored one: the ingest API's and the bulk import's."""
        return ReadingWriter(self.stores.documents, self.settings.reading_ttl_seconds)

    @functools.cached_property
    def reading_intake(self) -> ReadingIntake:
        return ReadingIntake(self.stores.documents, self.ingest_limits, self.reading_writer, metrics=self.metrics)

    @functools.cached_property
    def importer(self) -> Importer:
        """The bulk import's use-cases (imported on first use: most instances never see a file)."""
        from shared.imports.importer import Importer
        from shared.imports.records import ImportLog

        log = ImportLog(self.stores.state)
        writer, limits = self.reading_writer, self.ingest_limits
        return Importer(self.stores.blobs, log, writer, limits, self.settings.imports, self.metrics)

    @functools.cached_property
    def hub_publishers(self) -> dict[str, EventPublisher]:
        """Every hub the forwarder sends to, with the publisher of its namespace; shared with readiness."""
        return {target.name: self.stores.publisher(target.connection) for target in self.settings.hubs}

    @functools.cached_property
    def forwarder(self) -> Forwarder | None:
        """The Microshare forwarder, or None when Microshare is not configured (MICROSHARE_USERNAME unset)."""
        if self.microshare is None:
            return None
        # Imported here: requests and the forwarding code only load in an app that forwards (cold start).
        from shared.microshare.client import MicroshareClient
        from shared.microshare.forwarder import Forwarder
        from shared.microshare.hub_fanout import HubFanout

        client = MicroshareClient(self.microshare, self.stores.state)
        fanout = HubFanout(self.hub_publishers, self.stores.state)
        return Forwarder(client, fanout, self.stores.state, self.microshare, metrics=self.metrics)

    @functools.cached_property
    def readiness_checks(self) -> dict[str, Check]:
        """One check per backend: documents, state, and each event hub the app sends to."""
        stores = self.stores
        checks: dict[str, Check] = {"documents": _check_of(stores.documents), "state": _check_of(stores.state)}
        hubs = dict(self.hub_publishers) if self.microshare is not None else {}
        hubs.setdefault(self.settings.eventhub_name, stores.events)
        for hub, publisher in hubs.items():
            checks[f"eventhub:{hub}"] = functools.partial(_check_of(publisher), hub)
        return checks


def ingest_limits(settings: Settings) -> IngestLimits:
    """The ingest API's limits, with the reading rules' catalogue and the metrics INGEST_METRICS adds."""
    try:
        metrics = metric_catalogue(settings.ingest.metrics)
    except IngestSettingsError as bad:
        raise SettingsError(str(bad)) from None
    ingest = settings.ingest
    return IngestLimits(ingest.max_batch, ingest.max_body_bytes, ingest.max_future, settings.reading_max_age, metrics)


def _check_of(backend: object) -> Callable[..., None]:
    """The adapter's readiness check (every adapter in shared.storage has one; the ports do not require it)."""
    check = getattr(backend, "check", None)
    if not callable(check):
        raise TypeError(f"{type(backend).__name__} has no readiness check")
    return cast(Callable[..., None], check)


_lock = threading.Lock()
_installed: Services | None = None


def services() -> Services:
    """This process's services: the installed ones, or built from the environment on first use."""
    global _installed
    with _lock:
        if _installed is None:
            _installed = Services.from_env(os.environ)
        return _installed


def install(built: Services | None) -> None:
    """Make `built` this process's services (None: build them from the environment again on next use)."""
    global _installed
    with _lock:
        _installed = built
