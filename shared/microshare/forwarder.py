"""Microshare to Event Hubs forwarding that loses nothing and repeats nothing.

- The watermark of a recType is the newest event time actually delivered to every hub, never the wall clock:
  an event that some hub did not get holds the watermark below its time, and a run that could not fetch
  everything (Microshare failed part-way) does not move it at all.
- Each run fetches from the watermark minus an overlap, so records that reach Microshare late are still seen.
- Every event has a stable dedup key (the Microshare record id, else a digest of its content); HubFanout keeps
  per hub which keys arrived, so the overlap, a record repeated on two pages, or a retried run sends nothing
  twice, and a hub that failed gets only what it missed. Keys are forgotten once they are older than the
  retention and older than anything a run can fetch again, so the state stays the same size week after week.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from shared.microshare.api import HOURLY_SNAPSHOT, PEOPLE_COUNTER
from shared.microshare.client import Page
from shared.microshare.hub_fanout import FanoutSession, HubFanout, KeyedEvent
from shared.ops.log_context import app_logger
from shared.ops.metrics import PipelineMetrics
from shared.readings.dead_letters import DeadLetter, DeadLetterBox
from shared.readings.reading import InvalidReading, format_timestamp, parse_timestamp
from shared.settings import MicroshareSettings
from shared.storage.names import FORWARDER_TABLE
from shared.storage.ports import ConcurrencyConflict, EntityWrite, OutboundEvent, StateStore

logger = app_logger(__name__)

REC_TYPES = (PEOPLE_COUNTER, HOURLY_SNAPSHOT)
SNAPSHOT_WINDOW = timedelta(hours=1)


class MicroshareSource(Protocol):
    """The part of MicroshareClient the forwarder uses."""

    def locations(self) -> list[str]: ...

    def view_pages(self, rec_type: str, location: str, start: datetime, end: datetime) -> Iterator[Page]: ...


class ForwardingIncomplete(RuntimeError):
    """Some hub did not get every event; what was delivered is recorded and the next run sends the rest."""


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str
    time: datetime
    event: OutboundEvent


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


@dataclass(slots=True)
class _Progress:
    """What the watermark may move to: the newest time delivered everywhere below the oldest one that was not."""

    delivered: list[datetime] = field(default_factory=list)
    blocked: datetime | None = None

    def note(self, time: datetime, everywhere: bool) -> None:
        if everywhere:
            self.delivered.append(time)
        elif self.blocked is None or time < self.blocked:
            self.blocked = time

    def watermark(self, old: datetime | None, end: datetime) -> datetime | None:
        safe = [t for t in self.delivered if self.blocked is None or t < self.blocked]
        if not safe:
            return old
        newest = min(max(safe), end)
        return newest if old is None else max(old, newest)


class _DaySessions:
    """Dedup records are kept per hub, recType and day of the event time: a run or a backfill window reads only
    the days it touches, and a day no run can fetch again is forgotten as a whole."""

    def __init__(self, fanout: HubFanout, rec_type: str, letters: DeadLetterBox) -> None:
        self._fanout = fanout
        self._rec_type = rec_type
        self._letters = letters
        self._sessions: dict[str, FanoutSession] = {}
        self.failed: dict[str, str] = {}

    @property
    def days(self) -> set[str]:
        return set(self._sessions)

    def for_day(self, day: str) -> FanoutSession:
        if day not in self._sessions:
            stream = dedup_stream(self._rec_type, day)
            self._sessions[day] = self._fanout.open(stream, self._letters, failed=self.failed)
        return self._sessions[day]


def dedup_stream(rec_type: str, day: str) -> str:
    return f"{rec_type}|{day}"


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


class _StoredTimes(NamedTuple):
    watermark: datetime | None
    first_run_from: datetime | None


class _Run(NamedTuple):
    """One run's delivery sessions, its result so far and what its watermark may move to."""

    sessions: _DaySessions
    result: ForwardResult
    progress: _Progress


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _digest(value: object) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256-" + hashlib.sha256(canonical.encode("utf-8", errors="surrogatepass")).hexdigest()


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def people_counter_event(record: object, location: str) -> Candidate:
    """One people-counter record as one flattened event with its location tags; InvalidReading says why not."""
    if not isinstance(record, dict):
        raise InvalidReading("record is not a JSON object")
    data = record.get("data")
    if not isinstance(data, dict):
        raise InvalidReading("record has no data object")
    if "time" not in data or data["time"] is None:
        raise InvalidReading("record has no time")
    time = parse_timestamp(data["time"])
    for name in ("change", "daily_total", "device"):
        if name in data and not isinstance(data[name], dict):
            raise InvalidReading(f"data.{name} must be an object")
    current = data.get("current")
    if current is not None and (isinstance(current, bool) or not isinstance(current, int | float | dict)):
        raise InvalidReading("data.current must be a number or an object")
    meta = data.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise InvalidReading("data.meta must be an object")
    tags = (meta or {}).get("device")
    if tags is None:
        tags = [location]
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise InvalidReading("data.meta.device must be a list of location names")
    record_id = record.get("id") or record.get("_id")
    key = record_id if isinstance(record_id, str) and record_id else _digest(record)
    body = {
        "recType": PEOPLE_COUNTER,
        "record": key,
        "time": format_timestamp(time),
        "change": data.get("change"),
        "daily_total": data.get("daily_total"),
        "current": current,
        "device": data.get("device"),
        "meta": meta,
        "_location_tags": tags,
    }
    properties = {"recType": PEOPLE_COUNTER, "location": location}
    return Candidate(key, time, OutboundEvent(_encode(body), partition_key=location, properties=properties))


