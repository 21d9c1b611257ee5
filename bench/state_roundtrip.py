"""Window-state round trip on Azurite: read the entity, then write it back with If-Match, as the summariser
does for a series whose window is not cached. Azurite is started from node_modules on a free loopback port
(`npm ci` first) and stopped at the end."""

from __future__ import annotations

import time
from typing import Any

from bench.common import log, machine, median, percentile
from shared.storage.azure.clients import Connection, table_service
from shared.storage.azure.table_state import TableStateStore
from shared.storage.names import WINDOWS_TABLE
from shared.storage.ports import EntityWrite
from tests.emulators import start_azurite

ROUND_TRIPS = 500
WARMUP = 20
SERIES = 50
TARGET_MEDIAN_MS = 10.0


def _window_properties(n: int) -> dict[str, Any]:
    entries = ",".join(f'[1735689600{k:03d},"sensor-{n:04d}-{k:06d}",{20 + k * 0.1:.2f}]' for k in range(10))
    return {"entries": f"[{entries}]", "unit": "°C", "latest": "{}" * 180, "updated_at": "2025-01-01T00:00:00.000Z"}


def run() -> dict[str, Any]:
    azurite = start_azurite()
    try:
        store = TableStateStore(table_service(Connection("STATE", azurite.extra["connection_string"], None, None)))
        for n in range(SERIES):
            store.upsert(WINDOWS_TABLE, f"sensor-{n:04d}", "temperature", _window_properties(n))
        timings: list[float] = []
        log(f"{ROUND_TRIPS} read + If-Match write round trips over {SERIES} series")
        for i in range(WARMUP + ROUND_TRIPS):
            key = f"sensor-{i % SERIES:04d}"
            began = time.perf_counter()
            entity = store.get(WINDOWS_TABLE, key, "temperature")
            assert entity is not None
            store.write(WINDOWS_TABLE, EntityWrite(key, "temperature", _window_properties(i), entity.etag))
            if i >= WARMUP:
                timings.append((time.perf_counter() - began) * 1000)
        store.close()
    finally:
        azurite.stop()
    med = median(timings)
    return {
        "bench": "state_roundtrip",
        "backend": "Azurite (Table Storage emulator) on 127.0.0.1, azure-data-tables",
        "round_trips": ROUND_TRIPS,
        "median_ms": round(med, 2),
        "p95_ms": round(percentile(timings, 0.95), 2),
        "max_ms": round(max(timings), 2),
        "target": {"median_ms_max": TARGET_MEDIAN_MS},
        "meets_target": med <= TARGET_MEDIAN_MS,
        "machine": machine(),
    }
