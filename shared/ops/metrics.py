"""Pipeline metrics kept per process: what GET /api/metrics serves in Prometheus text format, what devhost's
status line shows, and what Application Insights receives when it is configured (shared.ops.app_insights).

Everything is counted per batch, never per reading, except the lag histogram, which takes a whole batch's
lags in one call (LagHistogram.observe_many): the summariser's cost per reading stays a subtraction and a
bisect. Label values that come from data (dead-letter reasons) are capped so a flood of distinct values
cannot grow the registry without bound.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from shared.storage.azure.request_charges import RequestCharges

PREFIX = "sensorpulse"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds from a reading's own timestamp to its summary: sub-second when live, hours after an outage.
LAG_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)
INVOCATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MAX_REASONS = 64  # distinct dead-letter reasons per source; later ones are counted as "other"
MAX_TRACKED_DEVICES = 1_000_000  # device ids this process remembers for the unique-devices gauge
OTHER_REASON = "other"

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series: Prometheus does not need them and they double the output


class LagHistogram(Collector):
    """End-to-end lag (now minus reading time) per source, observed a batch at a time under one lock."""

    name = f"{PREFIX}_lag_seconds"
    documentation = "End-to-end lag: the moment a reading was summarised minus the reading's own timestamp."

    def __init__(self, buckets: Sequence[float] = LAG_BUCKETS) -> None:
        self._bounds = list(buckets)
        self._lock = threading.Lock()
        self._series: dict[str, tuple[list[int], list[float]]] = {}  # source -> (bucket counts, [sum])

    def observe_many(self, source: str, lags: Iterable[float]) -> None:
        counts = [0] * (len(self._bounds) + 1)
        total = 0.0
        bounds = self._bounds
        for lag in lags:
            counts[bisect.bisect_left(bounds, lag)] += 1
            total += lag
        with self._lock:
            kept = self._series.get(source)
            if kept is None:
                kept = self._series[source] = ([0] * len(counts), [0.0])
            for index, count in enumerate(counts):
                kept[0][index] += count
            kept[1][0] += total

    def snapshot(self) -> dict[str, tuple[list[tuple[float, int]], float, int]]:
        """source -> (cumulative (upper bound, count) pairs ending at +Inf, sum, count)."""
        with self._lock:
            series = {source: (list(counts), sums[0]) for source, (counts, sums) in self._series.items()}
        out: dict[str, tuple[list[tuple[float, int]], float, int]] = {}
        for source, (counts, total) in series.items():
            cumulative, running = [], 0
            for bound, count in zip([*self._bounds, float("inf")], counts, strict=True):
                running += count
                cumulative.append((bound, running))
            out[source] = (cumulative, total, running)
        return out

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["source"])
        for source, (cumulative, total, _) in sorted(self.snapshot().items()):
            buckets = [("+Inf" if bound == float("inf") else repr(bound), count) for bound, count in cumulative]
            family.add_metric([source], buckets, total)
        yield family


class _RequestChargeCollector(Collector):
    """Cosmos DB request units from the document store's running totals (absent on the embedded backend)."""

    def __init__(self) -> None:
        self.charges: RequestCharges | None = None

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily

        units = CounterMetricFamily(
            f"{PREFIX}_cosmos_request_units", "Cosmos DB request units spent.", labels=["container", "operation"]
        )
        requests = CounterMetricFamily(
            f"{PREFIX}_cosmos_requests", "Cosmos DB requests made.", labels=["container", "operation"]
        )
        if self.charges is not None:
            for (container, operation), (count, spent) in sorted(self.charges.snapshot().items()):
                units.add_metric([container, operation], spent)
                requests.add_metric([container, operation], count)
        yield units
        yield requests


@dataclass(frozen=True, slots=True)
class Totals:
    """The few figures devhost's status line shows, summed over labels."""

    readings_summarised: float
    summaries_written: float
    dead_letters: float
    failed_invocations: float
    alerts_firing: float
    lag_buckets: tuple[tuple[float, int], ...]  # cumulative (upper bound, count), all sources, ending at +Inf

    def lag_quantile_since(self, earlier: Totals | None, quantile: float) -> float | None:
        """The lag quantile of the readings summarised since `earlier` (since the start when None)."""
        if earlier is None or not earlier.lag_buckets:
            return bucket_quantile(self.lag_buckets, quantile)
        delta = [(b, c - e) for (b, c), (_, e) in zip(self.lag_buckets, earlier.lag_buckets, strict=True)]
        return bucket_quantile(delta, quantile)


def bucket_quantile(cumulative: Sequence[tuple[float, int]], quantile: float) -> float | None:
    """The upper bound of the first bucket holding the quantile (Prometheus' histogram_quantile without the
    interpolation): an honest upper estimate. None when nothing was observed."""
    total = cumulative[-1][1] if cumulative else 0
    if total == 0:
        return None
    wanted = quantile * total
    for bound, count in cumulative:
        if count >= wanted:
            return bound
    return cumulative[-1][0]


