"""What the durable test app's activities report to the tests: their attempts, per host generation, and a
gate the restart test holds some of them at. Kept out of function_app, which each host imports afresh."""

from __future__ import annotations

import threading
from collections import Counter

attempts: Counter[tuple[str, int]] = Counter()
generation = 1
hold_from: int | None = None
release = threading.Event()
_lock = threading.Lock()


def attempt(key: str) -> int:
    """Count one run of the activity for `key`; returns how many runs it has had, on any host."""
    with _lock:
        attempts[(key, generation)] += 1
        return sum(count for (name, _), count in attempts.items() if name == key)


def reset() -> None:
    global generation, hold_from
    with _lock:
        attempts.clear()
    generation, hold_from = 1, None
    release.clear()
