"""The alert state machine: thresholds with duration and hysteresis, silences, and judging a summary twice."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.alerts.evaluation import (
    FIRING,
    INACTIVE,
    PENDING,
    RESOLVED,
    AlertState,
    Observation,
    judge_silence,
    judge_threshold,
)
from shared.alerts.rules import AlertRule, parse_rule

HOT = parse_rule(
    "hot", {"kind": "threshold", "metric": "temperature", "op": ">", "value": 30, "clear": 28, "for_summaries": 3}
)
HOT_FOR_A_MINUTE = parse_rule(
    "hot-1m", {"kind": "threshold", "metric": "temperature", "op": ">", "value": 30, "clear": 28, "for_seconds": 60}
)
COLD_MIN = parse_rule("cold", {"kind": "threshold", "metric": "temperature", "field": "min", "op": "<=", "value": 5})
SILENT = parse_rule("silent", {"kind": "silence", "metric": "temperature", "for_seconds": 600})


def seen(order: int, value: float, time_ms: int | None = None) -> Observation:
    return Observation(order, order * 10_000 if time_ms is None else time_ms, value, value, value)


def run(rule: AlertRule, observations: list[Observation]) -> tuple[AlertState, list[tuple[str, int]]]:
    """Judge observations one after another; the transitions as (to, order of the summary that made them)."""
    state = AlertState()
    transitions: list[tuple[str, int]] = []
    for observation in observations:
        step = judge_threshold(rule, state, observation)
        if step.state is not None:
            state = step.state
        if step.notify is not None:
            transitions.append((step.notify, observation.order))
    return state, transitions


def test_a_threshold_fires_after_its_consecutive_summaries_and_resolves_below_its_clear_level() -> None:
    values = [25, 31, 32, 33, 34, 29, 29.5, 27.9, 31]
    state, transitions = run(HOT, [seen(n, v) for n, v in enumerate(values, start=1)])

    # Fires on the third summary above 30; 29 and 29.5 are in the hysteresis band, 27.9 clears it.
    assert transitions == [(FIRING, 4), (RESOLVED, 8)]
    assert state.state == PENDING and state.count == 1  # 31 again: pending, not firing
    assert state.started_ms == 20_000  # the episode started when it first breached (Prometheus' activeAt)


def test_a_breach_that_does_not_last_goes_back_to_inactive_without_a_notification() -> None:
    state, transitions = run(HOT, [seen(1, 31), seen(2, 32), seen(3, 20), seen(4, 31)])

    assert transitions == []
    assert state.state == PENDING and state.count == 1


def test_a_duration_is_measured_in_the_readings_time_not_in_summaries() -> None:
    observations = [seen(1, 31, 0), seen(2, 31, 30_000), seen(3, 31, 59_999), seen(4, 31, 60_000)]
    _, transitions = run(HOT_FOR_A_MINUTE, observations)

    assert transitions == [(FIRING, 4)]


def test_min_and_at_most_compare_the_named_field() -> None:
    state = AlertState()
    step = judge_threshold(COLD_MIN, state, Observation(1, 0, 5.0, 20.0, 12.0))
    assert step.notify == FIRING  # min 5 <= 5, whatever the average
    fired = step.state
    assert fired is not None
    # Clear level defaults to the value: it resolves once min > 5.
    assert judge_threshold(COLD_MIN, fired, Observation(2, 1, 5.0, 9.0, 7.0)).notify is None
    assert judge_threshold(COLD_MIN, fired, Observation(2, 1, 5.1, 9.0, 7.0)).notify == RESOLVED


def test_a_summary_judged_before_changes_nothing() -> None:
    fired = AlertState(FIRING, seen=7, since_ms=0, count=3, started_ms=0)

    assert judge_threshold(HOT, fired, seen(7, 10)).state is None
    assert judge_threshold(HOT, fired, seen(6, 10)).state is None
    assert judge_threshold(HOT, fired, seen(8, 10)).notify == RESOLVED


def test_steady_state_writes_nothing() -> None:
    # Quiet and below: nothing to write. Firing and still above: nothing to write either.
    assert judge_threshold(HOT, AlertState(), seen(1, 20)).state is None
    firing = AlertState(FIRING, seen=3, since_ms=0, count=3, started_ms=0)
    assert judge_threshold(HOT, firing, seen(4, 35)).state is None


def test_a_silence_fires_once_its_duration_has_passed_and_resolves_when_data_returns() -> None:
    newest = 1_000_000
    quiet = judge_silence(SILENT, AlertState(), newest, None, newest + 599_999)
    assert quiet.state is None

    fired = judge_silence(SILENT, AlertState(), newest, None, newest + 600_000)
    assert fired.notify == FIRING and fired.state is not None
    assert fired.state.started_ms == newest + 600_000 and fired.state.since_ms == newest
    # Still silent on the next minutes: nothing new.
    assert judge_silence(SILENT, fired.state, newest, None, newest + 900_000).state is None

    back = judge_silence(SILENT, fired.state, newest + 700_000, newest + 650_000, newest + 700_500)
    assert back.notify == RESOLVED and back.state is not None
    assert back.state.ended_ms == newest + 650_000  # the first reading after the silence
    # A stale read of the series (its old newest reading) does not fire the same silence again.
    assert judge_silence(SILENT, back.state, newest, None, newest + 2_000_000).state is None


_VALUES = st.lists(st.sampled_from([20.0, 27.0, 29.0, 30.0, 31.0, 35.0]), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(_VALUES, st.data())
def test_redeliveries_anywhere_give_the_same_transitions(values: list[float], data: st.DataObject) -> None:
    """However often, and in whatever order, summaries already judged come back, the transitions are those of
    judging each summary once in window order."""
    stream = [seen(n, v) for n, v in enumerate(values, start=1)]
    delivered: list[Observation] = []
    for position, observation in enumerate(stream):
        delivered.append(observation)
        earlier = stream[: position + 1]
        again = data.draw(st.lists(st.sampled_from(earlier), max_size=3))
        delivered.extend(again)
    for rule in (HOT, HOT_FOR_A_MINUTE, COLD_MIN):
        assert run(rule, delivered) == run(rule, stream)


@settings(max_examples=200, deadline=None)
@given(_VALUES)
def test_firing_and_resolved_alternate_and_never_flap_inside_the_band(values: list[float]) -> None:
    _, transitions = run(HOT, [seen(n, v) for n, v in enumerate(values, start=1)])

    kinds = [kind for kind, _ in transitions]
    assert kinds == [FIRING, RESOLVED] * (len(kinds) // 2) + [FIRING] * (len(kinds) % 2)
    for kind, order in transitions:
        value = values[order - 1]
        assert value > 30 if kind == FIRING else value < 28  # a value between 28 and 30 never changes it


def test_states_round_trip_through_their_stored_properties() -> None:
    state = AlertState(FIRING, seen=9, since_ms=1, count=3, started_ms=1, ended_ms=None, value=31.5)
    assert AlertState.from_properties(state.to_properties()) == state
    assert AlertState.from_properties({"state": "bogus"}) == AlertState(INACTIVE)
    assert replace(state, value=None).to_properties()["value"] is None
