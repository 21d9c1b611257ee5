"""One orchestrator episode's messages: the context JSON going in, the OrchestratorState coming back.

Both follow the Durable extension's out-of-process protocol (its OrchestrationTriggerAttributeBindingProvider
and OutOfProcOrchestrationShim): the context carries the whole history, past events marked IsPlayed, and the
schema versions the extension supports (V2, and V3 in `upperSchemaVersionNew`); the answer is the library's
OrchestratorState. An orchestrator that raised returns nothing: its state travels in the exception message
after `$OutOfProcData$:`, which is where the extension reads it.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost.durable.history import HistoryEvent
from devhost.durable.replay import CONTINUE_AS_NEW

# The extension's SchemaVersion enum: V2 = 1, V3 = 2 (sent as upperSchemaVersionNew for newer SDKs).
UPPER_SCHEMA_VERSION = 1
UPPER_SCHEMA_VERSION_NEW = 2
# Azure Storage's limits, which the extension passes so the SDK splits longer timers (schema V3).
MAXIMUM_SHORT_TIMER_DURATION = "6.00:00:00"
LONG_RUNNING_TIMER_INTERVAL_DURATION = "3.00:00:00"
DEFAULT_HTTP_ASYNC_SLEEP_MS = 30000
OUT_OF_PROC_DATA = "$OutOfProcData$:"
_DEVHOST = str(Path(__file__).resolve().parent.parent)


def parse_json_or_text(text: str | None) -> Any:
    """The extension's ParseToJToken: JSON when it parses, the raw string otherwise (terminate reasons)."""
    if text is None:
        return None
    stripped = text.strip()
    if not stripped:
        return ""
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        return text


def orchestration_context(
    instance_id: str, past: Sequence[HistoryEvent], new: Sequence[HistoryEvent], raw_input: str | None
) -> str:
    """The orchestrationTrigger value: `input` is the parsed start payload (the extension's JToken)."""
    history = [{**event, "IsPlayed": True} for event in past] + [{**event, "IsPlayed": False} for event in new]
    return json.dumps(
        {
            "history": history,
            "input": parse_json_or_text(raw_input),
            "instanceId": instance_id,
            "isReplaying": bool(past),
            "parentInstanceId": None,
            "upperSchemaVersion": UPPER_SCHEMA_VERSION,
            "upperSchemaVersionNew": UPPER_SCHEMA_VERSION_NEW,
            "longRunningTimerIntervalDuration": LONG_RUNNING_TIMER_INTERVAL_DURATION,
            "maximumShortTimerDuration": MAXIMUM_SHORT_TIMER_DURATION,
            "defaultHttpAsyncRequestSleepTimeMillseconds": DEFAULT_HTTP_ASYNC_SLEEP_MS,
        }
    )


@dataclass(frozen=True)
class OrchestratorAnswer:
    done: bool
    actions: list[dict[str, Any]] = field(default_factory=list)  # flattened: one list per schema V2/V3
    output: Any = None
    error: str | None = None
    custom_status: Any = None

    @property
    def continue_as_new_input(self) -> str | None:
        """The raw start input of the next generation, when the orchestrator continued as new."""
        for action in self.actions:
            if int(action.get("actionType", -1)) == CONTINUE_AS_NEW:
                # The action's input is JSON text; the extension serialises it once more, as a client would.
                return json.dumps(action.get("input"))
        return None

    @property
    def continued_as_new(self) -> bool:
        return any(int(action.get("actionType", -1)) == CONTINUE_AS_NEW for action in self.actions)


def _from_state(state: Mapping[str, Any], error: str | None = None) -> OrchestratorAnswer:
    groups = state.get("actions") or []
    # Schema V2/V3 nests the one flat list in an outer array; V1 had one array per episode.
    actions = [action for group in groups for action in group]
    return OrchestratorAnswer(
        done=bool(state.get("isDone")),
        actions=actions,
        output=state.get("output"),
        error=error if error is not None else state.get("error"),
        custom_status=state.get("customStatus"),
    )


def read_answer(returned: Any) -> OrchestratorAnswer:
    """The orchestrator function's return value (the OrchestratorState JSON string)."""
    state = json.loads(returned) if isinstance(returned, str | bytes) else returned
    if not isinstance(state, Mapping):
        raise ValueError("Out of proc orchestrators must return a valid JSON schema")
    return _from_state(state)


def read_failure(failure: BaseException) -> OrchestratorAnswer:
    """The state an orchestrator that raised left in its exception, or just the message when there is none."""
    message = str(failure)
    head, marker, tail = message.partition(OUT_OF_PROC_DATA)
    if marker:
        try:
            state = json.loads(tail)
        except json.JSONDecodeError:
            state = None
        if isinstance(state, Mapping):
            error = state.get("error") or head.strip() or type(failure).__name__
            return _from_state(state, str(error))
    return OrchestratorAnswer(done=False, error=message or type(failure).__name__)


def activity_failure(name: str, failure: BaseException) -> tuple[str, str]:
    """TaskFailed's Reason and Details for an activity that raised: the message, and the stack of the app's
    own frames (devhost's are left out, as the worker's are in Azure)."""
    reason = f"Activity function '{name}' failed: {type(failure).__name__}: {failure}"
    frames = traceback.extract_tb(failure.__traceback__)
    own = [frame for frame in frames if not frame.filename.startswith(_DEVHOST)]
    details = "".join(traceback.format_list(own)).rstrip()
    return reason, details
