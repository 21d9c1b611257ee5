"""Summariser throughput on the embedded SQLite backend, against the query-per-sensor reference method.

1,000 sensors x 20 readings, ordered by time as a change feed delivers them and cut into batches of 500
(so a batch holds about one reading for each of 500 sensors). For every batch the readings are first
written to `readings`, untimed and the same for both methods; then only the method itself is timed:

* ours: Summariser.apply as the change-feed trigger calls it (with the reading rules of the app's default
  settings, each document judged as of its `_ts`), window state If-Match, one summary per changed series, no query;
* reference: per changed sensor, a TOP-10 query on `readings` by timestamp, stats, and a new summary with a
  random uuid id, all summaries of the batch in one upsert_many.

Both then replay every batch a second time (ours with a fresh Summariser, as after a restart, so windows
come from storage): our summary count must not move, the reference's doubles.
"""

from __future__ import annotations

import contextlib
import io
import random
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import log, machine, reading_document
from devhost.console import app_records_as_json
from shared.alerts.rulebook import RuleBook
from shared.alerts.rules import AlertRule, parse_rule
from shared.alerts.store import AlertStore
from shared.alerts.thresholds import ThresholdAlerts
from shared.intake.batches import written_at
from shared.ops.invocation import observed
from shared.ops.metrics import PipelineMetrics
from shared.readings.reading import format_timestamp
from shared.readings.rules import DEFAULT_METRICS, ReadingPolicy
from shared.readings.summariser import BatchOutcome, Summariser, WrittenSummary
from shared.storage.names import PARTITION_KEY_PATHS, READINGS, SUMMARIES
from shared.storage.ports import ChangeBatch, ConcurrencyConflict, Document, Entity, EntityPage, EntityWrite
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.state import SqliteStateStore

SENSORS = 1_000
READINGS_PER_SENSOR = 20
BATCH_SIZE = 500  # the summarise_readings trigger's max_items_per_invocation
WINDOW_SIZE = 10
TTL_SECONDS = 604_800  # local.settings.sample.json's READING_TTL_SECONDS and SUMMARY_TTL_SECONDS
TARGET_READINGS_PER_SECOND = 20_000.0
TARGET_OBSERVABILITY_COST_PERCENT = 5.0
TARGET_ALERTS_COST_PERCENT = 10.0
ALERT_RULES = 100
SEED = 20_240_601
REPEATS = 5  # each method runs this many times on fresh databases; the median run is reported

Batch = list[dict[str, Any]]


def make_batches() -> list[Batch]:
    """Readings with irregular 1-10 s gaps per sensor (as the simulator emits), in feed order, batched; each carries
    the `_ts` the feed gives it (written a second after it was taken). They start an hour ago, so that they are
    within READING_MAX_AGE_SECONDS, as a live stream is; ids and values do not depend on the start."""
    rng = random.Random(SEED)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    readings: list[tuple[datetime, dict[str, Any]]] = []
    for n in range(1, SENSORS + 1):
        sensor_id = f"sensor-{n:04d}"
        moment = start + timedelta(milliseconds=rng.randint(0, 10_000))
        value = rng.uniform(20.0, 30.0)
        for sequence in range(READINGS_PER_SENSOR):
            value = min(40.0, max(15.0, value + rng.gauss(0.0, 0.6)))
            document = reading_document(sensor_id, sequence, value, moment, TTL_SECONDS)
            document["_ts"] = int(moment.timestamp()) + 1  # the store's to set: upsert_many leaves it out
            readings.append((moment, document))
            moment += timedelta(milliseconds=rng.randint(1_000, 10_000))
    readings.sort(key=lambda pair: (pair[0], pair[1]["id"]))  # the feed's order is the write order
    docs = [doc for _, doc in readings]
    return [docs[i : i + BATCH_SIZE] for i in range(0, len(docs), BATCH_SIZE)]


