"""Microshare to Event Hubs forwarding that loses nothing and repeats nothing.

- The watermark of a recType (see watermark.py) only moves past events every hub has had, and a run that could
  not fetch everything (Microshare failed part-way) does not move it at all.
- Each run fetches from the watermark minus an overlap, so records that reach Microshare late are still seen.
- Every event has a stable dedup key (see events.py); HubFanout keeps per hub which keys arrived, so the overlap,
  a record repeated on two pages, or a retried run sends nothing twice, and a hub that failed gets only what it
  missed. Keys are forgotten once they are older than the retention and older than anything a run can fetch
  again, so the state stays the same size week after week.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple, Protocol

from shared.microshare.api import HOURLY_SNAPSHOT, PEOPLE_COUNTER
from shared.microshare.client import Page
from shared.microshare.events import Candidate, InvalidRecord, people_counter_event, snapshot_event
from shared.microshare.hub_fanout import FanoutSession, HubFanout, KeyedEvent
from shared.microshare.results import ForwardResult, HubTotals
from shared.microshare.watermark import ForwarderState, WatermarkProgress, WatermarkStore
from shared.ops.log_context import app_logger
from shared.ops.metrics import PipelineMetrics
from shared.readings.dead_letters import DeadLetter, DeadLetterBox
from shared.readings.reading import format_timestamp
from shared.settings import MicroshareSettings
from shared.storage.ports import StateStore

logger = app_logger(__name__)

REC_TYPES = (PEOPLE_COUNTER, HOURLY_SNAPSHOT)
SNAPSHOT_WINDOW = timedelta(hours=1)


class MicroshareSource(Protocol):
    """The part of MicroshareClient the forwarder uses."""

    def locations(self) -> list[str]: ...

    def view_pages(self, rec_type: str, location: str, start: datetime, end: datetime) -> Iterator[Page]: ...


class ForwardingIncomplete(RuntimeError):
    """Some hub did not get every event; what was delivered is recorded and the next run sends the rest."""


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


def _day_end(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day) + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


class _Run(NamedTuple):
    """One run's delivery sessions, its result so far and what its watermark may move to."""

    sessions: _DaySessions
    result: ForwardResult
    progress: WatermarkProgress


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
        self._watermarks = WatermarkStore(state)
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._letters = DeadLetterBox(state, metrics)

    def watermark(self, rec_type: str) -> datetime | None:
        return self._watermarks.read(rec_type).watermark

    def locations(self) -> list[str]:
        return self._source.locations()

    def backfill_due(self, rec_type: str) -> tuple[datetime, datetime] | None:
        """The range a backfill should catch up instead of this timer run, when the gap since the watermark is
        longer than the setting; at most the maximum span (the next timer run starts the next part)."""
        stored = self._watermarks.read(rec_type)
        now = self._clock()
        if stored.watermark is None or now - stored.watermark <= self._settings.backfill_after:
            return None
        start, end = self._window(stored, now)
        return start, min(end, start + self._settings.backfill_max_span)

    def _window(self, stored: ForwarderState, now: datetime) -> tuple[datetime, datetime]:
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
        if stored.rec_type == HOURLY_SNAPSHOT:
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
        stored = self._watermarks.read(rec_type)
        default_start, default_end = self._window(stored, now)
        start, end = start or default_start, end or default_end
        old = stored.watermark
        if old is None and stored.first_run_from is None:
            # Before anything is sent: a run that dies half-way must not let the next one start later.
            stored = self._watermarks.start_first_run(stored, start)
        result = ForwardResult(rec_type, start, end, old, old)
        run = self._new_run(rec_type, result)
        try:
            locations = self._source.locations()
            result.locations = len(locations)
            for location in locations:
                self._fetch_and_deliver(run, location, start, end)
        except Exception as failure:
            self._watermarks.record_run(stored, result, old, now, "failed", run.sessions.days)
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
        saved = self._watermarks.record_run(stored, result, result.watermark_after, now, outcome, run.sessions.days)
        result.forgotten_keys = self._forget_old_days(saved, min(now - self._settings.dedup_retention, start))
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
        return _Run(_DaySessions(self._fanout, rec_type, self._letters), result, WatermarkProgress())

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
        stored = self._watermarks.read(rec_type)
        progress = WatermarkProgress()
        if newest is not None:
            progress.note(newest, everywhere=True)
        result = ForwardResult(rec_type, start, end, stored.watermark)
        watermark = progress.watermark(stored.watermark, end)
        self._watermarks.record_run(stored, result, watermark, self._clock(), "backfilled", set(days))

    def _forget_old_days(self, stored: ForwarderState, cutoff: datetime) -> int:
        """Delete the dedup records of every day that ended before `cutoff`: no run fetches them again."""
        old_days = {day for day in stored.dedup_days if _day_end(day) <= cutoff}
        if not old_days:
            return 0
        removed = sum(self._fanout.forget(dedup_stream(stored.rec_type, day)) for day in sorted(old_days))
        self._watermarks.drop_days(stored, old_days)
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
                except InvalidRecord as bad:
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
            except InvalidRecord as bad:
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
