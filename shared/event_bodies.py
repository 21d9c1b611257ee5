"""Event Hub bodies to raw reading documents: one JSON object, or a JSON array of them, per event."""

from __future__ import annotations

import json
from collections.abc import Sequence

from shared.dead_letters import DeadLetter

MAX_EVENT_BODY_BYTES = 1024 * 1024  # Event Hubs Standard caps an event at 1 MB


def readings_from_events(bodies: Sequence[bytes], source: str) -> tuple[list[object], list[DeadLetter]]:
    """Decoded items, and a dead letter for every body that is not UTF-8 JSON of the expected shape."""
    items: list[object] = []
    letters: list[DeadLetter] = []
    for body in bodies:
        if len(body) > MAX_EVENT_BODY_BYTES:
            letters.append(DeadLetter(source, "event body larger than 1 MB", body[:4096]))
            continue
        try:
            decoded = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            letters.append(DeadLetter(source, "event body is not UTF-8", body))
            continue
        except (json.JSONDecodeError, RecursionError):
            letters.append(DeadLetter(source, "event body is not JSON", body))
            continue
        if isinstance(decoded, dict):
            items.append(decoded)
        elif isinstance(decoded, list):
            items.extend(decoded)
        else:
            letters.append(DeadLetter(source, "event body is neither an object nor an array", body))
    return items, letters