class _TimedDocuments:
    """The document store, with the time spent in each kind of call added up (for the breakdown)."""

    def __init__(self, inner: SqliteDocumentStore, seconds: defaultdict[str, float]) -> None:
        self._inner = inner
        self._seconds = seconds

    def upsert_many(self, container: str, documents: Sequence[Mapping[str, Any]]) -> None:
        began = time.perf_counter()
        self._inner.upsert_many(container, documents)
        self._seconds[f"{container}_upserts"] += time.perf_counter() - began

    def insert_new(self, container: str, documents: Sequence[Mapping[str, Any]]) -> list[Document]:
        return self._inner.insert_new(container, documents)

    def read(self, container: str, partition_key: str, document_id: str) -> Document | None:
        return self._inner.read(container, partition_key, document_id)

    def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        return self._inner.read_many(container, keys)

    def latest(
        self,
        container: str,
        partition_key: str,
        order_by: str,
        limit: int,
        equals: Mapping[str, str] | None = None,
        since: str | None = None,
        fields: Sequence[str] | None = None,
        until: str | None = None,
    ) -> list[Document]:
        began = time.perf_counter()
        found = self._inner.latest(container, partition_key, order_by, limit, equals, since, fields, until)
        self._seconds[f"{container}_queries"] += time.perf_counter() - began
        return found

    def read_changes(self, container: str, continuation: str | None, max_items: int) -> ChangeBatch:
        return self._inner.read_changes(container, continuation, max_items)


class _TimedState:
    def __init__(self, inner: SqliteStateStore, seconds: defaultdict[str, float]) -> None:
        self._inner = inner
        self._seconds = seconds

    def get(self, table: str, partition_key: str, row_key: str) -> Entity | None:
        began = time.perf_counter()
        found = self._inner.get(table, partition_key, row_key)
        self._seconds[f"{table}_reads"] += time.perf_counter() - began
        return found

    def query(self, table: str, partition_key: str | None = None) -> list[Entity]:
        return self._inner.query(table, partition_key)

    def query_prefix(self, table: str, partition_key: str, prefix: str) -> list[Entity]:
        return self._inner.query_prefix(table, partition_key, prefix)

    def query_page(self, table: str, limit: int, continuation: str | None = None) -> EntityPage:
        return self._inner.query_page(table, limit, continuation)

    def upsert(self, table: str, partition_key: str, row_key: str, properties: Mapping[str, Any]) -> Entity:
        return self._inner.upsert(table, partition_key, row_key, properties)

    def write(self, table: str, change: EntityWrite) -> Entity:
        return self._inner.write(table, change)

    def write_many(self, table: str, changes: Sequence[EntityWrite]) -> list[Entity | ConcurrencyConflict]:
        began = time.perf_counter()
        results = self._inner.write_many(table, changes)
        self._seconds[f"{table}_writes"] += time.perf_counter() - began
        return results

    def write_atomically(self, table: str, changes: Sequence[EntityWrite]) -> list[Entity]:
        return self._inner.write_atomically(table, changes)

    def delete(self, table: str, partition_key: str, row_key: str) -> None:
        self._inner.delete(table, partition_key, row_key)


def _breakdown(total: float, seconds: Mapping[str, float]) -> dict[str, float]:
    parts = {name: round(value, 3) for name, value in sorted(seconds.items())}
    parts["python_and_other"] = round(total - sum(seconds.values()), 3)
    return parts


class ReferenceSummariser:
    """The method we compare against: query the latest N readings per changed sensor, write a fresh summary."""

    def __init__(self, documents: _TimedDocuments, window_size: int) -> None:
        self._documents = documents
        self._window_size = window_size

    def apply(self, batch: Sequence[dict[str, Any]]) -> int:
        series = sorted({(str(doc["sensor_id"]), str(doc["metric"])) for doc in batch})
        now = format_timestamp(datetime.now(UTC))
        summaries: list[dict[str, Any]] = []
        for sensor_id, metric in series:
            latest = self._documents.latest(READINGS, sensor_id, "timestamp", self._window_size, {"metric": metric})
            if not latest:
                continue
            values = [float(doc["value"]) for doc in latest]
            summaries.append(
                {
                    "id": str(uuid.uuid4()),
                    "sensor_id": sensor_id,
                    "metric": metric,
                    "unit": latest[0].get("unit", ""),
                    "count": len(values),
                    "min": min(values),
                    "max": max(values),
                    "avg": sum(values) / len(values),
                    "window_start": latest[-1]["timestamp"],
                    "window_end": latest[0]["timestamp"],
                    "newest_reading_id": latest[0]["id"],
                    "computed_at": now,
                    "ttl": TTL_SECONDS,
                }
            )
        self._documents.upsert_many(SUMMARIES, summaries)
        return len(summaries)


def _open(directory: Path) -> tuple[SqliteDatabase, SqliteDocumentStore, SqliteStateStore]:
    database = SqliteDatabase.in_directory(directory)
    return database, SqliteDocumentStore(database, PARTITION_KEY_PATHS), SqliteStateStore(database)


