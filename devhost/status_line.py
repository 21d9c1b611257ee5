"""devhost's status: in a terminal, one line redrawn in place every second; otherwise a plain log line every
`plain_every` seconds (JSON like the rest of the output, so a log shipper can chart it).

    ▶ 41.5 readings/s · lag p50 ≤ 1 s, p95 ≤ 2 s · 1,204 summaries · 0 failed · 0 dead letters

Rates and lag are over the last RATE_WINDOW_SECONDS (live) or since the previous line (plain); the counts
are since devhost started. The figures are the app's own metrics (the same as /api/metrics).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from devhost.console import ConsoleHandler
from shared.ops.metrics import PipelineMetrics, Totals

logger = logging.getLogger("devhost.status")

LIVE_EVERY_SECONDS = 1.0
RATE_WINDOW_SECONDS = 5.0
DEFAULT_PLAIN_EVERY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Status:
    readings_per_second: float
    lag_p50_seconds: float | None
    lag_p95_seconds: float | None
    summaries: int
    failed: int
    dead_letters: int
    alerts_firing: int = 0

    def fields(self) -> dict[str, object]:
        return {
            "event": "status",
            "readings_per_second": round(self.readings_per_second, 1),
            "lag_p50_seconds": self.lag_p50_seconds,
            "lag_p95_seconds": self.lag_p95_seconds,
            "summaries": self.summaries,
            "failed_invocations": self.failed,
            "dead_letters": self.dead_letters,
            "alerts_firing": self.alerts_firing,
        }


def measure(now: Totals, earlier: Totals | None, seconds: float) -> Status:
    readings = now.readings_summarised - (earlier.readings_summarised if earlier else 0.0)
    return Status(
        readings_per_second=readings / seconds if seconds > 0 else 0.0,
        lag_p50_seconds=now.lag_quantile_since(earlier, 0.5),
        lag_p95_seconds=now.lag_quantile_since(earlier, 0.95),
        summaries=int(now.summaries_written),
        failed=int(now.failed_invocations),
        dead_letters=int(now.dead_letters),
        alerts_firing=int(now.alerts_firing),
    )


def _lag(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds == float("inf"):
        return "> 1 d"
    if seconds < 60:
        return f"≤ {seconds:g} s"
    if seconds < 3600:
        return f"≤ {seconds / 60:g} min"
    return f"≤ {seconds / 3600:g} h"


def render(status: Status) -> str:
    return (
        f"▶ {status.readings_per_second:,.1f} readings/s · lag p50 {_lag(status.lag_p50_seconds)}, "
        f"p95 {_lag(status.lag_p95_seconds)} · {status.summaries:,} summaries · {status.failed:,} failed · "
        f"{status.dead_letters:,} dead letters · {status.alerts_firing:,} "
        f"{'alert' if status.alerts_firing == 1 else 'alerts'} firing"
    )


class StatusReporter:
    """A daemon thread that reports until `stop` is set; `clock` is time.monotonic (tests may replace it)."""

    def __init__(
        self,
        metrics: PipelineMetrics,
        handler: ConsoleHandler,
        stop: threading.Event,
        plain_every: float = DEFAULT_PLAIN_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._handler = handler
        self._stop = stop
        self._plain_every = plain_every
        self._clock = clock
        self._history: deque[tuple[float, Totals]] = deque()
        self._thread = threading.Thread(target=self._run, name="devhost-status", daemon=True)

    def start(self) -> None:
        self._history.append((self._clock(), self._metrics.totals()))
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._handler.live_status:
            self._handler.clear_status()

    def _run(self) -> None:
        live = self._handler.live_status
        every = LIVE_EVERY_SECONDS if live else self._plain_every
        while not self._stop.wait(every):
            self.tick()

    def tick(self) -> Status:
        """Take one reading of the metrics and show it."""
        now, totals = self._clock(), self._metrics.totals()
        live = self._handler.live_status
        window = RATE_WINDOW_SECONDS if live else 0.0
        while len(self._history) > 1 and now - self._history[1][0] >= window:
            self._history.popleft()  # keep the newest entry at least `window` old
        since, earlier = self._history[0]
        status = measure(totals, earlier, now - since)
        self._history.append((now, totals))
        if live:
            self._handler.show_status(render(status))
        else:
            logger.info(render(status), extra=status.fields())
        return status
