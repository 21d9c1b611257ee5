"""The sliding-window summariser: readings in, one summary per changed series out, idempotently.

Per batch and per series: one window-state write (If-Match) and one summary upsert, never a query.
The state is written first and implies its summary (entries, unit and the time it was computed), so a
summary is only ever written from a window that won its If-Match; a crash between the two writes is repaired
when the redelivered batch finds the window unchanged and writes the summary its state implies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from shared.ops.log_context import app_logger
from shared.ops.metrics import PipelineMetrics
from shared.readings.dead_letters import DeadLetter, DeadLetterBox
from shared.readings.reading import format_epoch_ms, format_timestamp
from shared.readings.rules import SUMMARISED_ID_MESSAGE, TRIGGER_POLICY, ReadingPolicy, Violation, check_reading
from shared.readings.window import SlidingWindow, WindowEntry, summary_id
from shared.storage.names import SUMMARIES, WINDOWS_TABLE
from shared.storage.ports import (
    SYSTEM_PROPERTIES,
    ConcurrencyConflict,
    DocumentStore,
    EntityWrite,
    StateStore,
    StorageError,
)

logger = app_logger(__name__)

SeriesKey = tuple[str, str]  # (sensor_id, metric)
SeriesReadings = tuple[list[WindowEntry], list[str]]  # one series' readings in a batch: window entries, units
MAX_CONFLICT_ROUNDS = 5


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    received: int
    summarised: int
    dead_lettered: int
    summaries_written: int

    def log(self, source: str, **fields: object) -> None:
        """The batch's one log line; `fields` adds the trigger's own counts."""
        logger.info(
            "summarised %d readings from %s into %d summaries (%d dead-lettered)",
            self.summarised,
            source,
            self.summaries_written,
            self.dead_lettered,
            extra={
                "event": "summarised",
                "source": source,
                "readings": self.summarised,
                "summaries": self.summaries_written,
                "dead_letters": self.dead_lettered,
                **fields,
            },
        )


class WrittenSummary(NamedTuple):
    """A summary as written (or found written), for whoever watches summaries: `order` is the running count of
    readings of the window state it came from, which grows with every write of that state. (A tuple: one is made
    for every summary.)"""

    sensor_id: str
    metric: str
    unit: str
    order: int
    window_end_ms: int
    min: float
    max: float
    avg: float


class SummaryWatcher(Protocol):
    """Judges summaries as they are written (the threshold alerts), inside the summariser's batch."""

    def forget(self, key: SeriesKey) -> None:
        """The series' window was read from storage: anything cached about it may be stale."""
        ...

    def judge(self, summaries: Sequence[WrittenSummary]) -> int: ...


def _written(key: SeriesKey, summary: Mapping[str, Any], order: int, window: SlidingWindow) -> WrittenSummary:
    newest = window.newest_ms
    return WrittenSummary(
        key[0], key[1], summary["unit"], order, newest or 0, summary["min"], summary["max"], summary["avg"]
    )


@dataclass(slots=True)
class _KnownWindow:
    window: SlidingWindow
    unit: str
    etag: str | None
    computed_at: str | None  # when this window's summary was computed, as stored with the state
    summary_written: bool  # whether this process saw that summary's write succeed
    readings_total: int = 0  # readings that ever entered this window: the dashboard's readings per minute
    # Whether the watcher has judged the summary this state implies, as far as this process knows: not for a window
    # read from storage (the process that wrote it may have died first), until a judgement here succeeds.
    judged: bool = True


def build_summary(
    sensor_id: str, metric: str, unit: str, window: SlidingWindow, computed_at: str, ttl_seconds: int
) -> dict[str, Any] | None:
    """The summary document of a window; computed_at is already formatted (one clock read per batch)."""
    stats = window.stats()
    if stats is None:
        return None
    summary: dict[str, Any] = {
        "id": summary_id(sensor_id, metric, stats.newest_id),
        "sensor_id": sensor_id,
        "metric": metric,
        "unit": unit,
        "count": stats.count,
        "min": stats.min,
        "max": stats.max,
        "avg": stats.avg,
        "window_start": format_epoch_ms(stats.first_ms),
        "window_end": format_epoch_ms(stats.last_ms),
        "newest_reading_id": stats.newest_id,
        "computed_at": computed_at,
    }
    if ttl_seconds:
        summary["ttl"] = ttl_seconds
    return summary


