"""Cosmos DB request units (RU) spent, per container and operation, kept per process for metrics."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

REQUEST_CHARGE_HEADER = "x-ms-request-charge"


class RequestCharges:
    """Thread-safe running totals; the metrics endpoint reads `snapshot()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._units: defaultdict[tuple[str, str], float] = defaultdict(float)
        self._requests: defaultdict[tuple[str, str], int] = defaultdict(int)

    def add(self, container: str, operation: str, units: float) -> None:
        with self._lock:
            self._units[(container, operation)] += units
            self._requests[(container, operation)] += 1

    def add_from_headers(self, container: str, operation: str, headers: Mapping[str, Any]) -> None:
        raw = headers.get(REQUEST_CHARGE_HEADER)
        try:
            units = float(raw) if raw is not None else 0.0
        except (TypeError, ValueError):
            units = 0.0
        self.add(container, operation, units)

    def snapshot(self) -> dict[tuple[str, str], tuple[int, float]]:
        """(container, operation) -> (requests, request units)."""
        with self._lock:
            return {key: (self._requests[key], self._units[key]) for key in self._units}

    def total(self) -> float:
        with self._lock:
            return sum(self._units.values())
