"""Silence rules judged by the minute timer on the series' newest readings: they fire after their duration,
resolve when data returns, once even when two instances run the timer together; old history is pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.alerts.rulebook import RuleBook
from shared.alerts.rules import parse_rule
from shared.alerts.silences import SilenceWatch
from shared.alerts.store import AlertStore
from shared.ops.metrics import PipelineMetrics
from shared.readings.reading import from_epoch_ms
from shared.storage.factory import Stores
from tests.component.alert_rig import T0_MS, AlertingProcess, embedded_stores, notifications, reading, statuses


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def silence_watch(stores: Stores, store: AlertStore, clock: Clock, metrics: PipelineMetrics | None = None) -> Any:
    return SilenceWatch(store, RuleBook(store, refresh_seconds=0), stores.state, 30, metrics, clock=clock)


def test_a_silence_fires_after_its_duration_and_resolves_when_data_returns(tmp_path: Path) -> None:
    stores = embedded_stores(tmp_path)
    process = AlertingProcess.start(stores)
    process.store.put_rule(
        parse_rule("quiet", {"kind": "silence", "metric": "temperature", "sensors": "s*", "for_seconds": 60}), "t"
    )
    process.deliver([reading("s1", 20, 0), reading("s2", 20, 0), reading("other", 20, 0)])
    clock = Clock(from_epoch_ms(T0_MS + 59_000))
    metrics = PipelineMetrics()
    watch = silence_watch(stores, process.store, clock, metrics)

    assert watch.run().fired == 0
    clock.now += timedelta(seconds=1)
    report = watch.run()
    assert (report.fired, report.firing) == (2, 2)  # s1 and s2; "other" does not match the pattern
    assert metrics.totals().alerts_firing == 2
    assert watch.run().fired == 0  # still silent: nothing new

    process.deliver([reading("s1", 21, 75)])  # s1 is back
    clock.now += timedelta(seconds=30)
    report = watch.run()
    assert (report.resolved, report.firing) == (1, 1)
    assert statuses(process.store) == ["firing", "firing", "resolved"]
    (resolved,) = [a for a in process.store.history()]
    assert '"endsAt":"' in str(resolved.properties["alert"])


def test_two_timers_at_once_fire_a_silence_once(tmp_path: Path) -> None:
    stores = embedded_stores(tmp_path)
    process = AlertingProcess.start(stores)
    process.store.put_rule(parse_rule("quiet", {"kind": "silence", "metric": "temperature", "for_seconds": 60}), "t")
    process.deliver([reading("s1", 20, 0)])
    clock = Clock(from_epoch_ms(T0_MS + 120_000))

    class StaleStore(AlertStore):
        """Another instance's view: the states as they were before the first timer wrote."""

        snapshot = process.store.states()

        def states(self) -> Any:
            return self.snapshot

    first = silence_watch(stores, process.store, clock).run()
    second = silence_watch(stores, StaleStore(stores.state), clock).run()

    assert (first.fired, second.fired) == (1, 0)
    assert len(notifications(process.store)) == 1


def test_history_past_its_days_is_pruned(tmp_path: Path) -> None:
    stores = embedded_stores(tmp_path)
    process = AlertingProcess.start(stores)
    process.store.put_rule(
        parse_rule("hot", {"kind": "threshold", "metric": "temperature", "op": ">", "value": 30}), "t"
    )
    for second, value in enumerate([35, 20]):
        process.deliver([reading("s1", value, second)])
    assert len(process.store.history()) == 1
    # History ages from when the alert resolved (its reading's time); a quiet state from its last write (now).
    clock = Clock(from_epoch_ms(T0_MS) + timedelta(days=29))
    assert silence_watch(stores, process.store, clock).run().pruned == 0
    clock.now = datetime.now(UTC) + timedelta(days=31)
    assert silence_watch(stores, process.store, clock).run().pruned == 2  # the history row and the quiet state
    assert process.store.history() == [] and process.store.states() == []
