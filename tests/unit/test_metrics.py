"""The per-process metrics: what /api/metrics shows a Prometheus scrape, and the totals devhost's status line
reads. Values are checked through the text format itself, parsed with prometheus_client's own parser."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from shared.ops.metrics import (
    LAG_BUCKETS,
    MAX_REASONS,
    OTHER_REASON,
    PipelineMetrics,
    bucket_quantile,
)
from shared.storage.azure.request_charges import RequestCharges


def scrape(metrics: PipelineMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Sample name and sorted labels -> value, as a Prometheus server would read them."""
    text = metrics.exposition().decode("utf-8")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_summariser_batch_counts_readings_summaries_and_every_readings_lag(frozen_now_ms: int) -> None:
    metrics = PipelineMetrics()
    now_ms = frozen_now_ms
    lags_seconds = [0.1, 0.3, 0.3, 1.5, 7200.0]
    metrics.summarised("cosmos-readings", 5, 3, [now_ms - int(lag * 1000) for lag in lags_seconds])
    samples = scrape(metrics)
    source = (("source", "cosmos-readings"),)
    assert samples[("sensorpulse_readings_summarised_total", source)] == 5
    assert samples[("sensorpulse_summaries_written_total", source)] == 3
    assert samples[("sensorpulse_lag_seconds_count", source)] == 5
    assert math.isclose(samples[("sensorpulse_lag_seconds_sum", source)], sum(lags_seconds), rel_tol=0.01)

    def bucket(le: str) -> float:
        return samples[("sensorpulse_lag_seconds_bucket", (("le", le), ("source", "cosmos-readings")))]

    assert bucket("0.25") == 1
    assert bucket("0.5") == 3
    assert bucket("2.0") == 4
    assert bucket("3600.0") == 4
    assert bucket("21600.0") == 5
    assert bucket("+Inf") == 5


def test_lag_buckets_accumulate_over_batches_and_sources_stay_apart(frozen_now_ms: int) -> None:
    metrics = PipelineMetrics()
    now_ms = frozen_now_ms
    metrics.summarised("a", 2, 2, [now_ms, now_ms])
    metrics.summarised("a", 1, 1, [now_ms - 60_000 * 20])
    metrics.summarised("b", 1, 1, [now_ms])
    samples = scrape(metrics)
    assert samples[("sensorpulse_lag_seconds_count", (("source", "a"),))] == 3
    assert samples[("sensorpulse_lag_seconds_count", (("source", "b"),))] == 1
    assert samples[("sensorpulse_lag_seconds_bucket", (("le", "900.0"), ("source", "a")))] == 2
    assert samples[("sensorpulse_lag_seconds_bucket", (("le", "3600.0"), ("source", "a")))] == 3


def test_dead_letters_are_counted_by_source_and_reason_and_a_flood_of_reasons_is_capped() -> None:
    metrics = PipelineMetrics()
    metrics.dead_lettered("eventhub-telemetry", ["value is not finite", "value is not finite", "missing field: id"])
    metrics.dead_lettered("eventhub-telemetry", [f"reason {n}" for n in range(MAX_REASONS + 10)])
    samples = scrape(metrics)

    def count(reason: str) -> float:
        return samples.get(
            ("sensorpulse_dead_letters_total", (("reason", reason), ("source", "eventhub-telemetry"))), 0.0
        )

    assert count("value is not finite") == 2
    assert count("missing field: id") == 1
    reasons = {labels for (name, labels) in samples if name == "sensorpulse_dead_letters_total"}
    assert len(reasons) == MAX_REASONS + 1  # the first MAX_REASONS distinct reasons, then "other"
    assert count(OTHER_REASON) == 12  # 2 + 74 reasons in all, 64 kept


def test_unique_devices_counts_each_device_once() -> None:
    metrics = PipelineMetrics()
    metrics.devices_seen(["dev-1", "dev-2", "dev-1"])
    metrics.devices_seen(["dev-2", "dev-3"])
    assert scrape(metrics)[("sensorpulse_unique_devices", ())] == 3


