"""devhost's output: readable lines and a live status line in a terminal; one JSON object per line otherwise
(a pipe, a file, a container's log), so a log shipper gets the invocation's fields as keys.

The status line is redrawn in place below the log; a log line first clears it, then it is drawn again, so
the two never garble each other.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from shared.ops.log_context import APP_LOGGER, LogFieldsFilter

NOISY_LOGGERS = ("azure", "urllib3", "matplotlib", "PIL", "opentelemetry")
_CLEAR_LINE = "\r\x1b[2K"


class ReadableFormatter(logging.Formatter):
    """`[12:00:01] summarise_readings INFO: message`: the function's name when inside an invocation."""

    def __init__(self) -> None:
        super().__init__("[%(asctime)s] %(where)s %(levelname)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        function = record.__dict__.get("function")
        record.where = function if isinstance(function, str) else record.name.removeprefix(f"{APP_LOGGER}.")
        return super().format(record)


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601, UTC
        json_ensure_ascii=False,
    )


@contextlib.contextmanager
def app_records_as_json(stream: TextIO, level: int = logging.INFO) -> Iterator[None]:
    """Inside the block, the app's records go to `stream` as devhost writes them off a terminal (JSON lines with
    the invocation's fields), and nowhere else; for benchmarks and tests."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(LogFieldsFilter())
    app = logging.getLogger(APP_LOGGER)
    saved = app.level, app.propagate
    app.addHandler(handler)
    app.setLevel(level)
    app.propagate = False
    try:
        yield
    finally:
        app.removeHandler(handler)
        app.level, app.propagate = saved


class ConsoleHandler(logging.StreamHandler[TextIO]):
    """Writes records, keeping a status line (terminal only) at the bottom."""

    def __init__(self, stream: TextIO, live_status: bool) -> None:
        super().__init__(stream)
        self.live_status = live_status
        self._status = ""
        self._status_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._status_lock:
            if self._status:
                self.stream.write(_CLEAR_LINE)
            super().emit(record)
            if self._status:
                self.stream.write(self._status)
                self.flush()

    def show_status(self, text: str) -> None:
        """Draw `text` in place of the previous status line (a terminal only)."""
        with self._status_lock:
            self._status = text
            self.stream.write(_CLEAR_LINE + text)
            self.flush()

    def clear_status(self) -> None:
        with self._status_lock:
            if self._status:
                self.stream.write(_CLEAR_LINE)
                self.flush()
            self._status = ""


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def configure_console(level: int, stream: TextIO | None = None, force_json: bool | None = None) -> ConsoleHandler:
    """Route every log record to one console handler; returns it (the status line draws through it)."""
    out = stream if stream is not None else sys.stderr
    terminal = is_terminal(out)
    as_json = (not terminal) if force_json is None else force_json
    handler = ConsoleHandler(out, live_status=terminal and not as_json)
    handler.setFormatter(json_formatter() if as_json else ReadableFormatter())
    handler.addFilter(LogFieldsFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    return handler
