"""What the Durable extension does with an orchestrator's actions: replay them against the history.

The Python library returns, every episode, the whole list of actions the orchestrator has yielded so far
(replay schema V2/V3: one flat list, task_all/task_any as compound actions). The extension does not trust
the list's length to say what is new: it walks the list as its out-of-process shim does, calling the
DurableTask.Core API for each action and awaiting it before the next, while DurableTask.Core replays the
history event by event. Every activity and timer takes the next sequence number when it is scheduled; a
`TaskScheduled` or `TimerCreated` in the history must meet the same kind (and activity name) under the
same number, or the orchestration is non-deterministic. Whatever was scheduled and is not in the history
is new work. Retries are DurableTask.Core's: on a failure a timer (its own sequence number), then a fresh
attempt (another number), and after the last attempt one more timer before the failure surfaces, which is
exactly what the library's RetryAbleTask expects to find in the history.

This module is that replay, with no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devhost.durable.history import EventType, HistoryEvent, event_type, parse_timestamp

# The out-of-process shim's AsyncActionType numbering.
CALL_ACTIVITY = 0
CALL_ACTIVITY_WITH_RETRY = 1
CALL_SUB_ORCHESTRATOR = 2
CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
CONTINUE_AS_NEW = 4
CREATE_TIMER = 5
WAIT_FOR_EXTERNAL_EVENT = 6
CALL_ENTITY = 7
CALL_HTTP = 8
SIGNAL_ENTITY = 9
SCHEDULED_SIGNAL_ENTITY = 10
WHEN_ANY = 11
WHEN_ALL = 12

_UNSUPPORTED = {
    CALL_SUB_ORCHESTRATOR: "sub-orchestrations",
    CALL_SUB_ORCHESTRATOR_WITH_RETRY: "sub-orchestrations",
    CALL_ENTITY: "entities",
    SIGNAL_ENTITY: "entities",
    SCHEDULED_SIGNAL_ENTITY: "entities",
    CALL_HTTP: "durable HTTP calls",
}

NON_DETERMINISM = "Non-Deterministic workflow detected: "
_CHANGED = " Was a change made to the orchestrator code after this instance had already started running?"


class ReplayFailure(Exception):
    """The orchestration cannot go on; the message is what its status shows."""


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """The retryOptions of a CallActivityWithRetry action, as the extension's converter reads them."""

    first_interval: timedelta
    max_attempts: int
    backoff_coefficient: float = 1.0
    max_interval: timedelta | None = None

    @classmethod
    def from_action(cls, options: Mapping[str, Any]) -> RetrySchedule:
        cap = options.get("maxRetryIntervalInMilliseconds")
        return cls(
            first_interval=timedelta(milliseconds=float(options["firstRetryIntervalInMilliseconds"])),
            max_attempts=int(options["maxNumberOfAttempts"]),
            backoff_coefficient=float(options.get("backoffCoefficient") or 1.0),
            max_interval=timedelta(milliseconds=float(cap)) if cap else None,
        )

    def delay_after(self, retry_count: int) -> timedelta:
        """DurableTask.Core's RetryInterceptor: first interval × coefficient^retryCount, capped."""
        delay = self.first_interval * (self.backoff_coefficient**retry_count)
        return min(delay, self.max_interval) if self.max_interval is not None else delay


@dataclass(frozen=True, slots=True)
class ActivityWork:
    event_id: int
    name: str
    raw_input: str | None


@dataclass(frozen=True, slots=True)
class TimerWork:
    event_id: int
    fire_at: datetime
    cancelled: bool


@dataclass
class ReplayOutcome:
    """What the episode must record and start, in sequence-number order."""

    activities: list[ActivityWork] = field(default_factory=list)
    timers: list[TimerWork] = field(default_factory=list)
    cancelled_timer_ids: set[int] = field(default_factory=set)


class _Task:
    """A DurableTask.Core task: settles once, then runs its continuations synchronously, as DTFx does."""

    def __init__(self) -> None:
        self.done = False
        self.succeeded = False
        self._continuations: list[Callable[[_Task], None]] = []

    def settle(self, succeeded: bool) -> None:
        if self.done:
            return
        self.done, self.succeeded = True, succeeded
        continuations, self._continuations = self._continuations, []
        for continuation in continuations:
            continuation(self)

    def then(self, continuation: Callable[[_Task], None]) -> None:
        if self.done:
            continuation(self)
        else:
            self._continuations.append(continuation)