# The triggers' rules under the default settings: READING_MAX_AGE_SECONDS is READING_TTL_SECONDS' week.
TRIGGER_POLICY_OF_THE_APP = ReadingPolicy.trigger(DEFAULT_METRICS, timedelta(seconds=TTL_SECONDS))


def _as_the_trigger(summariser: Summariser, batch: Batch) -> BatchOutcome:
    """A change-feed batch as BatchIntake hands it over: each document judged as of its `_ts`."""
    return summariser.apply(batch, source="bench", entered_at=written_at(batch, datetime.now(UTC)))


class _Invocation:
    """The context the Functions host hands the trigger: only its id is used."""

    def __init__(self) -> None:
        self.invocation_id = str(uuid.uuid4())


def alert_rules() -> list[AlertRule]:
    """A hundred rules as a fleet's operators might keep them: 50 thresholds on every sensor and 40 on groups of
    ten, set above and below the rooms' usual range so that the walks drifting furthest breach some of them (a few
    dozen alerts go pending and fire; most summaries breach nothing), and 10 silences (judged by their timer, not
    in the batch). Every series is watched by 51 threshold rules."""
    rules: list[AlertRule] = []
    for n in range(40):
        field = ("avg", "min", "max")[n % 3]
        high = 33.0 + n * 0.25
        body = {"field": field, "op": ">", "value": high, "clear": high - 1, "for_summaries": 1 + n % 3}
        rules.append(parse_rule(f"hot-{n}", {"kind": "threshold", "metric": "temperature", **body}))
    for n in range(10):
        low = 17.0 - n * 0.25
        body = {"field": "min", "op": "<", "value": low, "clear": low + 1, "for_seconds": 20}
        rules.append(parse_rule(f"cold-{n}", {"kind": "threshold", "metric": "temperature", **body}))
    for n in range(40):
        body = {"sensors": f"sensor-0{n:02d}?", "op": ">=", "value": 34.0, "clear": 33.0, "for_summaries": 2}
        rules.append(parse_rule(f"room-{n}", {"kind": "threshold", "metric": "temperature", **body}))
    for n in range(10):
        body = {"sensors": f"sensor-0{n}*", "for_seconds": 600}
        rules.append(parse_rule(f"quiet-{n}", {"kind": "silence", "metric": "temperature", **body}))
    assert len(rules) == ALERT_RULES
    return rules


class _TimedWatcher:
    """The threshold judge, with the time spent in it added up: the alerts' own cost within the same run."""

    def __init__(self, inner: ThresholdAlerts, seconds: defaultdict[str, float]) -> None:
        self._inner = inner
        self._seconds = seconds

    def forget(self, key: tuple[str, str]) -> None:
        self._inner.forget(key)

    def judge(self, summaries: Sequence[WrittenSummary]) -> int:
        began = time.perf_counter()
        try:
            return self._inner.judge(summaries)
        finally:
            self._seconds["alerts_judging"] += time.perf_counter() - began


