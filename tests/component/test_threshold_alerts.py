"""Threshold alerts judged inside the summariser's batch, on a real embedded store: each transition is written
once, with its notification, through redeliveries, crashes and two instances sharing a series."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.alerts.evaluation import FIRING, PENDING
from shared.alerts.store import AlertStore
from shared.storage.ports import EntityWrite, StateStore, StorageError
from tests.component.alert_rig import (
    AlertingProcess,
    close_opened,
    embedded_stores,
    history_count,
    notifications,
    put_threshold,
    reading,
    statuses,
)


def test_one_firing_and_one_resolved_notification_and_no_flapping_in_the_band(tmp_path: Path) -> None:
    stores = embedded_stores(tmp_path)
    process = AlertingProcess.start(stores)
    put_threshold(process.store)
    values = [25, 35, 29, 31, 29.5, 27]  # 29 to 30 is the band: still firing, no notification
    batches = [[reading("s1", value, second)] for second, value in enumerate(values)]
    for batch in batches:
        process.deliver(batch)

    assert statuses(process.store) == ["firing", "resolved"]
    assert history_count(process.store) == 1
    first = notifications(process.store)
    for batch in batches:  # the whole stream again, as after a lost checkpoint
        process.deliver(batch)
    assert notifications(process.store) == first


def test_a_steady_stream_reads_no_alert_state(tmp_path: Path) -> None:
    stores = embedded_stores(tmp_path)
    reads: list[str] = []

    class CountingStore(AlertStore):
        def series_states(self, sensor_id: str, metric: str) -> Any:
            reads.append(sensor_id)
            return super().series_states(sensor_id, metric)

        def all_series_states(self) -> Any:
            reads.append("every series")
            return super().all_series_states()

    process = AlertingProcess.start(stores, store=CountingStore(stores.state))
    put_threshold(process.store)
    for second in range(50):
        process.deliver([reading("s1", 20 + second % 3, second), reading("s2", 21, second)])

    assert reads == ["every series"]  # once, when the first series was met


class FirstCommitFails(AlertStore):
    """An alert store whose first transition write fails (nothing of it is written)."""

    def __init__(self, state: StateStore, why: str) -> None:
        super().__init__(state)
        self._why: str | None = why

    def commit(self, writes: Sequence[EntityWrite]) -> Any:
        if self._why is not None:
            why, self._why = self._why, None
            raise StorageError(why)
        return super().commit(writes)


def test_a_crash_between_the_summary_and_the_alert_write_is_judged_again_on_redelivery(tmp_path: Path) -> None:
    stores = embedded_stores(tmp_path)

    crashing = AlertingProcess.start(stores, store=FirstCommitFails(stores.state, "the host died first"))
    put_threshold(crashing.store)
    crashing.deliver([reading("s1", 20, 0)])
    with pytest.raises(StorageError):
        crashing.deliver([reading("s1", 35, 1)])  # window and summary written, the alert not
    assert notifications(crashing.store) == []

    restarted = AlertingProcess.start(stores)  # the batch is redelivered to a new process
    restarted.deliver([reading("s1", 35, 1)])
    assert statuses(restarted.store) == ["firing"]

    crashing.deliver([reading("s1", 35, 1)])  # and the crashed one's own retry changes nothing more
    assert statuses(restarted.store) == ["firing"]


def test_the_same_process_retrying_after_a_failed_alert_write_judges_again(tmp_path: Path) -> None:
    stores = embedded_stores(tmp_path)

    process = AlertingProcess.start(stores, store=FirstCommitFails(stores.state, "503 from Table Storage"))
    put_threshold(process.store)
    with pytest.raises(StorageError):
        process.deliver([reading("s1", 35, 0)])
    process.deliver([reading("s1", 35, 0)])  # the trigger's retry of the same batch

    assert statuses(process.store) == ["firing"]


def test_two_instances_sharing_a_series_write_each_transition_once(tmp_path: Path) -> None:
    stores = embedded_stores(tmp_path)
    a, b = AlertingProcess.start(stores), AlertingProcess.start(stores)
    put_threshold(a.store, for_summaries=2)
    # The series moves between instances (a lease rebalanced), and back, while its alert goes pending,
    # fires and resolves; each instance's cache is stale every other batch.
    values = [31, 32, 33, 20, 31, 32]
    for second, value in enumerate(values):
        (a if second % 2 == 0 else b).deliver([reading("s1", value, second)])

    assert statuses(a.store) == ["firing", "firing", "resolved"]
    assert len(set(notifications(a.store))) == 3


def test_pending_and_firing_states_are_kept_per_rule_and_series(tmp_path: Path) -> None:
    stores = embedded_stores(tmp_path)
    process = AlertingProcess.start(stores)
    put_threshold(process.store, "hot", for_summaries=2)
    put_threshold(process.store, "very-hot", value=40, clear=38)
    process.deliver([reading("s1", 35, 0), reading("s2", 45, 0)])

    states = {(e.properties["rule"], e.properties["sensor_id"]): e.properties["state"] for e in process.store.states()}
    assert states == {("hot", "s1"): PENDING, ("hot", "s2"): PENDING, ("very-hot", "s2"): FIRING}


_BATCHES = st.lists(
    st.lists(st.sampled_from([20.0, 27.0, 29.0, 31.0, 35.0]), min_size=1, max_size=4), min_size=1, max_size=12
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_BATCHES, st.data())
def test_redeliveries_and_restarts_in_any_order_give_the_same_notifications(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[float]], data: st.DataObject
) -> None:
    """A stream of batches delivered once, and the same stream with earlier batches delivered again in any order
    and the process restarted anywhere, write the very same notifications."""
    second = 0
    stream: list[list[dict[str, Any]]] = []
    for values in batches:
        stream.append([reading("s1", value, second + n) for n, value in enumerate(values)])
        second += len(values)

    clean = AlertingProcess.start(embedded_stores(tmp_path_factory.mktemp("clean")), window_size=3)
    put_threshold(clean.store, for_summaries=2)
    for batch in stream:
        clean.deliver(batch)

    stores = embedded_stores(tmp_path_factory.mktemp("messy"))
    messy = AlertingProcess.start(stores, window_size=3)
    put_threshold(messy.store, for_summaries=2)
    for position, batch in enumerate(stream):
        messy.deliver(batch)
        for again in data.draw(st.lists(st.sampled_from(stream[: position + 1]), max_size=2)):
            messy.deliver(again)
        if data.draw(st.booleans()):
            messy = AlertingProcess.start(stores, window_size=3)

    assert notifications(messy.store) == notifications(clean.store)
    close_opened()  # every example opens two databases


def test_replacing_a_rule_with_another_severity_resolves_what_it_fired_first(tmp_path: Path) -> None:
    from shared.alerts.admin import RuleAdmin
    from shared.alerts.rulebook import RuleBook
    from shared.alerts.rules import parse_rule

    stores = embedded_stores(tmp_path)
    process = AlertingProcess.start(stores)
    admin = RuleAdmin(process.store, RuleBook(process.store))
    body = {"kind": "threshold", "metric": "temperature", "op": ">", "value": 30}
    admin.put(parse_rule("hot", body))
    process.deliver([reading("s1", 35, 0)])
    assert statuses(process.store) == ["firing"]

    admin.put(parse_rule("hot", {**body, "value": 31}))  # a new level only: the alert goes on
    assert statuses(process.store) == ["firing"]
    admin.put(parse_rule("hot", {**body, "severity": "critical"}))  # new labels: the old alert resolves first
    assert statuses(process.store) == ["firing", "resolved"]
    process.deliver([reading("s1", 35, 1)])  # and the next summary fires it anew, as critical
    keys = notifications(process.store)
    assert len(keys) == 3 and len({key.split("-")[0] for key in keys}) == 2
