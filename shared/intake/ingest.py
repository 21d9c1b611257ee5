"""The ingest API: a JSON body of one reading or a batch, validated whole by the reading rules
(shared.readings.rules, their ingest API policy), turned into reading documents.

All or nothing: when any item is invalid, the answer lists every field error of every item and nothing is
written, so a device never has to work out which half of its batch landed. A client-supplied `id` makes a retry
idempotent; without one the id is derived from the reading's content, so a retried identical post is too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.readings.reading import Reading, format_timestamp
from shared.readings.rules import DEFAULT_METRICS, MetricRule, ReadingPolicy, check_reading

INGEST_SOURCE = "ingest-api"
_JSON_TYPES = ("application/json",)


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_batch: int = 100
    max_body_bytes: int = 256 * 1024
    max_future: timedelta = timedelta(minutes=5)
    max_age: timedelta | None = timedelta(days=7)  # READING_MAX_AGE_SECONDS; None: no limit
    metrics: Mapping[str, MetricRule] = field(default_factory=lambda: dict(DEFAULT_METRICS))


@dataclass(frozen=True, slots=True)
class FieldError:
    index: int  # position in the batch (0 for a single reading)
    field: str  # the field at fault, or "" for the item as a whole
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


class IngestRejected(Exception):
    """The request cannot be accepted; `status` is the HTTP status to answer with."""

    def __init__(
        self, status: int, message: str, errors: tuple[FieldError, ...] = (), ids: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.ids = ids  # the readings at fault by id (409: stored with other content)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.errors:
            body["errors"] = [error.to_json() for error in self.errors]
        if self.ids:
            body["ids"] = list(self.ids)
        return body


def check_content_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in _JSON_TYPES:
        raise IngestRejected(415, "Content-Type must be application/json")


def decode_body(body: bytes, limits: IngestLimits) -> list[object]:
    """The items of a body: one JSON object, or an array of at most max_batch of them."""
    if len(body) > limits.max_body_bytes:
        raise IngestRejected(413, f"the body is larger than {limits.max_body_bytes} bytes")
    try:
        document = orjson.loads(body)  # refuses invalid UTF-8, and nesting deeper than 1024 levels
    except orjson.JSONDecodeError as bad:
        raise IngestRejected(400, f"the body is not valid JSON: {bad.msg}") from None
    if isinstance(document, dict):
        return [document]
    if not isinstance(document, list):
        raise IngestRejected(400, "the body must be a reading object or an array of readings")
    if not document:
        raise IngestRejected(400, "the batch is empty")
    if len(document) > limits.max_batch:
        raise IngestRejected(400, f"a batch holds at most {limits.max_batch} readings, not {len(document)}")
    return document


MAX_ERRORS_REPORTED = 100


def validate_batch(
    items: list[object], limits: IngestLimits, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> list[Reading]:
    """One reading per item, in order, or IngestRejected(400) listing the field errors (the first 100) of every
    item. Identical items (same id and content) are allowed; the writer writes them once."""
    now = clock()
    policy = ReadingPolicy.ingest_api(limits.metrics, limits.max_future, limits.max_age)
    readings: list[Reading] = []
    errors: list[FieldError] = []
    first_of_id: dict[tuple[str, str], tuple[int, Reading]] = {}  # a reading is identified by (sensor_id, id)
    for index, item in enumerate(items):
        reading = check_reading(item, policy, INGEST_SOURCE, now)
        if isinstance(reading, list):
            errors.extend(FieldError(index, violation.field, violation.message) for violation in reading)
            continue
        earlier, first = first_of_id.setdefault((reading.sensor_id, reading.id), (index, reading))
        if first != reading:
            # The same reading twice is harmless (written once); one id for two different readings is not.
            errors.append(FieldError(index, "id", f"repeats the id of item {earlier} with different content"))
        readings.append(reading)
    if errors:
        bad = len({error.index for error in errors})
        message = f"{bad} of {len(items)} readings {'is' if bad == 1 else 'are'} invalid; nothing was written"
        raise IngestRejected(400, message, tuple(errors[:MAX_ERRORS_REPORTED]))
    return readings


def accepted_body(readings: list[Reading]) -> dict[str, Any]:
    return {
        "count": len(readings),
        "ids": [reading.id for reading in readings],
        "received_at": format_timestamp(datetime.now(UTC)),
    }
