"""The process's cyclic garbage collector, tuned for batches of many small objects.

CPython collects its youngest generation every 700 new container objects and, every hundred of those, the whole
heap: every object the app imported (the SDKs, matplotlib) and every live one of the batch at hand. A bulk import
or a summariser batch makes several containers a reading (row, reading, tuples), so a million-row import ran
about a hundred full collections of ~140 ms each: a quarter of its time, holding the GIL (`python -m bench
import`: 18.6k -> 21.6k rows/s with this tuning). The app's own objects are frozen once it is loaded (never
traversed again; they live as long as the process anyway), and young objects are collected every
YOUNG_THRESHOLD allocations. Reference counting still frees almost everything at once: only cycles wait."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000  # new container objects between collections of the youngest generation (CPython: 700)


def tune_after_load() -> None:
    """Call once the app is loaded: freeze what exists, collect young objects less often."""
    gc.collect()  # what import left behind as garbage is not worth freezing
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