def _stored_summary(documents: DocumentStore, sensor_id: str, document_id: str) -> dict[str, Any] | None:
    """The summary document as written, without the store's system fields. Existence is not enough: a late
    reading that joins a window without changing its newest reading changes the summary but not its id."""
    stored = documents.read(SUMMARIES, sensor_id, document_id)
    return None if stored is None else {k: v for k, v in stored.items() if k not in SYSTEM_PROPERTIES}


def _unit_of_newest(readings: SeriesReadings) -> str:
    """The unit of a series' newest reading in the batch, by (timestamp, id) as the window orders them."""
    entries, units = readings
    return units[0] if len(units) == 1 else units[max(range(len(entries)), key=entries.__getitem__)]


def summary_from_state(
    sensor_id: str, metric: str, properties: Mapping[str, Any], ttl_seconds: int = 0
) -> dict[str, Any] | None:
    """The summary a stored window state implies, exactly as the summariser built it (the dashboard's latest
    summary of a series); None for a state that has none."""
    entries = properties.get("entries")
    computed_at = properties.get("updated_at")
    if not isinstance(entries, str) or not isinstance(computed_at, str):
        return None
    window = SlidingWindow.as_stored(entries)
    return build_summary(sensor_id, metric, str(properties.get("unit", "")), window, computed_at, ttl_seconds)


