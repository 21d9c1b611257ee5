"""Threshold alerts, judged inside the summariser's batch on the summaries it has just written.

The states of a series' rules are kept in memory: in steady state judging a summary reads nothing, and writes only
when a state changes. A series met for the first time takes its states from a snapshot of every state row (one
range read, taken again when older than SNAPSHOT_SECONDS); a series whose window the summariser had to read again
(another instance wrote it) has its states read again too. Every write is
conditional (If-Match, or insert-if-absent); when another instance got there first, the series' states are read
again and the summary judged again, so each transition is written once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from shared.alerts.evaluation import AlertState, Observation, judge_threshold
from shared.alerts.rulebook import RuleBook, SeriesKey
from shared.alerts.series_rules import SeriesRules
from shared.alerts.store import AlertStore, StoredState, state_key
from shared.alerts.transitions import Judged, record_transitions, rows_of
from shared.ops.metrics import PipelineMetrics
from shared.readings.reading import epoch_ms
from shared.readings.summariser import WrittenSummary
from shared.storage.ports import ConcurrencyConflict, StorageError

MAX_ROUNDS = 5
SNAPSHOT_SECONDS = 30.0


class ThresholdAlerts:
    def __init__(
        self,
        store: AlertStore,
        rules: RuleBook,
        metrics: PipelineMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._rules = rules
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._states: dict[SeriesKey, dict[str, StoredState]] = {}
        self._snapshot: dict[SeriesKey, dict[str, StoredState]] = {}
        self._snapshot_at: float | None = None
        self._reread: set[SeriesKey] = set()  # known here before, possibly changed elsewhere since
        self._rules_version = 0
        self._lock = threading.Lock()

    def forget(self, key: SeriesKey) -> None:
        """The summariser read this series' window from storage: its alert states may be stale as well."""
        if self._states.pop(key, None) is not None:
            self._reread.add(key)

    def _states_of(self, key: SeriesKey) -> dict[str, StoredState]:
        states = self._states.get(key)
        if states is not None:
            return states
        if key in self._reread:
            states = self._store.series_states(*key)
            self._reread.discard(key)
        else:
            now = self._monotonic()
            if self._snapshot_at is None or now - self._snapshot_at >= SNAPSHOT_SECONDS:
                self._snapshot = self._store.all_series_states()
                self._snapshot_at = now
            states = dict(self._snapshot.get(key, {}))
        self._states[key] = states
        return states

    def judge(self, summaries: Sequence[WrittenSummary]) -> int:
        """Judge each summary against the threshold rules of its series; returns the transitions written."""
        transitions = 0
        with self._lock:
            self._rules.rules()  # read again if they are due: once per batch, not per summary
            if self._rules.version != self._rules_version:
                # Putting or deleting a rule resolves alerts elsewhere (shared.alerts.admin) before the rules change:
                # every state is read again.
                self._rules_version = self._rules.version
                self._states.clear()
                self._reread.clear()
                self._snapshot_at = None
            thresholds, states_cache = self._rules.thresholds, self._states
            for summary in summaries:
                key = (summary.sensor_id, summary.metric)
                rules = thresholds(key)
                if not rules:
                    continue
                states = states_cache.get(key)
                if states is not None and not states and not rules.breached(summary.min, summary.max, summary.avg):
                    continue  # the steady state of a quiet series: nothing stored, nothing breached
                transitions += self._judge_series(key, rules, summary)
        return transitions

    def _judge_series(self, key: SeriesKey, rules: SeriesRules, summary: WrittenSummary) -> int:
        for _ in range(MAX_ROUNDS):
            states = self._states_of(key)
            # A rule with no state on this series that the summary does not breach stays inactive: only the rules
            # with a state, and those breached, need judging.
            breached = rules.breached(summary.min, summary.max, summary.avg)
            if not breached and not states:
                return 0  # the steady state of a quiet series
            candidates = {name: rules.by_name[name] for name in states if name in rules.by_name}
            for rule in breached:
                candidates[rule.name] = rule
            if not candidates:
                return 0
            judged: list[Judged] = []
            seen = Observation(summary.order, summary.window_end_ms, summary.min, summary.max, summary.avg)
            for rule in candidates.values():
                stored = states.get(rule.name)
                current = stored.state if stored is not None else AlertState()
                step = judge_threshold(rule, current, seen)
                if step.state is not None:
                    etag = stored.etag if stored is not None else None
                    judged.append(Judged(rule, key[0], key[1], step.state, etag, step.notify, summary.unit))
            if not judged:
                return 0
            now_ms = epoch_ms(self._clock())
            rows = [row for one in judged for row in rows_of(one, now_ms)]
            try:
                written = self._store.commit(rows)
            except ConcurrencyConflict:
                self.forget(key)  # another instance judged this series: read its states again
                continue
            except BaseException:
                self.forget(key)
                raise
            by_key = {entity.row_key: entity for entity in written}
            for one in judged:
                row = state_key(one.sensor_id, one.metric, one.rule.name)
                states[one.rule.name] = StoredState(one.rule.name, one.state, by_key[row].etag)
            record_transitions(self._metrics, judged)
            return sum(1 for one in judged if one.notify is not None)
        raise StorageError(f"alert states of {key[0]} {key[1]} kept changing; the batch will be retried")
