"""The app's logger namespace, and the fields every log line of an invocation carries: the invocation id,
the function, and the ids that matter to it (sensor, reading, event, recType, orchestration instance).

Fields live in a context variable, so they follow the invocation into the functions it calls, on its thread
or its asyncio task. A handler adds them to each record with LogFieldsFilter: devhost's console handler and
the Application Insights handler both carry it, so the same fields become JSON keys locally and custom
dimensions in Azure. A field given to one log call (`extra=`) wins over the invocation's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType

APP_LOGGER = "sensorpulse"  # every logger of the app's own code is below this one

_NO_FIELDS: Mapping[str, object] = MappingProxyType({})
_fields: ContextVar[Mapping[str, object]] = ContextVar("sensorpulse_log_fields", default=_NO_FIELDS)

# Attributes every LogRecord has; a field with one of these names would clobber it.
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def app_logger(module: str) -> logging.Logger:
    """The logger for one module of the app: `sensorpulse.<module>`."""
    return logging.getLogger(f"{APP_LOGGER}.{module}")


def current_fields() -> Mapping[str, object]:
    return _fields.get()


@contextmanager
def log_fields(**fields: object) -> Iterator[None]:
    """Add fields to every log line inside the block (None values are left out)."""
    token = push_fields(fields)
    try:
        yield
    finally:
        pop_fields(token)


def push_fields(fields: Mapping[str, object]) -> Token[Mapping[str, object]]:
    """log_fields without a block: the fields stay until pop_fields(token)."""
    bad = _RESERVED.intersection(fields)
    if bad:
        raise ValueError(f"log field names clash with LogRecord attributes: {sorted(bad)}")
    merged = {**_fields.get(), **{name: value for name, value in fields.items() if value is not None}}
    return _fields.set(MappingProxyType(merged))


def pop_fields(token: Token[Mapping[str, object]]) -> None:
    _fields.reset(token)


class LogFieldsFilter(logging.Filter):
    """Copies the current invocation's fields onto each record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _fields.get().items():
            if name not in record.__dict__:
                record.__dict__[name] = value
        return True
