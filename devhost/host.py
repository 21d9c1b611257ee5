"""devhost: runs the function app on this machine the way `func start` does, on embedded storage.

It indexes the app from its own binding metadata, reads local.settings.json and host.json, and drives each
trigger: HTTP from a local web server, timers from their schedules, the Cosmos DB change feed and Event
Hubs from the embedded SQLite store the app itself writes to, and Durable Functions (orchestrators,
activities, durable clients) on tables of its own in the same SQLite file. With require_keys, HTTP routes take
the keys their authLevel asks for, as in Azure (devhost.http.host_keys); by default they are open, as under func start.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from devhost.app.function_index import FunctionSpec, load_functions
from devhost.app.host_config import HostConfig
from devhost.app.invoker import Invoker
from devhost.app.settings import apply_values, find_settings_file, is_disabled, read_values
from devhost.durable.engine import ACTIVITY_TRIGGER, DURABLE_CLIENT, ORCHESTRATION_TRIGGER, DurableRuntime
from devhost.durable.rpc import DurableHttpApi, close_client_session
from devhost.durable.store import DurableStore
from devhost.http.front import DevHostHttpServer, HttpRoute, WebhookSet, http_routes
from devhost.http.host_keys import FUNCTION_KEY_VARIABLE, MASTER_KEY_VARIABLE, HostKeys
from devhost.triggers.blob_events import BLOB_TRIGGER, EVENT_GRID_SOURCE, BlobTriggerDriver, BlobWebhook, ClientFactory
from devhost.triggers.change_feed import ChangeFeedDriver, ChangeFeedSource
from devhost.triggers.event_hub import EventHubDriver
from devhost.triggers.timer import TimerDriver
from devhost.triggers.warmup import WARMUP_TRIGGER, run_warmup
from shared import app
from shared.settings import BACKEND_EMBEDDED, EMBEDDED_DATA_DIR, STORAGE_BACKEND, Settings
from shared.storage.factory import open_azure, open_embedded
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.events import SqliteEventHub

logger = logging.getLogger("devhost")

_OPTIONAL_SEGMENT = re.compile(r"/?\{[^{}]*\?\}")
_STOP_JOIN_SECONDS = 15.0
DURABLE_DATABASE_FILE = "durabletask.db"  # --backend azure: durable state stays local, in its own file
_WILDCARD_BINDS = ("", "0.0.0.0", "::", "localhost", "127.0.0.1")


@dataclass
class HostOptions:
    app_dir: Path
    data_dir: Path
    port: int = 7071
    bind: str = "127.0.0.1"
    backend: str = BACKEND_EMBEDDED  # or BACKEND_AZURE: the connections in local.settings.json
    environ: MutableMapping[str, str] = field(default_factory=lambda: os.environ)
    require_keys: bool = False  # enforce authLevel with the keys in <data_dir>/host-keys.json
    demo_alerts: bool = False  # add the demo alert rules on the data folder's first start


def display_url(base: str, route: HttpRoute) -> str:
    """The route as func start lists it, with optional parameters left out."""
    return base + "/" + _OPTIONAL_SEGMENT.sub("", route.template.template).lstrip("/")


class DevHost:
    def __init__(self, options: HostOptions) -> None:
        self.options = options
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: DevHostHttpServer | None = None
        self._rpc_server: DevHostHttpServer | None = None  # with keys required: the Durable RPC endpoint
        self.keys: HostKeys | None = None
        self._database: SqliteDatabase | None = None
        self._durable_database: SqliteDatabase | None = None
        self._invoker: Invoker | None = None
        self.durable: DurableRuntime | None = None
        self.specs: list[FunctionSpec] = []
        self.routes: list[HttpRoute] = []
        self.timers: dict[str, TimerDriver] = {}
        self.blob_drivers: dict[str, BlobTriggerDriver] = {}

    @property
    def base_url(self) -> str:
        port = self._server.server_address[1] if self._server else self.options.port
        return f"http://localhost:{port}"

    @property
    def local_origin(self) -> str:
        """The HTTP server as reached from this machine (an IP address, where localhost may mean ::1 first)."""
        port = self._server.server_address[1] if self._server else self.options.port
        bind = self.options.bind
        return f"http://{'127.0.0.1' if bind in _WILDCARD_BINDS else bind}:{port}"

    @property
    def rpc_origin(self) -> str:
        """Where the app's own clients reach the host, as the Durable extension's RPC endpoint: the HTTP server,
        or with keys required a loopback listener of its own that takes no key (the client sends none)."""
        if self._rpc_server is not None:
            return f"http://127.0.0.1:{self._rpc_server.server_address[1]}"
        return self.local_origin

    def _configure_settings(self) -> None:
        environ = self.options.environ
        settings_file = find_settings_file(self.options.app_dir)
        # The backend is devhost's choice (--backend), whatever the settings file says.
        environ[STORAGE_BACKEND] = self.options.backend
        environ[EMBEDDED_DATA_DIR] = str(self.options.data_dir.resolve())
        if settings_file is not None:
            apply_values(read_values(settings_file), environ)  # never over a value already set, as these two
            logger.info("settings: %s", settings_file.name)

    def start(self) -> None:
        """Index the app and start every trigger; raises with a clear message when the app cannot run."""
        self._configure_settings()
        config = HostConfig.load(self.options.app_dir, self.options.environ)
        environ = self.options.environ
        settings = Settings.from_env(environ)  # a malformed setting stops start-up here, not at first use
        if self.options.require_keys:
            self.keys = HostKeys.load_or_create(self.options.data_dir.resolve(), environ)
        specs = load_functions(self.options.app_dir, environ)
        self.specs = [s for s in specs if not is_disabled(s.name, environ)]
        for spec in specs:
            if spec not in self.specs:
                logger.info("Function %s is disabled", spec.name)

        if settings.storage_backend == BACKEND_EMBEDDED:
            self._database = SqliteDatabase.in_directory(self.options.data_dir.resolve())
            stores = open_embedded(self._database)
            hub = cast(SqliteEventHub, stores.events)
        else:
            stores, hub = open_azure(settings, environ), None
            logger.info("backend: azure (connections from the app settings)")
        # The app runs on the stores devhost drives, so the process has one connection pool per database file.
        app.install(app.Services(settings, stores, environ))
        if self.options.demo_alerts:
            added = app.services().alert_admin.seed_demo()
            if added:
                logger.info("alerts: added %d demo rules (GET /api/alerts/rules; delete them to stop them)", added)
        documents, state = cast(ChangeFeedSource, stores.documents), stores.state
        invoker = Invoker(self.stop_event)
        self._invoker = invoker
        durable_api = self._start_durable(config, invoker)

        feeds: list[ChangeFeedDriver] = []
        hubs: list[EventHubDriver] = []
        timers: list[TimerDriver] = []
        blob_drivers: dict[str, BlobTriggerDriver] = {}
        warmups: list[FunctionSpec] = []
        for spec in self.specs:
            kind = spec.trigger_type
            if kind == "cosmosDBTrigger":
                feeds.append(ChangeFeedDriver(spec, invoker, documents, state, self.stop_event, environ))
            elif kind == "eventHubTrigger" and hub is None:
                logger.warning("Function %s: devhost drives Event Hub triggers on embedded storage only", spec.name)
            elif kind == "eventHubTrigger" and hub is not None:
                hubs.append(EventHubDriver(spec, invoker, hub, self.stop_event, config.max_event_batch_size))
            elif kind == "timerTrigger":
                timers.append(TimerDriver(spec, invoker, state, self.stop_event))
            elif kind == BLOB_TRIGGER and spec.trigger.get("source") != EVENT_GRID_SOURCE:
                logger.warning("Function %s: devhost drives blob triggers with the Event Grid source only", spec.name)
            elif kind == BLOB_TRIGGER:
                client_for = self._blob_clients(settings, str(spec.trigger.get("connection") or ""))
                driver = BlobTriggerDriver(spec, invoker, stores.blobs, state, client_for, self.stop_event)
                blob_drivers[spec.name] = driver
            elif kind == WARMUP_TRIGGER:
                warmups.append(spec)
            elif kind not in ("httpTrigger", ORCHESTRATION_TRIGGER, ACTIVITY_TRIGGER):
                logger.warning("Function %s: devhost cannot drive %s triggers yet; skipped", spec.name, kind)

        self.routes = http_routes(self.specs, config.route_prefix)
        self.timers = {timer.spec.name: timer for timer in timers}
        webhooks = WebhookSet(durable_api, BlobWebhook(blob_drivers) if blob_drivers else None)
        self.blob_drivers = blob_drivers
        self._server = DevHostHttpServer(
            (self.options.bind, self.options.port), self.routes, invoker, self.run_now, webhooks, self.keys
        )
        if durable_api is not None and self.keys is not None:
            self._rpc_server = DevHostHttpServer(("127.0.0.1", 0), [], invoker, None, durable_api)

        # Leases first: a timer that writes at startup must not write before the feed's starting point.
        for feed in feeds:
            feed.acquire_lease()
        self._threads.append(self._server.serve_in_background())
        if self._rpc_server is not None:
            self._threads.append(self._rpc_server.serve_in_background())
        if self.durable is not None:
            self._threads.append(self.durable.start())
        runners: list[tuple[str, Callable[[], None]]] = [(f.spec.name, f.run) for f in feeds]
        runners += [(h.spec.name, h.run) for h in hubs]
        runners += [(t.spec.name, t.run) for t in timers]
        runners += [(b.spec.name, b.run) for b in blob_drivers.values()]
        runners += [(f"{b.spec.name}-watch", b.run_watcher) for b in blob_drivers.values()]
        runners += [(w.name, functools.partial(run_warmup, w, invoker)) for w in warmups]
        for name, run in runners:
            thread = threading.Thread(target=run, name=f"devhost-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._print_functions()

    def _blob_clients(self, settings: Settings, connection: str) -> ClientFactory:
        """What a blob trigger's SDK-type binding hands the function: a BlobClient of the blob, never its content.
        On the Azure backend it is the connection's own client (Azurite, or an account through your login); on
        the embedded store a client that names the blob (the app reads the content through its BlobStore)."""
        from azure.storage.blob import BlobClient

        if settings.storage_backend == BACKEND_EMBEDDED:
            account = f"{self.local_origin}/devhost/blobs"
            return lambda container, name: BlobClient(account, container, name)
        from shared.storage.azure.clients import blob_service, resolve_connection

        service = blob_service(resolve_connection(self.options.environ, connection, "blobServiceUri"))
        return service.get_blob_client

    def _start_durable(self, config: HostConfig, invoker: Invoker) -> DurableHttpApi | None:
        """The Durable runtime and its HTTP API, when the app has orchestrators, activities or clients."""
        durable_kinds = (ORCHESTRATION_TRIGGER, ACTIVITY_TRIGGER, DURABLE_CLIENT)
        if not any(b.get("type") in durable_kinds for spec in self.specs for b in spec.bindings):
            return None
        database = self._database
        if database is None:
            self._durable_database = SqliteDatabase(self.options.data_dir.resolve() / DURABLE_DATABASE_FILE)
            database = self._durable_database
        self.durable = DurableRuntime(self.specs, invoker, DurableStore(database), config.durable, self.stop_event)
        system_key = None if self.keys is None else self.keys.durable
        api = DurableHttpApi(self.durable, lambda: self.base_url, lambda: self.rpc_origin, system_key)
        invoker.provide_input(DURABLE_CLIENT, api.client_binding)
        invoker.on_close(close_client_session)
        return api

    def run_now(self, name: str) -> bool:
        """Start the timer function `name` once now (POST /admin/functions/{name}); False when there is none."""
        timer = self.timers.get(name)
        if timer is None:
            return False
        timer.fire_now()
        return True

    def _print_functions(self) -> None:
        lines = ["", "Functions:", ""]
        by_name = {route.spec.name: route for route in self.routes}
        for spec in sorted(self.specs, key=lambda s: s.name):
            route = by_name.get(spec.name)
            if route is not None:
                methods = ",".join(sorted(route.methods))
                lines.append(f"        {spec.name}: [{methods}] {display_url(self.base_url, route)}")
            else:
                lines.append(f"        {spec.name}: {spec.trigger_type}")
        lines += ["", *self._keys_lines(), f"Dashboard: {self.base_url}/  (Ctrl-C to stop)", ""]
        print("\n".join(lines), flush=True)

    def _keys_lines(self) -> list[str]:
        """Whether keys are required and where they are; never a key itself."""
        if self.keys is None:
            return []
        overridden = {MASTER_KEY_VARIABLE: "master key", FUNCTION_KEY_VARIABLE: "default function key"}
        lines = [
            "Keys: required (--require-keys): routes take ?code=<key> or an x-functions-key header as their "
            "authLevel asks",
            f"      master, default function and durabletask_extension keys: {self.keys.path}",
        ]
        lines += [f"      {overridden[name]}: from {name}" for name in self.keys.overridden]
        return [*lines, ""]

    def stop(self) -> None:
        """Stop the triggers, let running invocations finish, close storage."""
        self.stop_event.set()
        for server in (self._server, self._rpc_server):
            if server is not None:
                server.shutdown()
                server.server_close()
        if self.durable is not None:
            self.durable.stop()
        for thread in self._threads:
            thread.join(_STOP_JOIN_SECONDS)
            if thread.is_alive():
                logger.warning("%s did not finish within %.0fs", thread.name, _STOP_JOIN_SECONDS)
        if self._invoker is not None:
            self._invoker.close()
        app.install(None)
        for database in (self._database, self._durable_database):
            if database is not None:
                database.close()
