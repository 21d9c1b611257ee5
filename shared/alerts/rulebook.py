"""The rules as the evaluators see them: read from the table at most every few seconds, and per series the
rules that match it, worked out once per version of the rules. The summariser asks for every summary, so in
steady state the answer is a dictionary lookup; a series met for the first time is matched only against the
patterns whose literal start (before the first `*` or `?`) its sensor id begins with."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.alerts.rules import SILENCE, THRESHOLD, AlertRule, sensor_matches
from shared.alerts.series_rules import SeriesRules
from shared.alerts.store import AlertStore

RULES_REFRESH_SECONDS = 10.0
SeriesKey = tuple[str, str]  # (sensor_id, metric)
# metric -> literal prefix length -> literal prefix -> [(pattern, the threshold rules with that pattern)]
_PatternIndex = dict[str, dict[int, dict[str, list[tuple[str, list[AlertRule]]]]]]


def _pattern_index(rules: tuple[AlertRule, ...]) -> _PatternIndex:
    grouped: dict[tuple[str, str], list[AlertRule]] = {}
    for rule in rules:
        if rule.kind == THRESHOLD:
            grouped.setdefault((rule.metric, rule.sensors), []).append(rule)
    index: _PatternIndex = {}
    for (metric, pattern), members in grouped.items():
        literal = min((i for i in (pattern.find("*"), pattern.find("?")) if i >= 0), default=len(pattern))
        by_length = index.setdefault(metric, {}).setdefault(literal, {})
        by_length.setdefault(pattern[:literal], []).append((pattern, members))
    return index


class RuleBook:
    def __init__(
        self,
        store: AlertStore,
        refresh_seconds: float = RULES_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._rules: tuple[AlertRule, ...] = ()
        self.version = 0  # grows whenever the rules read differ from the ones before
        self._read_at: float | None = None
        self._matching: dict[SeriesKey, SeriesRules] = {}
        self._shared: dict[tuple[str, ...], SeriesRules] = {}  # series watched by the same rules share one index
        self._patterns: _PatternIndex = {}

    def rules(self) -> tuple[AlertRule, ...]:
        """Every rule, as read within the last `refresh_seconds` (a change made here shows at once)."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._refresh:
                rules = tuple(sorted(self._store.rules(), key=lambda rule: rule.name))
                if rules != self._rules:
                    self._rules = rules
                    self.version += 1
                    self._matching = {}
                    self._shared = {}
                    self._patterns = _pattern_index(rules)
                self._read_at = now
            return self._rules

    def thresholds(self, key: SeriesKey) -> SeriesRules:
        """The threshold rules that watch one series, as of the last `rules()` (call it once per batch)."""
        matching = self._matching.get(key)
        if matching is None:
            sensor_id, metric = key
            chosen: list[AlertRule] = []
            for length, by_prefix in self._patterns.get(metric, {}).items():
                for pattern, members in by_prefix.get(sensor_id[:length], ()):
                    if sensor_matches(pattern, sensor_id):
                        chosen.extend(members)
            chosen.sort(key=lambda rule: rule.name)
            names = tuple(rule.name for rule in chosen)
            matching = self._shared.get(names)
            if matching is None:
                matching = self._shared[names] = SeriesRules(tuple(chosen))
            self._matching[key] = matching
        return matching

    def silences(self) -> tuple[AlertRule, ...]:
        return tuple(rule for rule in self.rules() if rule.kind == SILENCE)

    def changed(self) -> None:
        """A rule was put or deleted in this process: read them again on next use."""
        with self._lock:
            self._read_at = None
