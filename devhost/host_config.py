"""host.json, as far as devhost needs it: the HTTP route prefix and the Event Hubs batch size."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_ROUTE_PREFIX = "api"  # the host's default when host.json does not set one
DEFAULT_MAX_EVENT_BATCH_SIZE = 100  # Event Hubs extension 5.x default


class HostConfigError(RuntimeError):
    """host.json is missing or malformed."""


@dataclass(frozen=True, slots=True)
class HostConfig:
    route_prefix: str
    max_event_batch_size: int

    @classmethod
    def load(cls, app_dir: Path) -> HostConfig:
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
        prefix = http.get("routePrefix", DEFAULT_ROUTE_PREFIX)
        batch = hubs.get("maxEventBatchSize", DEFAULT_MAX_EVENT_BATCH_SIZE)
        if not isinstance(prefix, str):
            raise HostConfigError("host.json extensions.http.routePrefix must be a string")
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise HostConfigError("host.json extensions.eventHubs.maxEventBatchSize must be a positive integer")
        return cls(route_prefix=prefix.strip("/"), max_event_batch_size=batch)
