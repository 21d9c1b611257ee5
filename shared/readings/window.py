"""The sliding window: the latest N readings of one series by timestamp, unique by reading id.

Merging is a set union followed by "keep the N greatest (timestamp, id)", so the result does not depend on
the order, batching or repetition of deliveries. That is what makes the summariser idempotent. A reading whose id
the window holds with another timestamp or value is not merged: the window keeps what it summarised first, and
the merge reports the other one as a conflict.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

# (timestamp in epoch ms, reading id, value): tuples sort by time, then id, which breaks ties stably.
WindowEntry = tuple[int, str, float]


@dataclass(slots=True)  # not frozen: one is made for every changed window, and a frozen one is slower to make
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
        self._ids: dict[str, WindowEntry] = {}  # reading id -> its entry
        self.merge(entries)

    @property
    def entries(self) -> list[WindowEntry]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def newest_ms(self) -> int | None:
        """The time of the newest reading kept (None: empty)."""
        return self._entries[-1][0] if self._entries else None

    def merge(self, entries: Iterable[WindowEntry], conflicts: list[WindowEntry] | None = None) -> int:
        """Add readings; returns how many entered the window (0: it did not change). An entry whose id the window
        holds with other content is appended to `conflicts`, when given."""
        changed = 0
        window = self._entries
        ids = self._ids
        for entry in entries:
            held = ids.get(entry[1])
            if held is not None:
                if held != entry and conflicts is not None:
                    conflicts.append(entry)
                continue
            if len(window) >= self.size and entry <= window[0]:
                # Older than everything kept: it would be evicted at once (or was, earlier).
                continue
            bisect.insort(window, entry)
            ids[entry[1]] = entry
            if len(window) > self.size:
                del ids[window.pop(0)[1]]
            changed += 1
        return changed

    def stats(self) -> WindowStats | None:
        entries = self._entries
        if not entries:
            return None
        values = [entry[2] for entry in entries]
        count = len(values)
        # fsum is exactly rounded, so the average is the same for any order and on every replay.
        average = math.fsum(values) / count
        newest = entries[-1]
        return WindowStats(count, min(values), max(values), average, entries[0][0], newest[0], newest[1])

    def to_json(self) -> str:
        return orjson.dumps(self._entries).decode()

    @classmethod
    def from_json(cls, size: int, text: str) -> SlidingWindow:
        return cls(size, _stored_entries(text))

    @classmethod
    def as_stored(cls, text: str) -> SlidingWindow:
        """A stored window read by someone who does not know the window size: exactly its entries."""
        entries = _stored_entries(text)
        return cls(max(1, len(entries)), entries)


def _stored_entries(text: str) -> list[WindowEntry]:
    return [(int(ts), str(rid), float(value)) for ts, rid, value in (orjson.loads(text) if text else [])]


def summary_id(sensor_id: str, metric: str, newest_reading_id: str) -> str:
    """Deterministic summary id: the series and the window's newest reading name the summary."""
    digest = hashlib.sha256(f"{sensor_id}\x1f{metric}\x1f{newest_reading_id}".encode()).hexdigest()
    return digest[:32]