class PipelineMetrics:
    """One per process (PROCESS_METRICS); tests and benchmarks make their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(f"{PREFIX}_{name}", documentation, labels, registry=r)

        self.invocations = counter("invocations", "Function invocations by outcome.", ("function", "outcome"))
        self.invocation_seconds = Histogram(
            f"{PREFIX}_invocation_duration_seconds",
            "Function invocation duration.",
            ("function",),
            buckets=INVOCATION_BUCKETS,
            registry=r,
        )
        self.readings_summarised = counter("readings_summarised", "Readings merged into windows.", ("source",))
        self.summaries_written = counter("summaries_written", "Summary documents written.", ("source",))
        self.events_processed = counter("events_processed", "Event Hub events received.", ("hub",))
        self.readings_simulated = counter("readings_simulated", "Readings the simulator wrote.")
        self.readings_ingested = counter("readings_ingested", "Readings accepted by POST /api/readings.")
        self.ingest_rejected = counter("ingest_rejected", "POST /api/readings requests refused.", ("status",))
        self.dead_letters = counter("dead_letters", "Items parked as dead letters.", ("source", "reason"))
        self.forwarder_runs = counter("forwarder_runs", "Microshare forwarder runs.", ("rec_type", "outcome"))
        self.forwarder_pages = counter("forwarder_pages_fetched", "Microshare pages fetched.", ("rec_type",))
        self.forwarder_events = counter("forwarder_events_fetched", "Events built from Microshare.", ("rec_type",))
        self.forwarder_sent = counter("forwarder_events_sent", "Events sent to a hub.", ("rec_type", "hub"))
        self.forwarder_duplicates = counter(
            "forwarder_duplicates_skipped", "Events a hub already had.", ("rec_type", "hub")
        )
        self.backfill_windows = counter(
            "backfill_windows", "Backfill (location, day) windows finished.", ("rec_type", "outcome")
        )
        self.backfill_events = counter("backfill_events_sent", "Events a backfill sent, all hubs.", ("rec_type",))
        self.import_rows = counter("import_rows", "Rows of imported files, by outcome.", ("outcome",))
        self.imports_ended = counter("imports_ended", "Imported files, by how their import ended.", ("state",))
        self.chart_renders = counter("chart_renders", "Dashboard charts drawn (not answered from cache).", ("range",))
        self.alert_transitions = counter(
            "alert_transitions", "Alert state changes that notify (to firing or resolved).", ("severity", "to")
        )
        self.alerts_firing = Gauge(
            f"{PREFIX}_alerts_firing", "Alerts firing now, ours and received, by severity.", ("severity",), registry=r
        )
        self.notifications = counter(
            "alert_notifications", "Webhook deliveries of alert notifications by outcome.", ("outcome",)
        )
        self.unique_devices = Gauge(f"{PREFIX}_unique_devices", "Distinct devices this process has seen.", registry=r)
        self.lag = LagHistogram()
        r.register(self.lag)
        self._charges = _RequestChargeCollector()
        r.register(self._charges)
        self._lock = threading.Lock()
        self._devices: set[str] = set()
        self._reasons: dict[str, set[str]] = {}

    # -- recording ------------------------------------------------------------------------------------

    def track_request_charges(self, charges: RequestCharges) -> None:
        self._charges.charges = charges

    def summarised(self, source: str, readings: int, summaries: int, reading_times_ms: Iterable[int]) -> None:
        """One summariser batch: counts, and the lag of every reading (its time in ms) at this moment."""
        if summaries:
            self.summaries_written.labels(source).inc(summaries)
        if readings:
            self.readings_summarised.labels(source).inc(readings)
            now_ms = time.time() * 1000.0
            self.lag.observe_many(source, ((now_ms - ms) / 1000.0 for ms in reading_times_ms))

    def firing_alerts(self, by_severity: Mapping[str, int]) -> None:
        """The firing alerts as last counted (every severity is set, so one that cleared shows 0)."""
        for severity in ("critical", "warning", "info"):
            self.alerts_firing.labels(severity).set(by_severity.get(severity, 0))

    def dead_lettered(self, source: str, reasons: Iterable[str]) -> None:
        for reason in reasons:
            self.dead_letters.labels(source, self._capped_reason(source, reason)).inc()

    def _capped_reason(self, source: str, reason: str) -> str:
        with self._lock:
            seen = self._reasons.setdefault(source, set())
            if reason in seen:
                return reason
            if len(seen) >= MAX_REASONS:
                return OTHER_REASON
            seen.add(reason)
            return reason

    def devices_seen(self, device_ids: Iterable[str]) -> None:
        with self._lock:
            if len(self._devices) < MAX_TRACKED_DEVICES:
                self._devices.update(device_ids)
            count = len(self._devices)
        self.unique_devices.set(count)

    # -- reading --------------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        from prometheus_client.exposition import generate_latest

        return generate_latest(self.registry)

    def totals(self) -> Totals:
        summed: dict[str, float] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    key = sample.name
                    if sample.name == f"{PREFIX}_invocations_total" and sample.labels.get("outcome") != "failed":
                        continue
                    summed[key] = summed.get(key, 0.0) + sample.value
        merged: list[tuple[float, int]] = []
        for cumulative, _, _ in self.lag.snapshot().values():
            pairs = zip(cumulative, merged or [(b, 0) for b, _ in cumulative], strict=True)
            merged = [(bound, count + more) for (bound, count), (_, more) in pairs]
        return Totals(
            readings_summarised=summed.get(f"{PREFIX}_readings_summarised_total", 0.0),
            summaries_written=summed.get(f"{PREFIX}_summaries_written_total", 0.0),
            dead_letters=summed.get(f"{PREFIX}_dead_letters_total", 0.0),
            failed_invocations=summed.get(f"{PREFIX}_invocations_total", 0.0),
            alerts_firing=sum(
                sample.value
                for family in self.alerts_firing.collect()
                for sample in family.samples
                if sample.name == f"{PREFIX}_alerts_firing"
            ),
            lag_buckets=tuple(merged),
        )


# Per process, as the Prometheus scrape and the status line see them; every invocation counts into it.
PROCESS_METRICS = PipelineMetrics()