def snapshot_event(location: str, start: datetime, end: datetime, pages: list[Page]) -> Candidate | None:
    """One location's hourly-snapshot answer, sent whole; None when it holds no line at all.

    The dedup key digests the location, the window and the data (not the paging meta, which varies between
    identical answers), so the overlap re-fetching an hour sends nothing, while an hour whose data changed
    afterwards (late records) is sent again as the corrected answer."""
    objs = [obj for page in pages for obj in page.objs]
    times: list[datetime] = []
    for obj in objs:
        lines = obj.get("data", {}).get("line") if isinstance(obj, dict) and isinstance(obj.get("data"), dict) else None
        if not isinstance(lines, list):
            raise InvalidReading("snapshot answer object has no data.line list")
        for line in lines:
            if not isinstance(line, dict):
                raise InvalidReading("snapshot line is not an object")
            times.append(parse_timestamp(line.get("time")))
    if not times:
        return None
    window = {"location": location, "from": format_timestamp(start), "to": format_timestamp(end)}
    body = {
        "recType": HOURLY_SNAPSHOT,
        **window,
        "meta": {"totalPages": len(pages), "currentCount": len(objs), "totalCount": len(objs)},
        "objs": objs,
    }
    properties = {"recType": HOURLY_SNAPSHOT, "location": location}
    event = OutboundEvent(_encode(body), partition_key=location, properties=properties)
    return Candidate(_digest({**window, "objs": objs}), max(times), event)


