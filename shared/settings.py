"""Every app setting the code reads, named once, parsed once, typed."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

STORAGE_BACKEND = "STORAGE_BACKEND"
EMBEDDED_DATA_DIR = "EMBEDDED_DATA_DIR"
COSMOS_DATABASE_NAME = "COSMOS_DATABASE_NAME"
WINDOW_SIZE = "WINDOW_SIZE"
SENSOR_COUNT = "SENSOR_COUNT"
SUMMARY_TTL_SECONDS = "SUMMARY_TTL_SECONDS"
READING_TTL_SECONDS = "READING_TTL_SECONDS"
EVENTHUB_NAME = "EVENTHUB_NAME"
EVENTHUB_EXTRA_HUBS = "EVENTHUB_EXTRA_HUBS"  # JSON list of further hubs; see shared.hub_delivery

# Read only by binding expressions (%NAME%) in the blueprints; listed so every name lives here.
SIMULATOR_SCHEDULE = "SIMULATOR_SCHEDULE"
EVENTHUB_CONSUMER_GROUP = "EVENTHUB_CONSUMER_GROUP"
LEASE_CONTAINER_PREFIX = "LEASE_CONTAINER_PREFIX"

BACKEND_EMBEDDED = "embedded"
BACKEND_AZURE = "azure"

MAX_WINDOW_SIZE = 500  # the window is one Table entity; 500 entries stay well under its 64 KiB property limit
MAX_SENSOR_COUNT = 10_000


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names it (never its value, which may be secret)."""


@dataclass(frozen=True, slots=True)
class Settings:
    storage_backend: str
    embedded_data_dir: Path
    cosmos_database: str
    window_size: int
    sensor_count: int
    summary_ttl_seconds: int
    reading_ttl_seconds: int
    eventhub_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        backend = env.get(STORAGE_BACKEND, BACKEND_AZURE).strip().lower()
        if backend not in (BACKEND_EMBEDDED, BACKEND_AZURE):
            raise SettingsError(f"{STORAGE_BACKEND} must be '{BACKEND_EMBEDDED}' or '{BACKEND_AZURE}'")
        return cls(
            storage_backend=backend,
            embedded_data_dir=Path(env.get(EMBEDDED_DATA_DIR, ".devhost")),
            cosmos_database=env.get(COSMOS_DATABASE_NAME, "sensorpulse"),
            window_size=_int(env, WINDOW_SIZE, 10, 1, MAX_WINDOW_SIZE),
            sensor_count=_int(env, SENSOR_COUNT, 5, 0, MAX_SENSOR_COUNT),
            summary_ttl_seconds=_int(env, SUMMARY_TTL_SECONDS, 7 * 86400, 0, 10 * 365 * 86400),
            reading_ttl_seconds=_int(env, READING_TTL_SECONDS, 7 * 86400, 0, 10 * 365 * 86400),
            eventhub_name=env.get(EVENTHUB_NAME, "telemetry"),
        )


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}")
    return value


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings.from_env(os.environ)