def _run_ours(directory: Path, batches: list[Batch], observe: bool = False, alerts: bool = False) -> dict[str, Any]:
    """Ours; with `observe`, exactly as the trigger runs it: metrics, the invocation scope, the JSON log line; with
    `alerts`, judging ALERT_RULES rules inside each batch as the app does."""
    database, documents, state = _open(directory)
    try:
        seconds: defaultdict[str, float] = defaultdict(float)
        timed_state = _TimedState(state, seconds)
        watcher: _TimedWatcher | None = None
        if alerts:
            store = AlertStore(timed_state)
            for rule in alert_rules():
                store.put_rule(rule, "2025-01-01T00:00:00.000Z")
            watcher = _TimedWatcher(ThresholdAlerts(store, RuleBook(store)), seconds)
        summariser = Summariser(
            _TimedDocuments(documents, seconds),
            timed_state,
            WINDOW_SIZE,
            TTL_SECONDS,
            metrics=PipelineMetrics() if observe else None,
            policy=TRIGGER_POLICY_OF_THE_APP,
            watcher=watcher,
        )
        transitions = 0
        elapsed = 0.0
        readings_write = 0.0
        written = 0
        with app_records_as_json(io.StringIO()) if observe else contextlib.nullcontext():
            for batch in batches:
                began = time.perf_counter()
                documents.upsert_many(READINGS, batch)  # untimed: the same work for both methods
                readings_write += time.perf_counter() - began
                began = time.perf_counter()
                if observe:
                    with observed("summarise_readings", _Invocation(), trigger="cosmos"):
                        outcome = _as_the_trigger(summariser, batch)
                        outcome.log("bench", trigger="cosmos")
                else:
                    outcome = _as_the_trigger(summariser, batch)
                elapsed += time.perf_counter() - began
                written += outcome.summaries_written
                if outcome.dead_lettered:
                    raise RuntimeError(f"{outcome.dead_lettered} bench readings were dead-lettered")
        first_pass = documents.count(SUMMARIES)
        if alerts:
            outbox = AlertStore(state).outbox()
            transitions = len(outbox)
            firing = sum(1 for row in outbox if row.row_key.endswith("-firing"))
            log(f"alerts: {transitions} notifications written ({firing} firing)")
        # A restart: windows from storage.
        replayer = Summariser(documents, state, WINDOW_SIZE, TTL_SECONDS, policy=TRIGGER_POLICY_OF_THE_APP)
        began = time.perf_counter()
        rewritten = sum(_as_the_trigger(replayer, batch).summaries_written for batch in batches)
        replay = time.perf_counter() - began
        return {
            "seconds": elapsed,
            "breakdown": _breakdown(elapsed, seconds),
            "readings_write_seconds": readings_write,
            "summaries_written": written,
            "summary_documents": first_pass,
            "summary_documents_after_replay": documents.count(SUMMARIES),
            "summaries_written_by_replay": rewritten,
            "replay_seconds": replay,
            "alert_notifications": transitions,
        }
    finally:
        database.close()


def _run_reference(directory: Path, batches: list[Batch]) -> dict[str, Any]:
    database, documents, _ = _open(directory)
    try:
        seconds: defaultdict[str, float] = defaultdict(float)
        reference = ReferenceSummariser(_TimedDocuments(documents, seconds), WINDOW_SIZE)
        elapsed = 0.0
        written = 0
        for batch in batches:
            documents.upsert_many(READINGS, batch)  # untimed, as for ours
            began = time.perf_counter()
            written += reference.apply(batch)
            elapsed += time.perf_counter() - began
        first_pass = documents.count(SUMMARIES)
        breakdown = _breakdown(elapsed, seconds)
        for batch in batches:  # the readings are stored already; a redelivery only re-runs the method
            reference.apply(batch)
        return {
            "seconds": elapsed,
            "breakdown": breakdown,
            "summaries_written": written,
            "summary_documents": first_pass,
            "summary_documents_after_replay": documents.count(SUMMARIES),
        }
    finally:
        database.close()