class _WhenAll(_Task):
    """.NET Task.WhenAll: settles when every child has, failed if any failed."""

    def __init__(self, children: Sequence[_Task]) -> None:
        super().__init__()
        self._pending = len(children)
        self._failed = False
        if not children:
            self.settle(True)
        for child in children:
            child.then(self._child_done)

    def _child_done(self, child: _Task) -> None:
        self._failed = self._failed or not child.succeeded
        self._pending -= 1
        if self._pending == 0:
            self.settle(not self._failed)


class _WhenAny(_Task):
    """.NET Task.WhenAny: settles (successfully) with the first child that does."""

    def __init__(self, children: Sequence[_Task]) -> None:
        super().__init__()
        for child in children:
            child.then(lambda _: self.settle(True))


@dataclass
class _Proposed:
    kind: str  # "activity" or "timer"
    name: str = ""
    raw_input: str | None = None
    fire_at: datetime | None = None
    cancelled: bool = False


class Replay:
    """One episode's replay; `run()` returns the new work or raises ReplayFailure."""

    def __init__(
        self,
        history: Sequence[HistoryEvent],
        actions: Sequence[Mapping[str, Any]],
        activity_exists: Callable[[str], bool],
    ) -> None:
        self._history = history
        self._actions = actions
        self._activity_exists = activity_exists
        self._next_id = 0
        self._cursor = 0
        self._now: datetime | None = None
        self._open: dict[int, _Task] = {}
        self._proposed: dict[int, _Proposed] = {}
        self._waiting: dict[str, deque[_Task]] = {}
        self._buffered: dict[str, int] = {}
        self._cancelled_ids: set[int] = set()

    def run(self) -> ReplayOutcome:
        for event in self._history:
            self._process(event)
        outcome = ReplayOutcome()
        for event_id in sorted(self._proposed):
            proposed = self._proposed[event_id]
            if proposed.kind == "activity":
                outcome.activities.append(ActivityWork(event_id, proposed.name, proposed.raw_input))
            elif proposed.fire_at is not None:
                outcome.timers.append(TimerWork(event_id, proposed.fire_at, proposed.cancelled))
        outcome.cancelled_timer_ids = self._cancelled_ids
        return outcome

    # -- history ---------------------------------------------------------------------------------------

    def _process(self, event: HistoryEvent) -> None:
        kind = event_type(event)
        if kind is EventType.ORCHESTRATOR_STARTED:
            self._now = parse_timestamp(str(event["Timestamp"]))
        elif kind is EventType.EXECUTION_STARTED:
            self._advance()
        elif kind is EventType.TASK_SCHEDULED:
            self._match_scheduled(event)
        elif kind is EventType.TIMER_CREATED:
            self._match_timer(event)
        elif kind in (EventType.TASK_COMPLETED, EventType.TASK_FAILED):
            task = self._open.pop(int(event["TaskScheduledId"]), None)
            if task is not None:  # a duplicate completion is ignored, as DTFx logs and ignores it
                task.settle(kind is EventType.TASK_COMPLETED)
        elif kind is EventType.TIMER_FIRED:
            task = self._open.pop(int(event["TimerId"]), None)
            if task is not None:
                task.settle(True)
        elif kind is EventType.EVENT_RAISED:
            name = str(event["Name"]).lower()
            waiters = self._waiting.get(name)
            if waiters:
                waiters.popleft().settle(True)
            else:
                self._buffered[name] = self._buffered.get(name, 0) + 1

    def _match_scheduled(self, event: HistoryEvent) -> None:
        event_id, name = int(event["EventId"]), str(event["Name"])
        proposed = self._proposed.get(event_id)
        if proposed is None:
            raise ReplayFailure(
                f"{NON_DETERMINISM}A previous execution of this orchestration scheduled an activity task with "
                f"sequence ID {event_id} and name '{name}' (version ''), but the current replay execution hasn't "
                f"(yet?) scheduled this task.{_CHANGED}"
            )
        if proposed.kind != "activity":
            raise ReplayFailure(
                f"{NON_DETERMINISM}A previous execution of this orchestration scheduled an activity task with "
                f"sequence number {event_id} named '{name}', but the current orchestration replay instead produced "
                f"a CreateTimerOrchestratorAction action with this sequence number.{_CHANGED}"
            )
        if proposed.name.lower() != name.lower():
            raise ReplayFailure(
                f"{NON_DETERMINISM}A previous execution of this orchestration scheduled an activity task with "
                f"sequence number {event_id} named '{name}', but the current orchestration replay instead scheduled "
                f"an activity task named '{proposed.name}' with this sequence number.{_CHANGED}"
            )
        del self._proposed[event_id]

    def _match_timer(self, event: HistoryEvent) -> None:
        event_id = int(event["EventId"])
        proposed = self._proposed.get(event_id)
        if proposed is None:
            raise ReplayFailure(
                f"{NON_DETERMINISM}A previous execution of this orchestration scheduled a timer task with sequence "
                f"number {event_id} but the current replay execution hasn't (yet?) scheduled this task.{_CHANGED}"
            )
        if proposed.kind != "timer":
            raise ReplayFailure(
                f"{NON_DETERMINISM}A previous execution of this orchestration scheduled a timer task with sequence "
                f"number {event_id} named but the current orchestration replay instead produced a "
                f"ScheduleTaskOrchestratorAction action with this sequence number.{_CHANGED}"
            )
        if proposed.cancelled:
            self._cancelled_ids.add(event_id)
        del self._proposed[event_id]

    # -- the shim: one action at a time, each awaited before the next ---------------------------------

    def _advance(self, _: _Task | None = None) -> None:
        while self._cursor < len(self._actions):
            action = self._actions[self._cursor]
            self._cursor += 1
            task = self._invoke(action)
            if not task.done:
                task.then(self._advance)
                return

    def _invoke(self, action: Mapping[str, Any]) -> _Task:
        kind = int(action["actionType"])
        if kind == CALL_ACTIVITY:
            return self._schedule_activity(str(action["functionName"]), action.get("input"))
        if kind == CALL_ACTIVITY_WITH_RETRY:
            return self._retry(
                str(action["functionName"]), action.get("input"), RetrySchedule.from_action(action["retryOptions"])
            )
        if kind == CREATE_TIMER:
            return self._create_timer(parse_timestamp(str(action["fireAt"])), bool(action.get("isCanceled")))
        if kind == WAIT_FOR_EXTERNAL_EVENT:
            return self._wait_for_event(str(action["externalEventName"]))
        if kind == WHEN_ALL:
            return _WhenAll([self._invoke(child) for child in action.get("compoundActions") or []])
        if kind == WHEN_ANY:
            return _WhenAny([self._invoke(child) for child in action.get("compoundActions") or []])
        if kind == CONTINUE_AS_NEW:
            done = _Task()
            done.settle(True)
            return done
        feature = _UNSUPPORTED.get(kind, f"action type {kind}")
        raise ReplayFailure(f"devhost does not run {feature} (action type {kind}) yet")

    def _schedule_activity(self, name: str, raw_input: Any) -> _Task:
        if not self._activity_exists(name):
            raise ReplayFailure(
                f"The function '{name}' doesn't exist, is disabled, or is not an activity function. "
                "Additional info: the app has no activity function by that name."
            )
        event_id = self._take_id()
        self._proposed[event_id] = _Proposed("activity", name=name, raw_input=_text_or_none(raw_input))
        task = _Task()
        self._open[event_id] = task
        return task

    def _create_timer(self, fire_at: datetime, cancelled: bool = False) -> _Task:
        event_id = self._take_id()
        self._proposed[event_id] = _Proposed("timer", fire_at=fire_at, cancelled=cancelled)
        task = _Task()
        if cancelled:
            task.settle(False)  # a cancelled timer's task ends at once; its TimerFired will be a duplicate
        else:
            self._open[event_id] = task
        return task

    def _retry(self, name: str, raw_input: Any, schedule: RetrySchedule) -> _Task:
        outer = _Task()
        retry_count = 0

        def attempt() -> None:
            self._schedule_activity(name, raw_input).then(attempt_done)

        def attempt_done(child: _Task) -> None:
            if child.succeeded:
                outer.settle(True)
                return
            now = self._now or parse_timestamp(str(self._history[0]["Timestamp"]))
            self._create_timer(now + schedule.delay_after(retry_count)).then(timer_fired)

        def timer_fired(_: _Task) -> None:
            nonlocal retry_count
            retry_count += 1
            if retry_count < schedule.max_attempts:
                attempt()
            else:
                outer.settle(False)

        attempt()
        return outer

    def _wait_for_event(self, name: str) -> _Task:
        key = name.lower()
        task = _Task()
        if self._buffered.get(key, 0) > 0:
            self._buffered[key] -= 1
            task.settle(True)
        else:
            self._waiting.setdefault(key, deque()).append(task)
        return task

    def _take_id(self) -> int:
        event_id = self._next_id
        self._next_id += 1
        return event_id


def _text_or_none(value: Any) -> str | None:
    """Action inputs are JSON text already (the library df_dumps them); keep them as they are."""
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def replay(
    history: Sequence[HistoryEvent], actions: Sequence[Mapping[str, Any]], activity_exists: Callable[[str], bool]
) -> ReplayOutcome:
    """Replay `actions` (the V2/V3 flat list) against `history`; raises ReplayFailure."""
    return Replay(history, actions, activity_exists).run()
