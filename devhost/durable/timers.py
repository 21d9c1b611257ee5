"""Durable timers: one thread that fires each (instance, timer) at its time, the way the task hub's timer
messages become visible at their fire time."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from datetime import UTC, datetime

FireTimer = Callable[[str, int, datetime], None]


class DurableTimers:
    def __init__(self, fire: FireTimer, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._fire = fire
        self._clock = clock
        self._due: list[tuple[datetime, str, int]] = []
        self._armed: set[tuple[str, int]] = set()
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self._run, name="devhost-durable-timers", daemon=True)
        self._thread.start()
        return self._thread

    def arm(self, instance_id: str, timer_id: int, fire_at: datetime) -> None:
        with self._changed:
            if (instance_id, timer_id) in self._armed:
                return
            self._armed.add((instance_id, timer_id))
            heapq.heappush(self._due, (fire_at, instance_id, timer_id))
            self._changed.notify()

    def disarm(self, instance_id: str, timer_ids: set[int] | None = None) -> None:
        """Forget the instance's timers (all of them when timer_ids is None)."""
        with self._changed:
            self._armed = {
                (owner, timer)
                for owner, timer in self._armed
                if owner != instance_id or (timer_ids is not None and timer not in timer_ids)
            }

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopping:
                    wait = (self._due[0][0] - self._clock()).total_seconds() if self._due else None
                    if wait is not None and wait <= 0:
                        break
                    self._changed.wait(wait)
                if self._stopping:
                    return
                fire_at, instance_id, timer_id = heapq.heappop(self._due)
                if (instance_id, timer_id) not in self._armed:
                    continue
                self._armed.discard((instance_id, timer_id))
            self._fire(instance_id, timer_id, fire_at)
