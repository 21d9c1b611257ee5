"""Dead letters: items a trigger could not use, kept with the reason so nothing is lost silently."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.ops.log_context import app_logger
from shared.ops.metrics import PipelineMetrics
from shared.readings.reading import format_timestamp
from shared.storage.names import DEAD_LETTERS_TABLE
from shared.storage.ports import SYSTEM_PROPERTIES, StateStore

logger = app_logger(__name__)

MAX_KEPT_CHARS = 16_000  # Table Storage strings hold 32K UTF-16 characters; keep room for the rest


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source: str
    reason: str
    item: object


def _as_text(item: object) -> str:
    if isinstance(item, bytes | bytearray):
        return bytes(item).decode("utf-8", errors="backslashreplace")
    if isinstance(item, Mapping) and not SYSTEM_PROPERTIES.isdisjoint(item):
        # A document a client wrote again (its first answer was lost) comes back from the change feed with new
        # system fields: it is the same item, and its digest must be the same.
        item = {k: v for k, v in item.items() if k not in SYSTEM_PROPERTIES}
    try:
        return json.dumps(item, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(item)


def _item_ids(item: object) -> dict[str, str]:
    """The ids a dead item names, for the log line: short strings only, nothing else of its content."""
    if not isinstance(item, Mapping):
        return {}
    ids = {"reading_id": item.get("id"), "sensor_id": item.get("sensor_id")}
    return {name: value for name, value in ids.items() if isinstance(value, str) and 0 < len(value) <= 256}


class DeadLetterBox:
    def __init__(self, state: StateStore, metrics: PipelineMetrics | None = None) -> None:
        self._state = state
        self._metrics = metrics

    def park(self, letters: Sequence[DeadLetter]) -> None:
        """Keep each letter once: the row key is a digest of the item, so a redelivery overwrites it."""
        now = format_timestamp(datetime.now(UTC))
        for letter in letters:
            text = _as_text(letter.item)
            row_key = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:32]
            self._state.upsert(
                DEAD_LETTERS_TABLE,
                letter.source,
                row_key,
                {
                    "reason": letter.reason,
                    "item": text[:MAX_KEPT_CHARS],
                    "truncated": len(text) > MAX_KEPT_CHARS,
                    "parked_at": now,
                },
            )
            logger.warning(
                "dead-lettered an item from %s: %s",
                letter.source,
                letter.reason,
                extra={
                    "event": "dead_letter",
                    "source": letter.source,
                    "reason": letter.reason,
                    "dead_letter_key": row_key,
                    **_item_ids(letter.item),
                },
            )
            if self._metrics is not None:
                self._metrics.dead_lettered(letter.source, (letter.reason,))

    def list(self, source: str | None = None) -> list[dict[str, Any]]:
        return [
            {"source": e.partition_key, "key": e.row_key, **e.properties}
            for e in self._state.query(DEAD_LETTERS_TABLE, source)
        ]
