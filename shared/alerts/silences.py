"""The minute timer: silence rules judged on every series' newest reading, the firing-alert gauge, and history
past ALERT_HISTORY_DAYS pruned.

A series' newest reading is read from its window state (one paged scan of the windows table), never from the
readings. Each transition is a conditional write with its notification, so two instances running the timer at
once write it once: the slower one meets a conflict and leaves it to the next minute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from shared.alerts.evaluation import FIRING, INACTIVE, RESOLVED, AlertState, judge_silence
from shared.alerts.rulebook import RuleBook
from shared.alerts.rules import AlertRule
from shared.alerts.store import AlertStore, StoredState, history_ended_ms
from shared.alerts.transitions import Judged, record_transitions, rows_of
from shared.ops.log_context import app_logger
from shared.ops.metrics import PipelineMetrics
from shared.readings.reading import epoch_ms
from shared.storage.names import WINDOWS_TABLE
from shared.storage.ports import MAX_ENTITY_PAGE, ConcurrencyConflict, Entity, StateStore

logger = app_logger(__name__)

DAY_MS = 86_400_000


@dataclass(slots=True)
class SilenceReport:
    series: int = 0
    fired: int = 0
    resolved: int = 0
    pruned: int = 0
    firing: int = 0


@dataclass(frozen=True, slots=True)
class SeriesTimes:
    sensor_id: str
    metric: str
    unit: str
    times: list[int]  # the window's reading times, oldest first


class SilenceWatch:
    def __init__(
        self,
        store: AlertStore,
        rules: RuleBook,
        state: StateStore,
        history_days: int,
        metrics: PipelineMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._rules = rules
        self._state = state
        self._history_ms = history_days * DAY_MS
        self._metrics = metrics
        self._clock = clock

    def run(self) -> SilenceReport:
        report = SilenceReport()
        now_ms = epoch_ms(self._clock())
        silences = self._rules.silences()
        states = {
            (str(e.properties.get("sensor_id")), str(e.properties.get("metric")), str(e.properties.get("rule"))): e
            for e in self._store.states()
        }
        if silences:
            for series in self._series():
                report.series += 1
                for rule in silences:
                    if rule.matches(series.sensor_id, series.metric):
                        self._judge(rule, series, states, now_ms, report)
        # Read after judging, so what this run wrote is seen: neither pruned nor left out of the count.
        written, received = self._store.states(), self._store.inbound()
        report.pruned = self._prune(now_ms, written, received)
        report.firing = self._count_firing(written, received)
        if report.fired or report.resolved:
            logger.info(
                "silences: %d fired, %d resolved over %d series",
                report.fired,
                report.resolved,
                report.series,
                extra={"event": "silences", "fired": report.fired, "resolved": report.resolved},
            )
        return report

    def _series(self) -> Iterator[SeriesTimes]:
        continuation: str | None = None
        while True:
            page = self._state.query_page(WINDOWS_TABLE, MAX_ENTITY_PAGE, continuation)
            for entity in page.entities:
                raw = entity.properties.get("entries")
                if not isinstance(raw, str) or not raw:
                    continue
                times = sorted(int(entry[0]) for entry in orjson.loads(raw))
                if times:
                    unit = str(entity.properties.get("unit", ""))
                    yield SeriesTimes(entity.partition_key, entity.row_key, unit, times)
            continuation = page.continuation
            if continuation is None:
                return

    def _judge(
        self,
        rule: AlertRule,
        series: SeriesTimes,
        states: dict[tuple[str, str, str], Entity],
        now_ms: int,
        report: SilenceReport,
    ) -> None:
        entity = states.get((series.sensor_id, series.metric, rule.name))
        stored = (
            None
            if entity is None
            else StoredState(rule.name, AlertState.from_properties(entity.properties), entity.etag)
        )
        current = stored.state if stored is not None else AlertState()
        since = current.since_ms
        returned = next((t for t in series.times if since is not None and t > since), None)
        step = judge_silence(rule, current, series.times[-1], returned, now_ms)
        if step.state is None:
            return
        judged = Judged(
            rule,
            series.sensor_id,
            series.metric,
            step.state,
            None if stored is None else stored.etag,
            step.notify,
            series.unit,
        )
        try:
            self._store.commit(rows_of(judged, now_ms))
        except ConcurrencyConflict:
            return  # another instance judged it first; the next minute sees what it wrote
        record_transitions(self._metrics, [judged])
        if step.notify == FIRING:
            report.fired += 1
        elif step.notify == RESOLVED:
            report.resolved += 1

    def _prune(self, now_ms: int, states: list[Entity], received: list[Entity]) -> int:
        """History, received alerts and quiet states older than ALERT_HISTORY_DAYS."""
        oldest = now_ms - self._history_ms
        stale = [e.row_key for e in self._store.history() if history_ended_ms(e.row_key) < oldest]
        for entity in received:
            if entity.properties.get("status") == "resolved" and int(entity.properties.get("updated_ms") or 0) < oldest:
                stale.append(entity.row_key)
        for entity in states:
            quiet = entity.properties.get("state") in (INACTIVE, RESOLVED)
            if quiet and int(entity.properties.get("updated_ms") or 0) < oldest:
                stale.append(entity.row_key)
        return self._store.delete_rows(stale)

    def _count_firing(self, states: list[Entity], received: list[Entity]) -> int:
        by_severity: dict[str, int] = {}
        for entity in states:
            if entity.properties.get("state") == FIRING:
                severity = str(entity.properties.get("severity", "warning"))
                by_severity[severity] = by_severity.get(severity, 0) + 1
        for entity in received:
            if entity.properties.get("status") == "firing":
                severity = str(entity.properties.get("severity", "warning"))
                by_severity[severity] = by_severity.get(severity, 0) + 1
        if self._metrics is not None:
            self._metrics.firing_alerts(by_severity)
        return sum(by_severity.values())
