"""What a window must hold, computed from the readings themselves: the oracle the pipeline tests compare to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shared.readings.reading import epoch_ms, parse_timestamp
from shared.readings.window import SlidingWindow, WindowEntry


def window_entries(readings: Iterable[Mapping[str, Any]]) -> list[WindowEntry]:
    """Reading documents as window entries, sorted by (timestamp, id); each id once."""
    unique = {r["id"]: (epoch_ms(parse_timestamp(r["timestamp"])), str(r["id"]), float(r["value"])) for r in readings}
    return sorted(unique.values())


def true_window(readings: Iterable[Mapping[str, Any]], size: int, newest_id: str | None = None) -> SlidingWindow:
    """The window of one series once every reading up to `newest_id` (all of them when None) has arrived."""
    entries = window_entries(readings)
    if newest_id is not None:
        cut = next(i for i, entry in enumerate(entries) if entry[1] == newest_id)
        entries = entries[: cut + 1]
    return SlidingWindow(size, entries)