class Summariser:
    """One per process; window state is cached in memory and written with If-Match, so a steady stream
    needs no state reads, and another instance's write shows up as a conflict, never as lost data."""

    def __init__(
        self,
        documents: DocumentStore,
        state: StateStore,
        window_size: int,
        summary_ttl_seconds: int = 0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: PipelineMetrics | None = None,
        policy: ReadingPolicy = TRIGGER_POLICY,
        watcher: SummaryWatcher | None = None,
    ) -> None:
        self._documents = documents
        self._watcher = watcher
        self._policy = policy
        self._state = state
        self._metrics = metrics
        self._dead_letters = DeadLetterBox(state, metrics)
        self.window_size = window_size
        self._ttl = summary_ttl_seconds
        self._clock = clock
        self._known: dict[SeriesKey, _KnownWindow] = {}
        self._lock = threading.Lock()

    def apply(
        self,
        items: Sequence[object],
        source: str,
        rejected: Sequence[DeadLetter] = (),
        entered_at: Sequence[datetime] | None = None,
    ) -> BatchOutcome:
        """Summarise a batch of raw reading documents; one that breaks a reading rule is dead-lettered with the
        first rule it breaks as the reason, the rest go on. So is one whose id its series' window holds with other
        content (SUMMARISED_ID_MESSAGE); the window and its summary stay as they were.
        `rejected` are items the trigger could not even decode; they are parked with the rest.
        `entered_at` holds, item by item, the moment each entered the pipeline, which its age is judged by (the
        same on every redelivery); without it, every item is judged by the summariser's clock as the batch comes."""
        if entered_at is not None and len(entered_at) != len(items):
            raise ValueError("entered_at must hold one moment per item")
        groups: dict[SeriesKey, SeriesReadings] = {}
        letters: list[DeadLetter] = list(rejected)
        policy = self._policy
        moments = [self._clock()] * len(items) if entered_at is None else entered_at
        for item, moment in zip(items, moments, strict=True):
            reading = check_reading(item, policy, source, moment)
            if isinstance(reading, list):
                letters.append(DeadLetter(source, reading[0].reason, item))
                continue
            key = (reading.sensor_id, reading.metric)
            entry = (reading.timestamp_ms, reading.id, reading.value)
            group = groups.get(key)
            if group is None:
                groups[key] = ([entry], [reading.unit])
            else:
                group[0].append(entry)
                group[1].append(reading.unit)
        if letters:
            self._dead_letters.park(letters)
        written, conflicts = self._summarise(groups) if groups else (0, {})
        if conflicts:
            # After the windows are written: if parking fails, the redelivered batch finds the same conflicts.
            conflicting = self._conflict_letters(items, source, conflicts)
            self._dead_letters.park(conflicting)
            letters += conflicting
        received = len(items) + len(rejected)
        outcome = BatchOutcome(received, received - len(letters), len(letters), written)
        if self._metrics is not None:
            times = (entry[0] for key, (entries, _) in groups.items() for entry in entries)
            if conflicts:  # what was refused was not summarised
                refused = {(key, entry) for key, entries in conflicts.items() for entry in entries}
                times = (
                    entry[0] for key, (entries, _) in groups.items() for entry in entries if (key, entry) not in refused
                )
            self._metrics.summarised(source, outcome.summarised, written, times)
        return outcome

    def _conflict_letters(
        self, items: Sequence[object], source: str, conflicts: Mapping[SeriesKey, list[WindowEntry]]
    ) -> list[DeadLetter]:
        """The items behind the conflicting entries (rare: a scan of the batch), dead-lettered with the reason."""
        wanted = {(key, entry) for key, entries in conflicts.items() for entry in entries}
        ids = {entry[1] for _, entry in wanted}
        letters: list[DeadLetter] = []
        for item in items:
            item_id = item.get("id") if isinstance(item, Mapping) else None
            if not isinstance(item_id, str) or item_id not in ids:  # (an id may be any JSON value, even a list)
                continue
            reading = check_reading(item, self._policy, source)  # it passed the rules: only its entry is wanted
            if isinstance(reading, list):
                continue
            found = ((reading.sensor_id, reading.metric), (reading.timestamp_ms, reading.id, reading.value))
            if found in wanted:
                letters.append(DeadLetter(source, Violation("id", SUMMARISED_ID_MESSAGE).reason, item))
        return letters

    def _summarise(self, groups: dict[SeriesKey, SeriesReadings]) -> tuple[int, dict[SeriesKey, list[WindowEntry]]]:
        """Merge and write; returns how many summaries were written and, per series, the entries refused because
        the window holds their id with other content."""
        refusals: dict[SeriesKey, list[WindowEntry]] = {}
        # Serialised per process: both triggers share the cache, and SQLite or Tables would serialise anyway.
        with self._lock:
            pending = groups
            written = 0
            for _ in range(MAX_CONFLICT_ROUNDS):
                round_written, changed_under_us = self._write_round(pending, refusals)
                written += round_written
                if not changed_under_us:
                    return written, {key: entries for key, entries in refusals.items() if entries}
                pending = {key: groups[key] for key in changed_under_us}
            raise StorageError(f"window state kept changing for {len(pending)} series; the batch will be retried")

    def _load_window(self, key: SeriesKey) -> _KnownWindow:
        """A series' window as stored (an empty one when it has none yet), cached for the next batches."""
        entity = self._state.get(WINDOWS_TABLE, key[0], key[1])
        if entity is None:
            known = _KnownWindow(SlidingWindow(self.window_size), "", None, None, summary_written=True)
        else:
            window = SlidingWindow.from_json(self.window_size, str(entity.properties.get("entries", "")))
            computed_at = entity.properties.get("updated_at")
            total = entity.properties.get("readings_total")
            known = _KnownWindow(
                window,
                str(entity.properties.get("unit", "")),
                entity.etag,
                computed_at if isinstance(computed_at, str) else None,
                # Read from the store: this process cannot know the summary write after it happened.
                summary_written=False,
                judged=False,
                readings_total=total if isinstance(total, int) else 0,
            )
        self._known[key] = known
        if self._watcher is not None:
            self._watcher.forget(key)
        return known

    def _unwritten_summary(self, key: SeriesKey, known: _KnownWindow) -> dict[str, Any] | None:
        """The summary a window's stored state implies, if it is not in `summaries`: the process that wrote the
        state may have died before its summary write. One point read finds out, once per loaded window."""
        if known.summary_written or known.computed_at is None:
            return None
        implied = build_summary(key[0], key[1], known.unit, known.window, known.computed_at, self._ttl)
        if implied is None or _stored_summary(self._documents, key[0], implied["id"]) == implied:
            known.summary_written = True
            return None
        return implied

    def _implied_summary(self, key: SeriesKey, known: _KnownWindow) -> dict[str, Any] | None:
        if known.computed_at is None:
            return None
        return build_summary(key[0], key[1], known.unit, known.window, known.computed_at, self._ttl)

    def _write_round(
        self, pending: dict[SeriesKey, SeriesReadings], refusals: dict[SeriesKey, list[WindowEntry]]
    ) -> tuple[int, set[SeriesKey]]:
        """Merge, write states (If-Match), then the summaries of the states written; returns how many
        summaries changed and which series changed under us. Cached windows are merged in place; a series
        whose state is not written leaves the cache, so it is read again from storage. `refusals` gets, per
        series merged, the entries its window refused (a series merged again in a later round replaces them)."""
        now = format_timestamp(self._clock())
        merged: list[tuple[SeriesKey, _KnownWindow, dict[str, Any]]] = []
        touched: list[SeriesKey] = []
        writes: list[EntityWrite] = []
        repairs: list[tuple[SeriesKey, dict[str, Any]]] = []
        rejudge: list[WrittenSummary] = []
        try:
            for key, readings in pending.items():
                known = self._known.get(key) or self._load_window(key)
                if not known.judged and self._watcher is not None:
                    # The process that wrote this state may have died before judging its summary: judge it before
                    # this batch moves the window on, or a redelivery that also brings newer readings would skip
                    # it. Judging it again is harmless (the watcher skips what it has judged).
                    implied = self._implied_summary(key, known)
                    if implied is None:
                        known.judged = True
                    else:
                        rejudge.append(_written(key, implied, known.readings_total, known.window))
                refused: list[WindowEntry] = []
                entered = known.window.merge(readings[0], refused)
                refusals[key] = refused
                if not entered:  # already summarised: a redelivery
                    unwritten = self._unwritten_summary(key, known)
                    if unwritten is not None:
                        repairs.append((key, unwritten))
                    continue
                touched.append(key)
                unit = _unit_of_newest(readings) or known.unit
                summary = build_summary(key[0], key[1], unit, known.window, now, self._ttl)
                if summary is None:
                    continue
                writes.append(
                    EntityWrite(
                        key[0],
                        key[1],
                        {
                            "entries": known.window.to_json(),
                            "unit": summary["unit"],
                            "updated_at": now,  # the summary's computed_at: with entries and unit, it implies it
                            "readings_total": known.readings_total + entered,
                        },
                        known.etag,
                    )
                )
                merged.append((key, known, summary))
            results = self._state.write_many(WINDOWS_TABLE, writes) if writes else []
        except BaseException:
            for key in touched:
                self._known.pop(key, None)  # merged but not written
            raise
        conflicts: set[SeriesKey] = set()
        accepted: list[tuple[SeriesKey, dict[str, Any]]] = []
        for (key, known, summary), write, result in zip(merged, writes, results, strict=True):
            if isinstance(result, ConcurrencyConflict):
                self._known.pop(key, None)  # re-read on the next round; nothing of ours was written
                conflicts.add(key)
            else:
                known.etag = result.etag
                known.unit = write.properties["unit"]
                known.computed_at = now
                known.readings_total = write.properties["readings_total"]
                known.summary_written = False
                known.judged = False
                accepted.append((key, summary))
        to_write = accepted + repairs
        if to_write:
            try:
                self._documents.upsert_many(SUMMARIES, [summary for _, summary in to_write])
            except Exception:
                # The states are written; the retry finds the windows unchanged and repairs from them.
                for key, _ in to_write:
                    self._known.pop(key, None)
                raise
            for key, _ in to_write:
                self._known[key].summary_written = True
        if self._watcher is not None and (rejudge or accepted):
            known_windows = self._known
            judged = rejudge
            for key, summary in accepted:
                known = known_windows[key]
                judged.append(_written(key, summary, known.readings_total, known.window))
            try:
                self._watcher.judge(judged)
            except Exception:
                # The summaries are written; the retry reloads these windows and judges them again.
                for one in judged:
                    known_windows.pop((one.sensor_id, one.metric), None)
                raise
            for one in judged:
                judged_window = known_windows.get((one.sensor_id, one.metric))
                if judged_window is not None:  # (one that conflicted has left the cache)
                    judged_window.judged = True
        if conflicts:
            logger.info("window state changed under us for %d series; re-merging", len(conflicts))
        return len(accepted), conflicts
