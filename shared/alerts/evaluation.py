"""The alert state machine of one (rule, series), with no I/O.

inactive -> pending -> firing -> resolved (and back to pending). A threshold is judged on the series' summaries in
the order their windows were written (`order`: the window's running count of readings, which grows with every
write), so a summary evaluated twice, by a redelivery or after a crash, changes nothing. Durations are measured in
the readings' own time (a summary's window end), never the clock, so a replay takes the same path. A silence is
judged on the time of the series' newest reading against the clock, by the silence timer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from shared.alerts.rules import SILENCE, AlertRule

INACTIVE = "inactive"
PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"
STATES = (INACTIVE, PENDING, FIRING, RESOLVED)


@dataclass(frozen=True, slots=True)
class AlertState:
    state: str = INACTIVE
    seen: int = 0  # the order of the newest summary judged
    since_ms: int | None = None  # pending: the first breaching summary's time; silence: the last reading's
    count: int = 0  # consecutive breaching summaries while pending
    started_ms: int | None = None  # when the current or last episode started (Alertmanager's startsAt)
    ended_ms: int | None = None  # when the last episode resolved (endsAt)
    value: float | None = None  # what was observed at the last transition

    def to_properties(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "seen": self.seen,
            "since_ms": self.since_ms,
            "count": self.count,
            "started_ms": self.started_ms,
            "ended_ms": self.ended_ms,
            "value": self.value,
        }

    @classmethod
    def from_properties(cls, properties: dict[str, Any]) -> AlertState:
        state = properties.get("state")
        return cls(
            state=state if state in STATES else INACTIVE,
            seen=_int(properties.get("seen")) or 0,
            since_ms=_int(properties.get("since_ms")),
            count=_int(properties.get("count")) or 0,
            started_ms=_int(properties.get("started_ms")),
            ended_ms=_int(properties.get("ended_ms")),
            value=_float(properties.get("value")),
        )


def _int(raw: object) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


def _float(raw: object) -> float | None:
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None


@dataclass(frozen=True, slots=True)
class Observation:
    """One summary of a series, as a threshold sees it."""

    order: int
    time_ms: int  # the summary's window end: its newest reading's time
    min: float
    max: float
    avg: float

    def field(self, name: str) -> float:
        return self.min if name == "min" else self.max if name == "max" else self.avg


@dataclass(frozen=True, slots=True)
class Step:
    """What judging one observation did: the state to keep (None: unchanged, nothing to write) and whether it
    is a transition to notify (FIRING or RESOLVED)."""

    state: AlertState | None
    notify: str | None = None


UNCHANGED = Step(None)


def judge_threshold(rule: AlertRule, current: AlertState, seen: Observation) -> Step:
    """The next state of a threshold after one more summary of its series."""
    if seen.order <= current.seen:
        return UNCHANGED  # judged already: a redelivery, or a repair of a summary that was written before
    value = seen.field(rule.field)
    if current.state == FIRING:
        if rule.cleared(value):
            return Step(replace(current, state=RESOLVED, seen=seen.order, ended_ms=seen.time_ms, value=value), RESOLVED)
        return UNCHANGED  # still firing: nothing to write, and judging it again changes nothing either
    if not rule.breached(value):
        if current.state == PENDING:
            return Step(replace(current, state=INACTIVE, seen=seen.order, since_ms=None, count=0, value=value))
        return UNCHANGED
    pending = current.state == PENDING
    since = current.since_ms if pending and current.since_ms is not None else seen.time_ms
    count = current.count + 1 if pending else 1
    if rule.for_seconds is not None:
        due = seen.time_ms - since >= rule.for_seconds * 1000
    else:
        due = count >= (rule.for_summaries or 1)
    if due:
        fired = AlertState(FIRING, seen.order, since, count, started_ms=since, ended_ms=None, value=value)
        return Step(fired, FIRING)
    return Step(replace(current, state=PENDING, seen=seen.order, since_ms=since, count=count, value=value))


def judge_silence(rule: AlertRule, current: AlertState, newest_ms: int, returned_ms: int | None, now_ms: int) -> Step:
    """The next state of a silence, given the time of the series' newest reading and, once it has fired, the time
    of the first reading after the one it fell silent at (None: none yet)."""
    assert rule.kind == SILENCE and rule.for_seconds is not None
    limit_ms = rule.for_seconds * 1000
    if current.state == FIRING:
        if current.since_ms is not None and newest_ms > current.since_ms:
            ended = returned_ms if returned_ms is not None else newest_ms
            return Step(replace(current, state=RESOLVED, ended_ms=ended, value=None), RESOLVED)
        return UNCHANGED
    if now_ms - newest_ms >= limit_ms:
        if current.state == RESOLVED and current.since_ms == newest_ms:
            return UNCHANGED  # this silence was already reported and has ended (a stale read of the series)
        started = newest_ms + limit_ms
        return Step(AlertState(FIRING, current.seen, newest_ms, 0, started_ms=started, ended_ms=None), FIRING)
    return UNCHANGED