def run() -> dict[str, Any]:
    batches = make_batches()
    total = sum(len(batch) for batch in batches)
    runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    observed_runs: list[dict[str, Any]] = []
    alerting_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-summariser-") as tmp:
        log(f"{total} readings in {len(batches)} batches; {REPEATS} runs of each method, alternating")
        for n in range(REPEATS):
            # Ours, ours-observed and ours-with-alerts take turns first, so none always follows another.
            variants = {
                "ours": lambda n=n: _run_ours(Path(tmp) / f"ours-{n}", batches),
                "observed": lambda n=n: _run_ours(Path(tmp) / f"observed-{n}", batches, observe=True),
                "alerts": lambda n=n: _run_ours(Path(tmp) / f"alerts-{n}", batches, alerts=True),
            }
            order = list(variants)[n % 3 :] + list(variants)[: n % 3]
            done = {name: variants[name]() for name in order}
            ours, watched, alerting = done["ours"], done["observed"], done["alerts"]
            reference = _run_reference(Path(tmp) / f"reference-{n}", batches)
            log(
                f"run {n + 1}: ours {ours['seconds']:.2f} s, with metrics and logs {watched['seconds']:.2f} s, "
                f"with {ALERT_RULES} alert rules {alerting['seconds']:.2f} s, reference {reference['seconds']:.2f} s"
            )
            runs.append((ours, reference))
            observed_runs.append(watched)
            alerting_runs.append(alerting)
    # The median run of each method: a shared machine's noise moves single runs by 20% either way.
    ours = sorted((o for o, _ in runs), key=lambda o: float(o["seconds"]))[REPEATS // 2]
    reference = sorted((r for _, r in runs), key=lambda r: float(r["seconds"]))[REPEATS // 2]
    watched = sorted(observed_runs, key=lambda o: float(o["seconds"]))[REPEATS // 2]
    alerting = sorted(alerting_runs, key=lambda o: float(o["seconds"]))[REPEATS // 2]
    rate = total / ours["seconds"]
    alerting_rate = total / alerting["seconds"]
    # The cost of alerts from each run's own pair (ours and ours-with-alerts ran back to back), the median pair:
    # the machine's drift between runs moves both alike.
    pair_costs = sorted(
        (1.0 - float(o["seconds"]) / float(a["seconds"])) * 100.0 for (o, _), a in zip(runs, alerting_runs, strict=True)
    )
    paired_cost = pair_costs[REPEATS // 2]
    # Measured inside each run: the share of the summariser's time spent judging alerts (state writes included),
    # which is what they take from its throughput; the median run.
    judging = sorted(
        float(a["breakdown"].get("alerts_judging", 0.0)) / float(a["seconds"]) * 100.0 for a in alerting_runs
    )
    alerts_cost = judging[REPEATS // 2]
    observed_rate = total / watched["seconds"]
    cost_percent = (1.0 - observed_rate / rate) * 100.0
    reference_rate = total / reference["seconds"]
    idempotent = ours["summary_documents_after_replay"] == ours["summary_documents"]
    return {
        "bench": "summariser",
        "backend": "embedded sqlite (WAL, synchronous=NORMAL), one database file per method",
        "readings": total,
        "sensors": SENSORS,
        "readings_per_sensor": READINGS_PER_SENSOR,
        "batches": len(batches),
        "batch_size": BATCH_SIZE,
        "window_size": WINDOW_SIZE,
        "readings_writes": "written to `readings` before each batch in both methods, excluded from both timings",
        "readings_write_seconds_untimed": round(ours["readings_write_seconds"], 3),
        "seconds": round(ours["seconds"], 3),
        "readings_per_second": round(rate, 1),
        "runs_readings_per_second": [round(total / o["seconds"], 1) for o, _ in runs],
        "breakdown_seconds": ours["breakdown"],
        "summary_documents": ours["summary_documents"],
        "reference_seconds": round(reference["seconds"], 3),
        "reference_readings_per_second": round(reference_rate, 1),
        "reference_runs_readings_per_second": [round(total / r["seconds"], 1) for _, r in runs],
        "reference_breakdown_seconds": reference["breakdown"],
        "speedup": round(rate / reference_rate, 2),
        "reference_summary_documents": reference["summary_documents"],
        "replay": "every batch delivered a second time; ours through a fresh Summariser (windows read from storage)",
        "summary_documents_after_replay": ours["summary_documents_after_replay"],
        "summaries_written_by_replay": ours["summaries_written_by_replay"],
        "replay_readings_per_second": round(total / ours["replay_seconds"], 1),
        "reference_summary_documents_after_replay": reference["summary_documents_after_replay"],
        "idempotent": idempotent,
        "observed": "the same, run as the trigger runs it: metrics, invocation scope and its JSON log line",
        "observed_readings_per_second": round(observed_rate, 1),
        "observed_runs_readings_per_second": [round(total / o["seconds"], 1) for o in observed_runs],
        "observability_cost_percent": round(cost_percent, 2),
        "target": {
            "readings_per_second_min": TARGET_READINGS_PER_SECOND,
            "observability_cost_percent_max": TARGET_OBSERVABILITY_COST_PERCENT,
            "alerts_cost_percent_max": TARGET_ALERTS_COST_PERCENT,
        },
        "meets_target": rate >= TARGET_READINGS_PER_SECOND and idempotent,
        "observability_meets_target": cost_percent <= TARGET_OBSERVABILITY_COST_PERCENT,
        "alerts": f"the same with {ALERT_RULES} alert rules (90 thresholds judged in the batch, 10 silences)",
        "alerts_readings_per_second": round(alerting_rate, 1),
        "alerts_runs_readings_per_second": [round(total / o["seconds"], 1) for o in alerting_runs],
        "alerts_breakdown_seconds": alerting["breakdown"],
        "alert_notifications_written": alerting["alert_notifications"],
        "alerts_cost_percent": round(alerts_cost, 2),
        "alerts_cost": "time spent judging (state writes included) over the summariser's time, in the same run",
        "alerts_runs_cost_percent": [round(cost, 2) for cost in judging],
        "alerts_paired_cost_percent": round(paired_cost, 2),
        "alerts_paired": "1 - throughput with alerts / without, run back to back; the median pair (noisy here)",
        "alerts_meet_target": alerts_cost <= TARGET_ALERTS_COST_PERCENT,
        "machine": machine(),
    }
