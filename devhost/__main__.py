"""python -m devhost [--port 7071] [--data-dir .devhost] [--backend embedded|azure] [--require-keys]: run the app
locally."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from devhost.app.function_index import AppIndexError
from devhost.app.host_config import HostConfigError
from devhost.app.settings import AppSettingError
from devhost.console import configure_console
from devhost.host import DevHost, HostOptions
from devhost.http.host_keys import HostKeysError
from devhost.http.routes import RouteTemplateError
from devhost.malloc_arenas import limit_malloc_arenas
from devhost.standins.microshare.demo import FORWARDERS, start_demo
from devhost.status_line import DEFAULT_PLAIN_EVERY_SECONDS, StatusReporter
from devhost.triggers.schedule import ScheduleError
from shared.ops.metrics import PROCESS_METRICS
from shared.settings import BACKEND_AZURE, BACKEND_EMBEDDED, SettingsError, log_level_from_env

_STARTUP_ERRORS = (
    AppIndexError,
    AppSettingError,
    HostConfigError,
    HostKeysError,
    RouteTemplateError,
    ScheduleError,
    SettingsError,
    ImportError,
)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="devhost", description="Run the function app locally, like func start.")
    parser.add_argument("--port", type=int, default=7071, help="HTTP port (default 7071; 0 picks a free one)")
    parser.add_argument("--data-dir", type=Path, default=Path(".devhost"), help="embedded storage folder")
    parser.add_argument("--app-dir", type=Path, default=Path.cwd(), help="the function app folder (default: .)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--backend",
        choices=(BACKEND_EMBEDDED, BACKEND_AZURE),
        default=BACKEND_EMBEDDED,
        help="embedded SQLite (default) or azure: Cosmos DB and Table Storage from local.settings.json",
    )
    parser.add_argument(
        "--microshare",
        choices=("demo",),
        help="demo: serve synthetic Microshare data from a local stand-in and forward it (no account needed)",
    )
    parser.add_argument(
        "--require-keys",
        action="store_true",
        help="enforce each HTTP route's authLevel as Azure does, with the keys in <data-dir>/host-keys.json "
        "(default: every route is open, as under func start)",
    )
    parser.add_argument(
        "--demo-alerts",
        action="store_true",
        help="on the data folder's first start, add one demo alert rule of each kind (make run does)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every invocation (level DEBUG)")
    parser.add_argument(
        "--log-format",
        choices=("auto", "text", "json"),
        default="auto",
        help="auto (default): readable lines and a live status line in a terminal, JSON lines otherwise",
    )
    parser.add_argument(
        "--status-every",
        type=float,
        default=DEFAULT_PLAIN_EVERY_SECONDS,
        metavar="SECONDS",
        help="when not in a terminal, log a status line this often (default 30; 0 turns it off)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    limit_malloc_arenas()  # before any thread starts
    args = _arguments(argv)
    as_json = {"auto": None, "text": False, "json": True}[args.log_format]
    console = configure_console(logging.DEBUG if args.verbose else logging.INFO, sys.stderr, as_json)
    options = HostOptions(
        app_dir=args.app_dir.resolve(),
        data_dir=args.data_dir,
        port=args.port,
        bind=args.bind,
        backend=args.backend,
        require_keys=args.require_keys,
        demo_alerts=args.demo_alerts,
    )
    host = DevHost(options)
    standin = start_demo(os.environ) if args.microshare == "demo" else None

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if host.stop_event.is_set():
            raise SystemExit(130)  # a second Ctrl-C: do not wait for running invocations
        logging.getLogger("devhost").info("stopping (%s)", signal.Signals(signum).name)
        host.stop_event.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        host.start()
    except _STARTUP_ERRORS as failure:
        print(f"devhost: {failure}", file=sys.stderr)
        host.stop()
        if standin is not None:
            standin.stop()
        return 1
    except OSError as failure:
        print(f"devhost: cannot listen on {args.bind}:{args.port}: {failure.strerror}", file=sys.stderr)
        host.stop()
        if standin is not None:
            standin.stop()
        return 1
    if not args.verbose:
        logging.getLogger().setLevel(log_level_from_env(os.environ))  # LOG_LEVEL, from local.settings.json too
    reporter = None
    if console.live_status or args.status_every > 0:
        reporter = StatusReporter(PROCESS_METRICS, console, host.stop_event, plain_every=args.status_every)
        reporter.start()
    if standin is not None:
        # The forwarders' schedules are 15 minutes and an hour: run both now, as POST /admin/functions would.
        for name in FORWARDERS:
            host.run_now(name)
    while not host.stop_event.wait(1.0):
        pass
    if reporter is not None:
        reporter.join(2.0)
    host.stop()
    if standin is not None:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
