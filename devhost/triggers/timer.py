"""timerTrigger: fires a function on its NCRONTAB or TimeSpan schedule, like the host's timer listener.

run_on_startup fires once as the host starts. With use_monitor (the host's default when occurrences are at
least a minute apart) the last and next occurrence are kept in the state store, so an occurrence missed
while the host was down fires at start with past_due set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.functions.timer import TimerRequest

from devhost.app.function_index import FunctionSpec
from devhost.app.invoker import Invoker
from devhost.triggers.schedule import Schedule, parse_schedule
from shared.storage.ports import StateStore

logger = logging.getLogger("devhost")

STATUS_TABLE = "devhosttimers"
STATUS_PARTITION = "status"
_MONITOR_THRESHOLD = timedelta(minutes=1)
_PAST_DUE_TOLERANCE = timedelta(seconds=1)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class TimerDriver:
    def __init__(
        self,
        spec: FunctionSpec,
        invoker: Invoker,
        state: StateStore,
        stop: threading.Event,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.spec = spec
        self.schedule: Schedule = parse_schedule(str(spec.trigger.get("schedule", "")))
        self._invoker = invoker
        self._state = state
        self._stop = stop
        self._clock = clock
        now = clock()
        monitor = spec.trigger.get("useMonitor")
        self.use_monitor = (
            bool(monitor) if monitor is not None else self.schedule.typical_interval(now) >= _MONITOR_THRESHOLD
        )
        self.run_on_startup = bool(spec.trigger.get("runOnStartup", False))

    def _status(self) -> dict[str, Any] | None:
        if not self.use_monitor:
            return None
        entity = self._state.get(STATUS_TABLE, STATUS_PARTITION, self.spec.name)
        return entity.properties if entity else None

    def _save_status(self, last: datetime, following: datetime) -> None:
        if self.use_monitor:
            properties = {"Last": _iso(last), "Next": _iso(following), "LastUpdated": _iso(self._clock())}
            self._state.upsert(STATUS_TABLE, STATUS_PARTITION, self.spec.name, properties)

    def _fire(self, scheduled: datetime, past_due: bool) -> None:
        following = self.schedule.next_after(max(scheduled, self._clock()))
        status = self._status() or {}
        request = TimerRequest(
            past_due=past_due,
            schedule_status={
                "Last": status.get("Last", _iso(scheduled)),
                "Next": _iso(following),
                "LastUpdated": status.get("LastUpdated", _iso(scheduled)),
            },
            schedule={"AdjustForDST": True},
        )
        name = str(self.spec.trigger["name"])
        self._invoker.call_with_retry(self.spec, lambda: {name: request})
        self._save_status(scheduled, following)

    def fire_now(self) -> threading.Thread:
        """Run the function once now, on its own thread, as the host's POST /admin/functions/{name} does."""
        thread = threading.Thread(
            target=self._fire, args=(self._clock(), False), name=f"devhost-admin-{self.spec.name}", daemon=True
        )
        thread.start()
        return thread

    def run(self) -> None:
        """Runs until the stop event is set; call on its own thread."""
        now = self._clock()
        status = self._status()
        if status and "Next" in status and datetime.fromisoformat(str(status["Next"])) < now:
            logger.info("timer %s missed an occurrence while stopped; running it now (past due)", self.spec.name)
            self._fire(datetime.fromisoformat(str(status["Next"])), past_due=True)
        elif self.run_on_startup:
            self._fire(now, past_due=False)
        scheduled = self.schedule.next_after(self._clock())
        while not self._stop.is_set():
            wait = (scheduled - self._clock()).total_seconds()
            if wait > 0 and self._stop.wait(wait):
                return
            late = self._clock() - scheduled > _PAST_DUE_TOLERANCE
            self._fire(scheduled, past_due=late)
            # Occurrences that passed during a long run are skipped, as the host does.
            scheduled = self.schedule.next_after(max(scheduled, self._clock()))
