"""Backfill: catch up a long Microshare gap with a Durable Functions orchestration instead of one timer run.

The orchestrator discovers the locations (an activity), fans out one activity per (location x day) window
with bounded exponential retries, reports progress in its custom status, fans the totals in, and then moves
the watermark (an activity). Every window goes through the same fetch, dedup and delivery code as the
timers, so a window that overlaps what a timer already sent forwards nothing twice. The orchestrator itself
is deterministic: no clock, no randomness and no I/O outside activities; it only computes windows from its
input.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df

from shared.microshare.api import HOURLY_SNAPSHOT, PEOPLE_COUNTER
from shared.microshare.results import ForwardResult
from shared.readings.reading import InvalidReading, format_timestamp, parse_timestamp

ORCHESTRATOR = "microshare_backfill"
LOCATIONS_ACTIVITY = "backfill_locations"
WINDOW_ACTIVITY = "backfill_window"
FINISH_ACTIVITY = "backfill_finish"

# Accepted in requests: the recType, or its short name.
REC_TYPE_NAMES = {
    PEOPLE_COUNTER: PEOPLE_COUNTER,
    HOURLY_SNAPSHOT: HOURLY_SNAPSHOT,
    "people_counter": PEOPLE_COUNTER,
    "hourly_snapshot": HOURLY_SNAPSHOT,
}
INSTANCE_IDS = {PEOPLE_COUNTER: "backfill-people-counter", HOURLY_SNAPSHOT: "backfill-hourly-snapshot"}
INSTANCE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")

FAN_OUT_CHUNK = 16  # windows in flight at once; the custom status moves after each chunk
FIRST_RETRY_MS = 2_000
BACKOFF_COEFFICIENT = 2.0
MAX_RETRY_INTERVAL_MS = 60_000
MAX_ATTEMPTS = 5


class BackfillRequestError(ValueError):
    """A backfill request that cannot be started; the message says why (the HTTP answer is 400)."""


@dataclass(frozen=True, slots=True)
class BackfillRequest:
    rec_type: str
    start: datetime
    end: datetime

    @property
    def instance_id(self) -> str:
        return INSTANCE_IDS[self.rec_type]

    def to_input(self) -> dict[str, str]:
        return {"recType": self.rec_type, "from": format_timestamp(self.start), "to": format_timestamp(self.end)}

    @classmethod
    def from_input(cls, value: Mapping[str, Any]) -> BackfillRequest:
        return cls(str(value["recType"]), parse_timestamp(value["from"]), parse_timestamp(value["to"]))


def parse_request(body: object, now: datetime, max_span: timedelta) -> BackfillRequest:
    """{recType, from, to} from a request body; BackfillRequestError names the problem."""
    if not isinstance(body, dict):
        raise BackfillRequestError("the body must be a JSON object with recType, from and to")
    unknown = set(body) - {"recType", "from", "to"}
    if unknown:
        raise BackfillRequestError(f"unknown fields: {', '.join(sorted(map(str, unknown)))[:200]}")
    rec_type = body.get("recType")
    if not isinstance(rec_type, str) or rec_type not in REC_TYPE_NAMES:
        raise BackfillRequestError(f"recType must be one of: {', '.join(REC_TYPE_NAMES)}")
    start, end = _time(body, "from"), _time(body, "to")
    if end <= start:
        raise BackfillRequestError("'to' must be after 'from'")
    if end > now + timedelta(minutes=5):
        raise BackfillRequestError("'to' is in the future")
    if end - start > max_span:
        days = max_span / timedelta(days=1)
        raise BackfillRequestError(f"the range is longer than the maximum of {days:g} days")
    return BackfillRequest(REC_TYPE_NAMES[rec_type], start, end)


def _time(body: Mapping[str, Any], name: str) -> datetime:
    if name not in body:
        raise BackfillRequestError(f"'{name}' is required (ISO 8601 with a UTC offset)")
    try:
        return parse_timestamp(body[name])
    except InvalidReading as bad:
        raise BackfillRequestError(f"'{name}': {bad.reason}") from None


def day_windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at UTC midnights: one window per calendar day (the first and last may be partial)."""
    windows = []
    lower = start
    while lower < end:
        midnight = datetime.combine(lower.astimezone(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
        upper = min(midnight, end)
        windows.append((lower, upper))
        lower = upper
    return windows


class ExponentialRetryOptions(df.RetryOptions):
    """RetryOptions with the backoff coefficient and the cap the Durable extension understands; the Python
    library's own class serialises only the first interval and the attempt count (a constant interval)."""

    def __init__(
        self, first_retry_interval_in_milliseconds: int, max_number_of_attempts: int, backoff: float, cap_ms: int
    ) -> None:
        super().__init__(first_retry_interval_in_milliseconds, max_number_of_attempts)
        self.backoff_coefficient = backoff
        self.max_retry_interval_in_milliseconds = cap_ms

    def to_json(self) -> dict[str, str | int]:
        document: dict[str, str | int] = dict(super().to_json())
        document["backoffCoefficient"] = self.backoff_coefficient  # type: ignore[assignment]
        document["maxRetryIntervalInMilliseconds"] = self.max_retry_interval_in_milliseconds
        return document


RETRY = ExponentialRetryOptions(FIRST_RETRY_MS, MAX_ATTEMPTS, BACKOFF_COEFFICIENT, MAX_RETRY_INTERVAL_MS)


def progress(done: int, total: int, events: int, sent: int) -> dict[str, int]:
    return {"windows_done": done, "windows_total": total, "events_forwarded": events, "events_sent": sent}


def orchestrate(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """The backfill orchestration; see the module docstring. Its output: the totals of every window."""
    request = context.get_input()
    if not isinstance(request, dict):
        raise ValueError("the backfill input must be {recType, from, to}")
    parsed = BackfillRequest.from_input(request)
    locations: list[str] = yield context.call_activity(LOCATIONS_ACTIVITY, parsed.rec_type)
    windows = [
        {"recType": parsed.rec_type, "location": location, "from": format_timestamp(a), "to": format_timestamp(b)}
        for location in locations
        for a, b in day_windows(parsed.start, parsed.end)
    ]
    totals = {"events": 0, "sent": 0, "skipped": 0, "dead_lettered": 0}
    newest: str | None = None
    days: set[str] = set()
    context.set_custom_status(progress(0, len(windows), 0, 0))
    for first in range(0, len(windows), FAN_OUT_CHUNK):
        chunk = windows[first : first + FAN_OUT_CHUNK]
        results = yield context.task_all(
            [context.call_activity_with_retry(WINDOW_ACTIVITY, RETRY, window) for window in chunk]
        )
        for result in results:
            for name in totals:
                totals[name] += int(result[name])
            if result["newest"] is not None and (newest is None or result["newest"] > newest):
                newest = result["newest"]
            days.update(result["days"])
        done = first + len(chunk)
        context.set_custom_status(progress(done, len(windows), totals["events"], totals["sent"]))
    yield context.call_activity(FINISH_ACTIVITY, {**parsed.to_input(), "newest": newest, "days": sorted(days)})
    return {**parsed.to_input(), "locations": len(locations), "windows": len(windows), **totals, "newest": newest}


def window_output(result: ForwardResult) -> dict[str, Any]:
    """A backfill window's totals as the activity returns them (JSON)."""
    return {
        "events": result.events,
        "sent": sum(t.sent for t in result.hubs.values()),
        "skipped": sum(t.skipped for t in result.hubs.values()),
        "dead_lettered": result.dead_lettered,
        "newest": None if result.watermark_after is None else format_timestamp(result.watermark_after),
        "days": sorted(result.dedup_days),
    }