def test_cosmos_request_charges_appear_per_container_and_operation() -> None:
    metrics = PipelineMetrics()
    charges = RequestCharges()
    metrics.track_request_charges(charges)
    charges.add("summaries", "upsert", 10.5)
    charges.add("summaries", "upsert", 9.5)
    charges.add("readings", "query", 2.8)
    samples = scrape(metrics)
    upserts = (("container", "summaries"), ("operation", "upsert"))
    assert samples[("sensorpulse_cosmos_request_units_total", upserts)] == 20.0
    assert samples[("sensorpulse_cosmos_requests_total", upserts)] == 2
    query = (("container", "readings"), ("operation", "query"))
    assert samples[("sensorpulse_cosmos_request_units_total", query)] == 2.8


def test_forwarder_and_backfill_families_are_labelled_by_rec_type_and_hub() -> None:
    metrics = PipelineMetrics()
    metrics.forwarder_sent.labels("io.microshare.peoplecounter", "telemetry").inc(7)
    metrics.forwarder_duplicates.labels("io.microshare.peoplecounter", "archive").inc(2)
    metrics.backfill_windows.labels("io.microshare.peoplecounter", "ok").inc()
    samples = scrape(metrics)
    pc = ("rec_type", "io.microshare.peoplecounter")
    assert samples[("sensorpulse_forwarder_events_sent_total", (("hub", "telemetry"), pc))] == 7
    assert samples[("sensorpulse_forwarder_duplicates_skipped_total", (("hub", "archive"), pc))] == 2
    assert samples[("sensorpulse_backfill_windows_total", (("outcome", "ok"), pc))] == 1


def test_the_text_format_names_every_family_with_help_and_type() -> None:
    text = PipelineMetrics().exposition().decode("utf-8")
    for family in (
        "sensorpulse_invocations",
        "sensorpulse_readings_summarised",
        "sensorpulse_events_processed",
        "sensorpulse_dead_letters",
        "sensorpulse_lag_seconds",
        "sensorpulse_cosmos_request_units",
        "sensorpulse_forwarder_pages_fetched",
        "sensorpulse_forwarder_events_sent",
        "sensorpulse_forwarder_duplicates_skipped",
        "sensorpulse_backfill_windows",
        "sensorpulse_unique_devices",
    ):
        assert f"# HELP {family}" in text
        assert f"# TYPE {family}" in text


def test_totals_sum_over_labels_and_count_only_failed_invocations() -> None:
    metrics = PipelineMetrics()
    metrics.summarised("a", 3, 2, [])
    metrics.summarised("b", 4, 1, [])
    metrics.invocations.labels("summarise_readings", "succeeded").inc(5)
    metrics.invocations.labels("summarise_readings", "failed").inc(2)
    metrics.dead_lettered("a", ["x", "y"])
    totals = metrics.totals()
    assert totals.readings_summarised == 7
    assert totals.summaries_written == 3
    assert totals.failed_invocations == 2
    assert totals.dead_letters == 2


def test_lag_quantiles_since_an_earlier_reading_see_only_the_readings_after_it(frozen_now_ms: int) -> None:
    metrics = PipelineMetrics()
    now_ms = frozen_now_ms
    metrics.summarised("a", 100, 1, [now_ms - 3_000_000] * 100)  # 50 minutes behind: an old backlog
    before = metrics.totals()
    metrics.summarised("a", 10, 1, [now_ms - 200] * 10)  # then live
    after = metrics.totals()
    assert after.lag_quantile_since(before, 0.95) == 0.25
    assert after.lag_quantile_since(None, 0.5) == 3600.0  # since the start: the backlog dominates
    assert after.lag_quantile_since(after, 0.5) is None  # nothing new


def test_bucket_quantile_is_the_upper_bound_of_the_bucket_holding_it() -> None:
    cumulative = [(bound, 0) for bound in LAG_BUCKETS[:2]] + [(1.0, 50), (2.0, 90), (5.0, 100), (math.inf, 100)]
    assert bucket_quantile(cumulative, 0.5) == 1.0
    assert bucket_quantile(cumulative, 0.9) == 2.0
    assert bucket_quantile(cumulative, 0.95) == 5.0
    assert bucket_quantile([(1.0, 0), (math.inf, 0)], 0.5) is None
    assert bucket_quantile([(1.0, 0), (math.inf, 4)], 0.5) == math.inf
