"""Application Insights through OpenTelemetry, when APPLICATIONINSIGHTS_CONNECTION_STRING is set; nothing at
all when it is not (the exporter and the OpenTelemetry SDK are not even imported, so no thread, no network, no
warning; only the OpenTelemetry API is, by azure-functions-durable itself).

What is sent: a span per invocation (shared.ops.invocation), the app's log records with their fields as custom
dimensions, the Azure SDK and requests dependencies, and every metric of shared.ops.metrics under its Prometheus
name (counters as `<name>_total`, the lag histogram as `_bucket` with an `le` dimension, `_sum` and
`_count`), read from the same registry that /api/metrics serves.

In Azure the exporter authenticates with the app's managed identity: APPLICATIONINSIGHTS_AUTHENTICATION_STRING
(`Authorization=AAD;ClientId=<id>`, the form the Functions host reads) names it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from shared.ops.log_context import APP_LOGGER, LogFieldsFilter
from shared.ops.metrics import PipelineMetrics
from shared.storage.azure.clients import credential, parse_pairs

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from opentelemetry.metrics import CallbackOptions, Observation

CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # the exporter's test: lower case

_lock = threading.Lock()
_enabled = False


class MonitoringSettingError(ValueError):
    """A setting for Application Insights is malformed; the message never holds the setting's value."""


def monitoring_enabled() -> bool:
    return _enabled


def exporter_credential(environ: Mapping[str, str]) -> TokenCredential | None:
    """The identity named by APPLICATIONINSIGHTS_AUTHENTICATION_STRING (the process's one credential: the
    managed identity in Azure), or None for key-based ingestion (a resource that still accepts it)."""
    text = environ.get(AUTHENTICATION_STRING, "").strip()
    if not text:
        return None
    pairs = parse_pairs(text)
    if pairs.get("authorization", "").upper() != "AAD":
        raise MonitoringSettingError(f"{AUTHENTICATION_STRING} must say Authorization=AAD")
    return credential(pairs.get("clientid") or None)


def _check_connection_string(connection_string: str) -> None:
    """The exporter's own check of the instrumentation key, made first so its error cannot echo the value."""
    key = parse_pairs(connection_string).get("instrumentationkey", "")
    if not key:
        raise MonitoringSettingError(f"{CONNECTION_STRING} has no InstrumentationKey")
    if not _GUID.fullmatch(key):  # not .lower(): the exporter refuses an upper-case key
        raise MonitoringSettingError(f"{CONNECTION_STRING}: the InstrumentationKey is not a GUID")


def configure_monitoring(environ: Mapping[str, str], metrics: PipelineMetrics) -> bool:
    """Start exporting to Application Insights if its connection string is set; once per process."""
    global _enabled
    connection_string = environ.get(CONNECTION_STRING, "").strip()
    if not connection_string:
        return False
    _check_connection_string(connection_string)
    with _lock:
        if _enabled:
            return True
        from azure.monitor.opentelemetry import configure_azure_monitor

        try:
            configure_azure_monitor(
                connection_string=connection_string,
                credential=exporter_credential(environ),
                logger_name=APP_LOGGER,  # the app's own records; the worker's and the SDKs' stay with the host
            )
        except ValueError:
            # The exporter's own parse refuses what our check let through (a stray `;`, an `=` in a value);
            # its message may quote the setting, so it is not passed on.
            raise MonitoringSettingError(f"{CONNECTION_STRING} is malformed") from None
        for handler in logging.getLogger(APP_LOGGER).handlers:
            if not any(isinstance(f, LogFieldsFilter) for f in handler.filters):
                handler.addFilter(LogFieldsFilter())
        _bridge_metrics(metrics)
        _enabled = True
        return True


class _RegistryReader:
    """One registry collection shared by every instrument's callback within an export (they run together)."""

    def __init__(self, metrics: PipelineMetrics, max_age_seconds: float = 0.5) -> None:
        self._metrics = metrics
        self._max_age = max_age_seconds
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._samples: dict[str, list[tuple[dict[str, str], float]]] = {}

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        with self._lock:
            if time.monotonic() - self._read_at > self._max_age:
                fresh: dict[str, list[tuple[dict[str, str], float]]] = {}
                for family in self._metrics.registry.collect():
                    for sample in family.samples:
                        fresh.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
                self._samples, self._read_at = fresh, time.monotonic()
            return self._samples.get(name, [])


def sample_names(metrics: PipelineMetrics) -> dict[str, str]:
    """Every sample name the registry exports -> 'counter' (only ever grows) or 'gauge'."""
    kinds: dict[str, str] = {}
    for family in metrics.registry.collect():
        if family.type == "counter":
            kinds[f"{family.name}_total"] = "counter"
        elif family.type == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                kinds[f"{family.name}{suffix}"] = "counter"
        elif family.type == "gauge":
            kinds[family.name] = "gauge"
    return kinds


def _bridge_metrics(metrics: PipelineMetrics) -> None:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.metrics import Observation

    meter = otel_metrics.get_meter(APP_LOGGER)
    reader = _RegistryReader(metrics)

    def observe(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(value, labels) for labels, value in reader.samples(name)]

        return callback

    for name, kind in sample_names(metrics).items():
        create: Callable[..., Any] = (
            meter.create_observable_counter if kind == "counter" else meter.create_observable_gauge
        )
        create(name, callbacks=[observe(name)])
