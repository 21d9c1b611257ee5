"""Without APPLICATIONINSIGHTS_CONNECTION_STRING the app runs exactly as before monitoring existed: the exporter and
the OpenTelemetry SDK are never imported, no thread starts, nothing warns; and the settings that turn it on are
checked without ever showing their values."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential

from shared.ops.app_insights import (
    AUTHENTICATION_STRING,
    CONNECTION_STRING,
    MonitoringSettingError,
    configure_monitoring,
    exporter_credential,
    monitoring_enabled,
    sample_names,
)
from shared.ops.metrics import PipelineMetrics

REPO = Path(__file__).resolve().parents[2]
MARKER = "Zq7MonitorLeak"
KNOWN_THREADS = {"MainThread", "sqlite-checkpoint"}
# Imported by monitoring only: the distro, the exporter, the SDK, the instrumentations.
MONITORING_MODULES = ("azure.monitor", "opentelemetry.sdk", "opentelemetry.instrumentation", "opentelemetry.exporter")

# Runs in a fresh interpreter with -W error: the app's import, one batch through summarise_readings as the worker
# would call it, and an invocation outside any trigger; then reports what it imported and which threads run.
SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, types
    from datetime import UTC, datetime, timedelta

    import azure.durable_functions  # imports the OpenTelemetry API itself: what the app adds is what counts
    def otel_modules():
        return {m for m in sys.modules if m.split(".")[0] == "opentelemetry" or m.startswith("azure.monitor")}
    baseline = otel_modules()

    import azure.functions as func
    import function_app
    from shared.ops.invocation import observed
    from shared.ops.metrics import PROCESS_METRICS

    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    summarise = functions["summarise_readings"].get_user_function()
    now = datetime.now(UTC)
    documents = func.DocumentList(
        func.Document.from_dict({
            "id": f"sensor-01-temperature-{second}",
            "sensor_id": "sensor-01",
            "metric": "temperature",
            "value": 20.0 + second,
            "unit": "°C",
            "timestamp": (now - timedelta(seconds=10 - second)).isoformat().replace("+00:00", "Z"),
            "source": "simulator",
        })
        for second in range(3)
    )
    with observed("f", None):
        summarise(documents, types.SimpleNamespace(invocation_id="00000000-0000-0000-0000-000000000001"))

    from opentelemetry import trace
    print(json.dumps({
        "added_modules": sorted(otel_modules() - baseline),
        "tracer_provider": type(trace.get_tracer_provider()).__name__,
        "threads": sorted(t.name for t in threading.enumerate()),
        "readings_summarised": PROCESS_METRICS.totals().readings_summarised,
        "invocations": {
            f"{s.labels['function']}/{s.labels['outcome']}": s.value
            for family in PROCESS_METRICS.registry.collect() if family.name == "sensorpulse_invocations"
            for s in family.samples if s.name.endswith("_total")
        },
    }))
    """
)