class Forwarder:
    """Runs one recType's forwarding: fetch from the watermark minus the overlap, deliver, move the watermark."""

    def __init__(
        self,
        source: MicroshareSource,
        fanout: HubFanout,
        state: StateStore,
        settings: MicroshareSettings,
        clock: Callable[[], datetime] = _utc_now,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self._source = source
        self._fanout = fanout
        self._state = state
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._letters = DeadLetterBox(state, metrics)

    def watermark(self, rec_type: str) -> datetime | None:
        return self._stored(rec_type).watermark

    def locations(self) -> list[str]:
        return self._source.locations()

    def backfill_due(self, rec_type: str) -> tuple[datetime, datetime] | None:
        """The range a backfill should catch up instead of this timer run, when the gap since the watermark is
        longer than the setting; at most the maximum span (the next timer run starts the next part)."""
        stored = self._stored(rec_type)
        now = self._clock()
        if stored.watermark is None or now - stored.watermark <= self._settings.backfill_after:
            return None
        start, end = self._window(rec_type, stored, now)
        return start, min(end, start + self._settings.backfill_max_span)

    def _stored(self, rec_type: str) -> _StoredTimes:
        """The watermark and the first run's start, from one read of the recType's state entity."""
        entity = self._state.get(FORWARDER_TABLE, rec_type, "state")
        properties = {} if entity is None else entity.properties

        def moment(name: str) -> datetime | None:
            value = properties.get(name)
            return None if not value else parse_timestamp(value)

        return _StoredTimes(moment("watermark"), moment("first_run_from"))

    def _window(self, rec_type: str, stored: _StoredTimes, now: datetime) -> tuple[datetime, datetime]:
        """From the watermark minus the overlap to now; whole hours for snapshots, so the same hour is always the
        same query. Before any watermark: from the first run's start (the lookback from then), so what an
        incomplete first run missed is not left behind as the clock moves."""
        if stored.watermark is None:
            start = now - self._settings.first_run_lookback
            if stored.first_run_from is not None:
                start = min(stored.first_run_from, start)
        else:
            start = stored.watermark - self._settings.overlap
        end = now
        if rec_type == HOURLY_SNAPSHOT:
            start, end = _floor_hour(start), _floor_hour(now)
        return start, max(start, end)

    def run(self, rec_type: str, start: datetime | None = None, end: datetime | None = None) -> ForwardResult:
        """Forward [start, end) (default: from the watermark minus the overlap to now) and save the new watermark
        and totals. Raises ForwardingIncomplete after saving when a hub failed, and lets a Microshare error
        propagate after saving the totals without moving the watermark: in both cases the next run sends what
        is missing."""
        if rec_type not in REC_TYPES:
            raise ValueError(f"unknown recType {rec_type!r}")
        now = self._clock()
        stored = self._stored(rec_type)
        default_start, default_end = self._window(rec_type, stored, now)
        start, end = start or default_start, end or default_end
        old = stored.watermark
        if old is None and stored.first_run_from is None:
            # Before anything is sent: a run that dies half-way must not let the next one start later.
            self._state.upsert(FORWARDER_TABLE, rec_type, "state", {"first_run_from": format_timestamp(start)})
        result = ForwardResult(rec_type, start, end, old, old)
        run = self._new_run(rec_type, result)
        try:
            locations = self._source.locations()
            result.locations = len(locations)
            for location in locations:
                self._fetch_and_deliver(run, location, start, end)
        except Exception as failure:
            self._save(rec_type, result, old, now, "failed", run.sessions.days)
            self._count_run(result, "failed")
            logger.warning(
                "forwarding %s failed after %d pages: %s",
                rec_type,
                result.pages,
                type(failure).__name__,
                extra={**result.as_log_fields(), "event": "forwarder_run", "outcome": "failed"},
            )
            raise
        result.failed_hubs = dict(run.sessions.failed)
        result.watermark_after = run.progress.watermark(old, end)
        outcome = "incomplete" if result.failed_hubs else "ok"
        self._save(rec_type, result, result.watermark_after, now, outcome, run.sessions.days)
        result.forgotten_keys = self._forget_old_days(rec_type, min(now - self._settings.dedup_retention, start))
        self._count_run(result, outcome)
        logger.info(
            "forwarded %s: %d events from %d records on %d pages, %d dead-lettered",
            rec_type,
            result.events,
            result.records,
            result.pages,
            result.dead_lettered,
            extra={**result.as_log_fields(), "event": "forwarder_run", "outcome": outcome},
        )
        if result.failed_hubs:
            raise ForwardingIncomplete(
                f"{rec_type}: hubs {', '.join(sorted(result.failed_hubs))} did not get every event; "
                "the next run sends what they missed"
            )
        return result

    def _count_run(self, result: ForwardResult, outcome: str) -> None:
        """A timer run's metrics: the run by outcome, and what it fetched and delivered."""
        if self._metrics is None:
            return
        self._metrics.forwarder_runs.labels(result.rec_type, outcome).inc()
        self._count_delivery(result)

    def _count_delivery(self, result: ForwardResult) -> None:
        if self._metrics is None:
            return
        m = self._metrics
        m.forwarder_pages.labels(result.rec_type).inc(result.pages)
        m.forwarder_events.labels(result.rec_type).inc(result.events)
        for hub, totals in result.hubs.items():
            m.forwarder_sent.labels(result.rec_type, hub).inc(totals.sent)
            m.forwarder_duplicates.labels(result.rec_type, hub).inc(totals.skipped)

    def _count_window(self, result: ForwardResult, outcome: str) -> None:
        """A backfill window's metrics: the window by outcome, and what it fetched and delivered."""
        if self._metrics is None:
            return
        self._metrics.backfill_windows.labels(result.rec_type, outcome).inc()
        self._metrics.backfill_events.labels(result.rec_type).inc(sum(t.sent for t in result.hubs.values()))
        self._count_delivery(result)

    def _new_run(self, rec_type: str, result: ForwardResult) -> _Run:
        result.hubs = {hub: HubTotals() for hub in self._fanout.hubs}
        return _Run(_DaySessions(self._fanout, rec_type, self._letters), result, _Progress())

    def _fetch_and_deliver(self, run: _Run, location: str, start: datetime, end: datetime) -> None:
        if run.result.rec_type == PEOPLE_COUNTER:
            self._people_counter(run, location, start, end)
        else:
            self._snapshots(run, location, start, end)

    def forward_window(self, rec_type: str, location: str, start: datetime, end: datetime) -> ForwardResult:
        """Forward one location's [start, end) with the same fetch, dedup and delivery as the timers, without
        touching the watermark (a backfill window; finish_backfill moves it once every window is done).
        Raises ForwardingIncomplete when a hub did not get everything: retrying the window is safe."""
        if rec_type not in REC_TYPES:
            raise ValueError(f"unknown recType {rec_type!r}")
        result = ForwardResult(rec_type, start, end, None)
        run = self._new_run(rec_type, result)
        try:
            self._fetch_and_deliver(run, location, start, end)
        except Exception:
            self._count_window(result, "failed")
            raise
        result.locations = 1
        result.failed_hubs = dict(run.sessions.failed)
        result.dedup_days = run.sessions.days
        result.watermark_after = run.progress.watermark(None, end)
        self._count_window(result, "incomplete" if result.failed_hubs else "ok")
        logger.info(
            "backfilled %s at %s from %s to %s: %d events",
            rec_type,
            location,
            format_timestamp(start),
            format_timestamp(end),
            result.events,
            extra={**result.as_log_fields(), "event": "backfill_window", "location": location},
        )
        if result.failed_hubs:
            raise ForwardingIncomplete(
                f"{rec_type} {location}: hubs {', '.join(sorted(result.failed_hubs))} did not get every event"
            )
        return result

    def finish_backfill(
        self, rec_type: str, start: datetime, end: datetime, newest: datetime | None, days: set[str]
    ) -> None:
        """Record a completed backfill: the watermark moves to `newest` (the newest event time every window
        delivered everywhere) unless it is already past it, and the days it touched become purgeable."""
        old = self.watermark(rec_type)
        progress = _Progress()
        if newest is not None:
            progress.note(newest, everywhere=True)
        result = ForwardResult(rec_type, start, end, old)
        self._save(rec_type, result, progress.watermark(old, end), self._clock(), "backfilled", set(days))

    def _forget_old_days(self, rec_type: str, cutoff: datetime) -> int:
        """Delete the dedup records of every day that ended before `cutoff`: no run fetches them again."""
        entity = self._state.get(FORWARDER_TABLE, rec_type, "state")
        days = _days(entity.properties.get("dedup_days") if entity is not None else None)
        old_days = {day for day in days if _day_end(day) <= cutoff}
        if not old_days:
            return 0
        removed = sum(self._fanout.forget(dedup_stream(rec_type, day)) for day in sorted(old_days))
        for _ in range(5):
            entity = self._state.get(FORWARDER_TABLE, rec_type, "state")
            if entity is None:
                break
            kept = sorted(_days(entity.properties.get("dedup_days")) - old_days)
            change = EntityWrite(rec_type, "state", {**entity.properties, "dedup_days": json.dumps(kept)}, entity.etag)
            try:
                self._state.write(FORWARDER_TABLE, change)
                break
            except ConcurrencyConflict:
                continue
        return removed

    def _people_counter(self, run: _Run, location: str, start: datetime, end: datetime) -> None:
        for page in self._source.view_pages(PEOPLE_COUNTER, location, start, end):
            run.result.pages += 1
            run.result.records += len(page.objs)
            candidates: list[Candidate] = []
            letters: list[DeadLetter] = []
            for record in page.objs:
                try:
                    candidates.append(people_counter_event(record, location))
                except InvalidReading as bad:
                    letters.append(DeadLetter(f"microshare:{PEOPLE_COUNTER}", bad.reason, record))
            self._deliver(run, candidates, letters)

    def _snapshots(self, run: _Run, location: str, start: datetime, end: datetime) -> None:
        hour = start
        while hour < end:
            upper = min(hour + SNAPSHOT_WINDOW, end)
            pages = list(self._source.view_pages(HOURLY_SNAPSHOT, location, hour, upper))
            run.result.pages += len(pages)
            run.result.records += sum(len(page.objs) for page in pages)
            try:
                candidate = snapshot_event(location, hour, upper, pages)
            except InvalidReading as bad:
                letter = DeadLetter(f"microshare:{HOURLY_SNAPSHOT}", bad.reason, [page.objs for page in pages])
                self._deliver(run, [], [letter])
            else:
                self._deliver(run, [] if candidate is None else [candidate], [])
            hour = upper

    def _deliver(self, run: _Run, candidates: list[Candidate], letters: list[DeadLetter]) -> None:
        sessions, result, progress = run
        if letters:
            self._letters.park(letters)
            result.dead_lettered += len(letters)
        by_day: dict[str, list[Candidate]] = {}
        for candidate in candidates:
            by_day.setdefault(_day(candidate.time), []).append(candidate)
        for day, group in by_day.items():
            keyed: list[KeyedEvent] = [(c.key, c.event) for c in group]
            delivered = sessions.for_day(day).deliver(keyed)
            result.events += len(group)
            for hub, outcome in delivered.hubs.items():
                totals = result.hubs[hub]
                totals.sent += outcome.sent
                totals.skipped += outcome.skipped
                totals.too_large += len(outcome.too_large)
            for candidate in group:
                progress.note(candidate.time, candidate.key in delivered.everywhere)

    def _save(
        self,
        rec_type: str,
        result: ForwardResult,
        watermark: datetime | None,
        now: datetime,
        outcome: str,
        days: set[str],
    ) -> None:
        """The watermark only moves forward, even if two runs overlap; totals accumulate."""
        for _ in range(5):
            entity = self._state.get(FORWARDER_TABLE, rec_type, "state")
            properties = dict(entity.properties) if entity is not None else {}
            stored = properties.get("watermark")
            if stored and watermark is not None:
                watermark = max(watermark, parse_timestamp(stored))
            elif stored:
                watermark = parse_timestamp(stored)
            properties.setdefault("first_run_from", format_timestamp(result.start))
            properties["dedup_days"] = json.dumps(sorted(_days(properties.get("dedup_days")) | days))
            properties.update(
                watermark=None if watermark is None else format_timestamp(watermark),
                last_run_at=format_timestamp(now),
                last_run_outcome=outcome,
                last_run_from=format_timestamp(result.start),
                last_run_to=format_timestamp(result.end),
                pages_fetched=int(properties.get("pages_fetched", 0)) + result.pages,
                records_fetched=int(properties.get("records_fetched", 0)) + result.records,
                dead_lettered=int(properties.get("dead_lettered", 0)) + result.dead_lettered,
            )
            for hub, totals in result.hubs.items():
                sent_name, skipped_name = f"sent_{_property_suffix(hub)}", f"skipped_{_property_suffix(hub)}"
                properties[sent_name] = int(properties.get(sent_name, 0)) + totals.sent
                properties[skipped_name] = int(properties.get(skipped_name, 0)) + totals.skipped
            change = EntityWrite(rec_type, "state", properties, None if entity is None else entity.etag)
            try:
                self._state.write(FORWARDER_TABLE, change)
                return
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"forwarder state of {rec_type} kept changing under this run")


def _property_suffix(hub: str) -> str:
    """A hub name as part of a Table property name (letters, digits and '_' only)."""
    return "".join(c if c.isalnum() else "_" for c in hub)


def _days(stored: object) -> set[str]:
    if not isinstance(stored, str) or not stored:
        return set()
    try:
        days = json.loads(stored)
    except ValueError:
        return set()
    return {day for day in days if isinstance(day, str)} if isinstance(days, list) else set()


def _day_end(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day) + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)
