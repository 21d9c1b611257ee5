"""Durable Task history events, in the JSON the Durable extension hands to out-of-process orchestrators.

The extension serialises DurableTask.Core's HistoryEvent objects with Newtonsoft: `EventType` as the integer
of its enum, `EventId` (the sequence number of what the orchestration scheduled, -1 for everything else),
`IsPlayed`, a round-trip `Timestamp`, and the fields of each event type. The stored events carry no
`IsPlayed`: whether an event was played is a property of the episode that reads it, not of the event.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

HistoryEvent = dict[str, Any]

_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$")


class EventType(IntEnum):
    """DurableTask.Core's EventType numbering (the library's HistoryEventType mirrors it)."""

    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_INSTANCE_CREATED = 7
    SUB_ORCHESTRATION_INSTANCE_COMPLETED = 8
    SUB_ORCHESTRATION_INSTANCE_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_SENT = 14
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16
    GENERIC_EVENT = 17
    HISTORY_STATE = 18
    EXECUTION_SUSPENDED = 19
    EXECUTION_RESUMED = 20


class OrchestrationStatus(IntEnum):
    """DurableTask.Core's OrchestrationStatus numbering, as ExecutionCompleted records it."""

    RUNNING = 0
    COMPLETED = 1
    CONTINUED_AS_NEW = 2
    FAILED = 3
    CANCELED = 4
    TERMINATED = 5
    PENDING = 6


def format_timestamp(moment: datetime) -> str:
    """.NET's round-trip form, as Newtonsoft writes a UTC DateTime: up to 7 fraction digits, then Z."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{utc.microsecond:06d}0".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def parse_timestamp(text: str) -> datetime:
    """An ISO timestamp with any number of fraction digits (.NET writes 7, Python 6); naive means UTC."""
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp")
    whole, fraction, zone = match.groups()
    micro = (fraction or "")[:6].ljust(6, "0")
    offset = "+00:00" if zone in (None, "Z") else zone
    return datetime.fromisoformat(f"{whole}.{micro}{offset}").astimezone(UTC)


def status_timestamp(moment: datetime) -> str:
    """createdTime/lastUpdatedTime as the HTTP API writes them: `ToString("s") + "Z"`, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(kind: EventType, moment: datetime, event_id: int = -1, **fields: Any) -> HistoryEvent:
    return {"EventType": int(kind), "EventId": event_id, "Timestamp": format_timestamp(moment), **fields}


def orchestrator_started(moment: datetime) -> HistoryEvent:
    return _event(EventType.ORCHESTRATOR_STARTED, moment)


def orchestrator_completed(moment: datetime) -> HistoryEvent:
    return _event(EventType.ORCHESTRATOR_COMPLETED, moment)


def execution_started(
    moment: datetime, instance_id: str, execution_id: str, name: str, raw_input: str | None
) -> HistoryEvent:
    return _event(
        EventType.EXECUTION_STARTED,
        moment,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=None,
        Name=name,
        Version="",
        Input=raw_input,
        Tags=None,
    )


def execution_completed(moment: datetime, status: OrchestrationStatus, result: str | None) -> HistoryEvent:
    return _event(
        EventType.EXECUTION_COMPLETED, moment, OrchestrationStatus=int(status), Result=result, FailureDetails=None
    )


def execution_terminated(moment: datetime, reason: str | None) -> HistoryEvent:
    return _event(EventType.EXECUTION_TERMINATED, moment, Input=reason)


def task_scheduled(moment: datetime, event_id: int, name: str, raw_input: str | None) -> HistoryEvent:
    return _event(EventType.TASK_SCHEDULED, moment, event_id, Name=name, Version="", Input=raw_input)


def task_completed(moment: datetime, scheduled_id: int, result: str | None) -> HistoryEvent:
    return _event(EventType.TASK_COMPLETED, moment, TaskScheduledId=scheduled_id, Result=result)


def task_failed(moment: datetime, scheduled_id: int, reason: str, details: str) -> HistoryEvent:
    return _event(EventType.TASK_FAILED, moment, TaskScheduledId=scheduled_id, Reason=reason, Details=details)


def timer_created(moment: datetime, event_id: int, fire_at: datetime) -> HistoryEvent:
    return _event(EventType.TIMER_CREATED, moment, event_id, FireAt=format_timestamp(fire_at))


def timer_fired(moment: datetime, timer_id: int, fire_at: datetime) -> HistoryEvent:
    return _event(EventType.TIMER_FIRED, moment, TimerId=timer_id, FireAt=format_timestamp(fire_at))


def event_raised(moment: datetime, name: str, raw_input: str | None) -> HistoryEvent:
    return _event(EventType.EVENT_RAISED, moment, Name=name, Input=raw_input)


def event_type(event: HistoryEvent) -> EventType:
    return EventType(int(event["EventType"]))


def completed_task_ids(events: list[HistoryEvent]) -> set[int]:
    """Sequence numbers of the activities and timers that already have their result."""
    done: set[int] = set()
    for event in events:
        kind = event_type(event)
        if kind in (EventType.TASK_COMPLETED, EventType.TASK_FAILED):
            done.add(int(event["TaskScheduledId"]))
        elif kind is EventType.TIMER_FIRED:
            done.add(int(event["TimerId"]))
    return done