def run_app_without_monitoring(data_dir: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("APPLICATIONINSIGHTS_")}
    environ.update({"STORAGE_BACKEND": "embedded", "EMBEDDED_DATA_DIR": str(data_dir), "PYTHONWARNINGS": "error"})
    finished = subprocess.run(
        [sys.executable, "-W", "error", "-c", SCRIPT],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = finished.stdout.strip().splitlines()
    report: dict[str, Any] = json.loads(lines[-1]) if finished.returncode == 0 and lines else {}
    return finished, report


def test_the_app_without_a_connection_string_imports_no_exporter_starts_no_thread_and_warns_nothing(
    tmp_path: Path,
) -> None:
    finished, report = run_app_without_monitoring(tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stderr == ""  # -W error: a warning would have failed the run; nothing else may be said
    # The batch really ran, through the app's own function and shared.ops.invocation, both as succeeded.
    assert report["readings_summarised"] == 3
    assert report["invocations"] == {"summarise_readings/succeeded": 1.0, "f/succeeded": 1.0}
    # The app added no OpenTelemetry module to what azure.durable_functions imports, and set no provider.
    assert report["added_modules"] == []
    assert report["tracer_provider"] == "ProxyTracerProvider"  # the API's default: nothing configured
    unknown = set(report["threads"]) - KNOWN_THREADS
    assert not unknown, f"threads running with monitoring off: {sorted(unknown)} (the app's own? add to KNOWN)"


def test_the_check_of_added_modules_would_see_the_exporter(tmp_path: Path) -> None:
    """The check above can fail: importing the distro, as configure_monitoring does, shows in the report."""
    modified = SCRIPT.replace("import function_app\n", "import function_app\nimport azure.monitor.opentelemetry\n")
    assert modified != SCRIPT
    finished = subprocess.run(
        [sys.executable, "-c", modified],
        cwd=REPO,
        env={**os.environ, "STORAGE_BACKEND": "embedded", "EMBEDDED_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    added = json.loads(finished.stdout.strip().splitlines()[-1])["added_modules"]
    assert any(name.startswith(MONITORING_MODULES) for name in added), added


# -- shared.ops.app_insights's settings -------------------------------------------------------------------------------


def test_without_a_connection_string_monitoring_stays_off() -> None:
    metrics = PipelineMetrics()
    assert configure_monitoring({}, metrics) is False
    assert configure_monitoring({CONNECTION_STRING: "  "}, metrics) is False
    assert monitoring_enabled() is False


@pytest.mark.parametrize(
    "value",
    [
        f"IngestionEndpoint=https://{MARKER}.in.applicationinsights.azure.com/",
        f"{MARKER}-pasted-without-a-name",
        f"InstrumentationKeyX{MARKER}",
    ],
)
def test_a_connection_string_without_an_instrumentation_key_is_named_but_not_shown(value: str) -> None:
    with pytest.raises(MonitoringSettingError) as raised:
        configure_monitoring({CONNECTION_STRING: value}, PipelineMetrics())
    assert CONNECTION_STRING in str(raised.value)
    assert MARKER not in str(raised.value) and value not in str(raised.value)
    assert monitoring_enabled() is False


GUID = "0b5e3a52-6d0c-4bd4-9a43-0d4b2c6f1e7a"
# Keys the exporter would refuse with a bare ValueError that names neither the setting nor the fault.
BAD_KEYS = {
    "empty key": f"InstrumentationKey=;IngestionEndpoint=https://{MARKER}.example/",
    "key not a GUID": f"InstrumentationKey={MARKER};IngestionEndpoint=https://x.example/",
    "upper-case key": f"InstrumentationKey={GUID.upper()};IngestionEndpoint=https://{MARKER}.example/",
}
# Other shapes the exporter's parser refuses ("Invalid connection string", "Invalid authorization mechanism").
BAD_SHAPES = {
    "trailing ;": f"InstrumentationKey={GUID};IngestionEndpoint=https://{MARKER}.example/;",
    "= in a value": f"InstrumentationKey={GUID};IngestionEndpoint=https://{MARKER}.example/?a=b",
    "AAD in it": f"Authorization=AAD;InstrumentationKey={GUID};IngestionEndpoint=https://{MARKER}.example/",
}
CONFIGURE_EACH = textwrap.dedent(
    """
    import json, sys
    from shared.ops.metrics import PipelineMetrics
    from shared.ops.app_insights import CONNECTION_STRING, configure_monitoring
    outcomes = {}
    for case, value in json.loads(sys.argv[1]).items():
        try:
            result = ["returned", str(configure_monitoring({CONNECTION_STRING: value}, PipelineMetrics()))]
        except Exception as error:
            result = [type(error).__name__, str(error)]
        outcomes[case] = [*result, "azure.monitor.opentelemetry" in sys.modules]
    print(json.dumps(outcomes))
    """
)


def configure_each(cases: dict[str, str]) -> dict[str, tuple[str, str, bool]]:
    """case -> (exception class or "returned", its message, whether the distro was imported by then); in a fresh
    interpreter, with everything that could call out of the machine switched off should a case get that far."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith("APPLICATIONINSIGHTS_")}
    environ.update(
        {
            "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "azure_app_service",
        }
    )
    finished = subprocess.run(
        [sys.executable, "-c", CONFIGURE_EACH, json.dumps(cases)],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    outcomes: dict[str, tuple[str, str, bool]] = json.loads(finished.stdout.strip().splitlines()[-1])
    return outcomes


def test_an_instrumentation_key_the_exporter_would_refuse_is_named_but_not_shown_before_anything_starts() -> None:
    for case, (error, message, distro_imported) in configure_each(BAD_KEYS).items():
        assert error == "MonitoringSettingError", (case, error, message)
        assert CONNECTION_STRING in message and MARKER not in message and GUID not in message.lower(), case
        assert not distro_imported, case  # refused before the distro (and its threads) started


def test_a_connection_string_the_exporters_parser_refuses_fails_without_showing_its_value() -> None:
    # Not checked ahead by shared.ops.app_insights: the exporter's parser refuses these; its ValueError is replaced
    # by one that names the setting and not the value.
    for case, (error, message, _) in configure_each(BAD_SHAPES).items():
        assert error == "MonitoringSettingError", (case, error, message)
        assert CONNECTION_STRING in message, case
        assert MARKER not in message and GUID not in message.lower(), case


def test_without_an_authentication_string_the_exporter_uses_the_key_alone() -> None:
    assert exporter_credential({}) is None
    assert exporter_credential({AUTHENTICATION_STRING: " "}) is None


@pytest.mark.parametrize("value", [f"Authorization=Basic;Secret={MARKER}", f"ClientId={MARKER}", MARKER])
def test_an_authentication_string_that_is_not_aad_is_refused_without_its_value(value: str) -> None:
    with pytest.raises(MonitoringSettingError) as raised:
        exporter_credential({AUTHENTICATION_STRING: value})
    assert AUTHENTICATION_STRING in str(raised.value) and MARKER not in str(raised.value)


class NoNetwork:
    """Records every attempt to open a connection, and refuses it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.attempts: list[object] = []
        monkeypatch.setattr(socket.socket, "connect", self._refuse)
        monkeypatch.setattr(socket, "create_connection", self._refuse)
        monkeypatch.setattr(socket, "getaddrinfo", self._refuse)

    def _refuse(self, *args: object, **kwargs: object) -> None:
        self.attempts.append(args)
        raise OSError("no network in this test")


def managed_identity_settings(credential: object) -> str:
    """What the managed identity inside a credential is configured with (azure-identity keeps it privately): the
    credential itself, or the ManagedIdentityCredential in a chain such as DefaultAzureCredential."""
    chain = [credential, *getattr(credential, "credentials", ())]
    identities = [c for c in chain if isinstance(c, ManagedIdentityCredential)]
    assert len(identities) == 1, [type(c).__name__ for c in chain]
    inner = getattr(identities[0], "_credential", None) or identities[0]
    return repr(vars(inner))


def test_an_aad_authentication_string_names_the_managed_identity_without_a_network_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AZURE_CLIENT_ID", raising=False)  # azure-identity's default client id
    network = NoNetwork(monkeypatch)
    client_id = str(uuid.uuid4())
    user_assigned = exporter_credential({AUTHENTICATION_STRING: f"Authorization=AAD;ClientId={client_id}"})
    system_assigned = exporter_credential({AUTHENTICATION_STRING: "authorization=aad"})
    assert user_assigned is not None and system_assigned is not None
    assert callable(getattr(user_assigned, "get_token", None))
    assert f"'client_id': '{client_id}'" in managed_identity_settings(user_assigned)
    assert "'client_id': None" in managed_identity_settings(system_assigned)
    assert network.attempts == []  # a token is asked for on the first export, not before


def test_sample_names_cover_every_series_the_registry_exports() -> None:
    names = sample_names(PipelineMetrics())
    for counter in ("invocations", "readings_summarised", "summaries_written", "dead_letters", "readings_simulated"):
        assert names[f"sensorpulse_{counter}_total"] == "counter"
        assert f"sensorpulse_{counter}" not in names
    for suffix in ("_bucket", "_sum", "_count"):
        assert names[f"sensorpulse_lag_seconds{suffix}"] == "counter"
        assert names[f"sensorpulse_invocation_duration_seconds{suffix}"] == "counter"
    assert names["sensorpulse_unique_devices"] == "gauge"
    assert "sensorpulse_lag_seconds" not in names
    # Every series /api/metrics serves is exported under the same name.
    metrics = PipelineMetrics()
    metrics.summarised("x", readings=2, summaries=1, reading_times_ms=[0, 0])
    metrics.dead_lettered("x", ["bad"])
    metrics.devices_seen(["d1"])
    metrics.invocations.labels("f", "succeeded").inc()
    metrics.invocation_seconds.labels("f").observe(0.1)
    served = {
        line.split("{")[0].split(" ")[0]
        for line in metrics.exposition().decode().splitlines()
        if line and not line.startswith("#")
    }
    assert {"sensorpulse_lag_seconds_bucket", "sensorpulse_dead_letters_total"} <= served
    assert served <= set(names), sorted(served - set(names))
