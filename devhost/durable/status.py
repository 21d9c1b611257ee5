"""An instance's status as the Durable extension's HTTP API answers it (StatusResponsePayload), including the
condensed history of `showHistory`: scheduling events folded into their results, EventType as a name."""

from __future__ import annotations

from typing import Any

from devhost.durable.episode import parse_json_or_text
from devhost.durable.history import EventType, HistoryEvent, OrchestrationStatus, event_type, status_timestamp
from devhost.durable.store import InstanceRecord


def _pascal(kind: EventType) -> str:
    return "".join(part.capitalize() for part in kind.name.split("_"))


def status_payload(
    record: InstanceRecord,
    history: list[HistoryEvent] | None = None,
    show_input: bool = True,
    show_history_output: bool = False,
) -> dict[str, Any]:
    """The JSON DurableOrchestrationStatus.from_json reads; `historyEvents` only when history is given."""
    payload: dict[str, Any] = {
        "name": record.name,
        "instanceId": record.instance_id,
        "runtimeStatus": str(record.runtime_status),
        "input": parse_json_or_text(record.input) if show_input else None,
        "customStatus": parse_json_or_text(record.custom_status),
        "output": parse_json_or_text(record.output),
        "createdTime": status_timestamp(record.created_time),
        "lastUpdatedTime": status_timestamp(record.last_updated_time),
    }
    if history is not None:
        payload["historyEvents"] = condensed_history(history, show_input, show_history_output)
    return payload


def condensed_history(history: list[HistoryEvent], show_input: bool, show_output: bool) -> list[dict[str, Any]]:
    """The extension's ConvertHistoryEvents: OrchestratorStarted/Completed and the TaskScheduled of finished
    tasks are left out; results name their function and carry ScheduledTime."""
    scheduled: dict[int, int] = {}
    folded: set[int] = set()
    converted: list[dict[str, Any]] = []
    for index, event in enumerate(history):
        kind = event_type(event)
        item: dict[str, Any] = {k: v for k, v in event.items() if k not in ("EventId", "IsPlayed")}
        item["EventType"] = _pascal(kind)
        if kind is EventType.TASK_SCHEDULED:
            scheduled[int(event["EventId"])] = index
            item.pop("Version", None)
        elif kind in (EventType.TASK_COMPLETED, EventType.TASK_FAILED):
            origin = scheduled.get(int(item.pop("TaskScheduledId")))
            if origin is not None:
                item["ScheduledTime"] = history[origin]["Timestamp"]
                item["FunctionName"] = history[origin]["Name"]
                if show_input:
                    item["Input"] = history[origin].get("Input")
                folded.add(origin)
            if kind is EventType.TASK_COMPLETED:
                result = item.pop("Result", None)
                if show_output:
                    item["Result"] = parse_json_or_text(result)
        elif kind is EventType.EXECUTION_STARTED:
            item["FunctionName"] = item.pop("Name", None)
            for name in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                item.pop(name, None)
        elif kind is EventType.EXECUTION_COMPLETED:
            item["OrchestrationStatus"] = _pascal_status(int(item["OrchestrationStatus"]))
            result = item.pop("Result", None)
            if show_output:
                item["Result"] = parse_json_or_text(result)
        elif kind is EventType.TIMER_FIRED:
            item.pop("TimerId", None)
        elif kind in (EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED):
            folded.add(index)
        if not show_input:
            item.pop("Input", None)
        converted.append(item)
    return [item for index, item in enumerate(converted) if index not in folded]


def _pascal_status(value: int) -> str:
    return "".join(part.capitalize() for part in OrchestrationStatus(value).name.split("_"))
