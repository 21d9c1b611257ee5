"""A summariser with threshold alerts on a real embedded store, as one process of the app builds them; a
"restart" is a new one on the same store (nothing in memory survives)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.alerts.rulebook import RuleBook
from shared.alerts.rules import parse_rule
from shared.alerts.store import HISTORY, OUTBOX, AlertStore
from shared.alerts.thresholds import ThresholdAlerts
from shared.readings.reading import format_timestamp, from_epoch_ms
from shared.readings.summariser import Summariser
from shared.storage.factory import Stores, open_embedded
from shared.storage.sqlite.database import SqliteDatabase

T0_MS = 1_790_000_000_000


_opened: list[SqliteDatabase] = []


def embedded_stores(directory: Path) -> Stores:
    """The embedded stores on a new database file; close_opened() closes it (conftest does after each test)."""
    database = SqliteDatabase.in_directory(directory)
    _opened.append(database)
    return open_embedded(database)


def close_opened() -> None:
    while _opened:
        _opened.pop().close()


@dataclass
class AlertingProcess:
    store: AlertStore
    thresholds: ThresholdAlerts
    summariser: Summariser

    @classmethod
    def start(cls, stores: Stores, window_size: int = 1, store: AlertStore | None = None) -> AlertingProcess:
        alerts = store or AlertStore(stores.state)
        rules = RuleBook(alerts, refresh_seconds=0)
        thresholds = ThresholdAlerts(alerts, rules)
        summariser = Summariser(stores.documents, stores.state, window_size, watcher=thresholds)
        return cls(alerts, thresholds, summariser)

    def deliver(self, batch: Sequence[dict[str, Any]]) -> None:
        self.summariser.apply(list(batch), "test")


def put_threshold(store: AlertStore, name: str = "hot", **fields: Any) -> None:
    body = {"kind": "threshold", "metric": "temperature", "op": ">", "value": 30, "clear": 28, **fields}
    store.put_rule(parse_rule(name, body), "2026-01-01T00:00:00.000Z")


def reading(sensor_id: str, value: float, second: int, reading_id: str | None = None) -> dict[str, Any]:
    return {
        "id": reading_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sensor_id}/{second}")),
        "sensor_id": sensor_id,
        "metric": "temperature",
        "value": value,
        "unit": "°C",
        "timestamp": format_timestamp(from_epoch_ms(T0_MS + second * 1000)),
        "source": "test",
    }


def notifications(store: AlertStore) -> list[str]:
    """The notifications written so far (none is sent in these tests): their ids, which are their keys."""
    return sorted(row.row_key[len(OUTBOX) :] for row in store.outbox())


def statuses(store: AlertStore) -> list[str]:
    return sorted(key.rsplit("-", 1)[1] for key in notifications(store))


def history_count(store: AlertStore) -> int:
    return sum(1 for row in store.history() if row.row_key.startswith(HISTORY))
