"""The sliding window: the latest N readings of one series by timestamp, unique by reading id.

Merging is a set union followed by "keep the N greatest (timestamp, id)", so the result does not depend on
the order, batching or repetition of deliveries. That is what makes the summariser idempotent.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

# (timestamp in epoch ms, reading id, value): tuples sort by time, then id, which breaks ties stably.
WindowEntry = tuple[int, str, float]


@dataclass(frozen=True, slots=True)
class WindowStats:
    count: int
    min: float
    max: float
    avg: float
    first_ms: int
    last_ms: int
    newest_id: str


class SlidingWindow:
    __slots__ = ("size", "_entries", "_ids")

    def __init__(self, size: int, entries: Iterable[WindowEntry] = ()) -> None:
        if size < 1:
            raise ValueError("window size must be at least 1")
        self.size = size
        self._entries: list[WindowEntry] = []
        self._ids: set[str] = set()
        self.merge(entries)

    def copy(self) -> SlidingWindow:
        clone = SlidingWindow.__new__(SlidingWindow)
        clone.size = self.size
        clone._entries = list(self._entries)
        clone._ids = set(self._ids)
        return clone

    @property
    def entries(self) -> list[WindowEntry]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def merge(self, entries: Iterable[WindowEntry]) -> int:
        """Add readings; returns how many entered the window (0: it did not change)."""
        changed = 0
        window = self._entries
        ids = self._ids
        for entry in entries:
            if entry[1] in ids:
                continue
            if len(window) >= self.size and entry <= window[0]:
                # Older than everything kept: it would be evicted at once (or was, earlier).
                continue
            bisect.insort(window, entry)
            ids.add(entry[1])
            if len(window) > self.size:
                ids.discard(window.pop(0)[1])
            changed += 1
        return changed

    def stats(self) -> WindowStats | None:
        if not self._entries:
            return None
        values = [entry[2] for entry in self._entries]
        total = 0.0
        for value in values:  # fixed order (sorted entries) keeps the float sum identical on every replay
            total += value
        return WindowStats(
            count=len(values),
            min=min(values),
            max=max(values),
            avg=total / len(values),
            first_ms=self._entries[0][0],
            last_ms=self._entries[-1][0],
            newest_id=self._entries[-1][1],
        )

    def to_json(self) -> str:
        return orjson.dumps(self._entries).decode()

    @classmethod
    def from_json(cls, size: int, text: str) -> SlidingWindow:
        raw = orjson.loads(text) if text else []
        return cls(size, ((int(ts), str(rid), float(value)) for ts, rid, value in raw))


def summary_id(sensor_id: str, metric: str, newest_reading_id: str) -> str:
    """Deterministic summary id: the series and the window's newest reading name the summary."""
    digest = hashlib.sha256(f"{sensor_id}\x1f{metric}\x1f{newest_reading_id}".encode()).hexdigest()
    return digest[:32]
