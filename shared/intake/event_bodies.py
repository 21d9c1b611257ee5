"""Event Hub bodies to raw reading documents: one JSON object, or a JSON array of them, per event."""

from __future__ import annotations

import json
from collections.abc import Sequence

from shared.readings.dead_letters import DeadLetter

MAX_EVENT_BODY_BYTES = 1024 * 1024  # Event Hubs Standard caps an event at 1 MB


def decode_body(body: bytes, source: str) -> list[object] | DeadLetter:
    """The items of one body (an object is one item, an array its elements), or why it has none."""
    if len(body) > MAX_EVENT_BODY_BYTES:
        return DeadLetter(source, "event body larger than 1 MB", body[:4096])
    try:
        decoded = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return DeadLetter(source, "event body is not UTF-8", body)
    except (json.JSONDecodeError, RecursionError):
        return DeadLetter(source, "event body is not JSON", body)
    if isinstance(decoded, dict):
        return [decoded]
    if isinstance(decoded, list):
        return decoded
    return DeadLetter(source, "event body is neither an object nor an array", body)


def readings_from_events(bodies: Sequence[bytes], source: str) -> tuple[list[object], list[DeadLetter]]:
    """Decoded items, and a dead letter for every body that is not UTF-8 JSON of the expected shape."""
    items: list[object] = []
    letters: list[DeadLetter] = []
    for body in bodies:
        decoded = decode_body(body, source)
        if isinstance(decoded, DeadLetter):
            letters.append(decoded)
        else:
            items.extend(decoded)
    return items, letters
