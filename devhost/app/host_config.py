"""host.json, as far as devhost needs it: the HTTP route prefix, the Event Hubs batch size, Durable Functions."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost.app.settings import AppSettingError, resolve

DEFAULT_ROUTE_PREFIX = "api"  # the host's default when host.json does not set one
DEFAULT_MAX_EVENT_BATCH_SIZE = 100  # Event Hubs extension 5.x default
DEFAULT_HUB_NAME = "TestHubName"  # the Durable extension's task hub name when no site name is set (locally)
DEFAULT_MAX_CONCURRENT_DURABLE = 10  # the extension's default for activities and orchestrators (Consumption)
# The Azure Storage provider's rule: the name prefixes its queues, tables and blob containers.
_TASK_HUB_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,44}")


class HostConfigError(RuntimeError):
    """host.json is missing or malformed."""


@dataclass(frozen=True, slots=True)
class DurableConfig:
    """host.json extensions.durableTask, as far as devhost uses it."""

    hub_name: str = DEFAULT_HUB_NAME
    max_concurrent_activities: int = DEFAULT_MAX_CONCURRENT_DURABLE
    max_concurrent_orchestrators: int = DEFAULT_MAX_CONCURRENT_DURABLE

    @classmethod
    def from_section(cls, section: dict[str, Any], environ: Mapping[str, str]) -> DurableConfig:
        hub = section.get("hubName", DEFAULT_HUB_NAME)
        if not isinstance(hub, str) or not hub:
            raise HostConfigError("host.json extensions.durableTask.hubName must be a non-empty string")
        try:
            hub = resolve(hub, environ, "host.json extensions.durableTask.hubName")  # "%TASKHUB_NAME%"
        except AppSettingError as missing:
            raise HostConfigError(str(missing)) from None
        if not _TASK_HUB_NAME.fullmatch(hub):
            raise HostConfigError(
                f"task hub name {hub!r} must be 3-45 letters and digits, starting with a letter "
                "(host.json extensions.durableTask.hubName)"
            )
        return cls(
            hub_name=hub,
            max_concurrent_activities=_positive(section, "maxConcurrentActivityFunctions"),
            max_concurrent_orchestrators=_positive(section, "maxConcurrentOrchestratorFunctions"),
        )


def _positive(section: dict[str, Any], name: str) -> int:
    value = section.get(name, DEFAULT_MAX_CONCURRENT_DURABLE)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise HostConfigError(f"host.json extensions.durableTask.{name} must be a positive integer")
    return value


@dataclass(frozen=True, slots=True)
class HostConfig:
    route_prefix: str
    max_event_batch_size: int
    durable: DurableConfig = field(default_factory=DurableConfig)

    @classmethod
    def load(cls, app_dir: Path, environ: Mapping[str, str] | None = None) -> HostConfig:
        """host.json of the app; `environ` resolves %NAME% app-setting expressions where the host allows them."""
        path = app_dir / "host.json"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HostConfigError(f"no host.json in {app_dir}; is this a function app folder?") from None
        except json.JSONDecodeError as bad:
            raise HostConfigError(f"host.json is not valid JSON (line {bad.lineno})") from None
        if not isinstance(document, dict) or document.get("version") != "2.0":
            raise HostConfigError('host.json must be an object with "version": "2.0"')
        extensions: dict[str, Any] = document.get("extensions") or {}
        http: dict[str, Any] = extensions.get("http") or {}
        hubs: dict[str, Any] = extensions.get("eventHubs") or {}
        durable: dict[str, Any] = extensions.get("durableTask") or {}
        prefix = http.get("routePrefix", DEFAULT_ROUTE_PREFIX)
        batch = hubs.get("maxEventBatchSize", DEFAULT_MAX_EVENT_BATCH_SIZE)
        if not isinstance(prefix, str):
            raise HostConfigError("host.json extensions.http.routePrefix must be a string")
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise HostConfigError("host.json extensions.eventHubs.maxEventBatchSize must be a positive integer")
        if not isinstance(durable, dict):
            raise HostConfigError("host.json extensions.durableTask must be an object")
        return cls(
            route_prefix=prefix.strip("/"),
            max_event_batch_size=batch,
            durable=DurableConfig.from_section(durable, {} if environ is None else environ),
        )
