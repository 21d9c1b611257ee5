"""What one forwarding run or backfill window did: its counts per hub, and its log fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.readings.reading import format_timestamp


@dataclass(slots=True)
class HubTotals:
    sent: int = 0
    skipped: int = 0  # already delivered: overlap, repeats across pages, retried runs
    too_large: int = 0


@dataclass(slots=True)
class ForwardResult:
    rec_type: str
    start: datetime
    end: datetime
    watermark_before: datetime | None
    watermark_after: datetime | None = None
    locations: int = 0
    pages: int = 0
    records: int = 0
    events: int = 0
    dead_lettered: int = 0
    hubs: dict[str, HubTotals] = field(default_factory=dict)
    failed_hubs: dict[str, str] = field(default_factory=dict)
    forgotten_keys: int = 0
    dedup_days: set[str] = field(default_factory=set)  # days whose dedup records this run read or wrote

    def as_log_fields(self) -> dict[str, Any]:
        return {
            "recType": self.rec_type,
            "from": format_timestamp(self.start),
            "to": format_timestamp(self.end),
            "pages": self.pages,
            "records": self.records,
            "events": self.events,
            "dead_letters": self.dead_lettered,
            "sent": {hub: t.sent for hub, t in self.hubs.items()},
            "duplicates_skipped": {hub: t.skipped for hub, t in self.hubs.items()},
            "sent_total": sum(t.sent for t in self.hubs.values()),
            "duplicates_total": sum(t.skipped for t in self.hubs.values()),
            "failed_hubs": ",".join(sorted(self.failed_hubs)),
            "watermark": None if self.watermark_after is None else format_timestamp(self.watermark_after),
        }
