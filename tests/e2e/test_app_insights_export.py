"""What an operator sees in Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set. devhost runs
the real app against a stand-in for the ingestion endpoint on 127.0.0.1, built to the contract the Azure Monitor
exporter is written against: POST <IngestionEndpoint>/v2.1/track with a JSON array of envelopes (gzipped or not),
answered with itemsReceived/itemsAccepted; live metrics' ping and post on <LiveEndpoint>, answered "not subscribed".

The app's log lines arrive as traces with their fields as custom dimensions, and point at the span of their
invocation; every Prometheus metric arrives under its own name, as what it grew by since the previous export, so
summing a counter over time gives its total; each invocation is a span named after its function.

Nothing may leave the machine: statsbeat and the OneSettings control plane are switched off, the resource detectors
are limited to App Service (the VM detector calls the instance metadata address), and every proxy variable points
at the stand-in, which records any request it is asked to forward: none may arrive."""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shared.ops.metrics import LAG_BUCKETS
from tests.e2e.devhost_process import DevhostProcess

pytestmark = pytest.mark.e2e

TRACK_PATHS = ("/v2.1/track", "/v2/track")
LIVE_PATHS = ("/QuickPulseService.svc/ping", "/QuickPulseService.svc/post")
SUMMARISE, SIMULATE = "summarise_readings", "simulate_sensors"
READINGS_SOURCE = "cosmos-readings"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
QUIET_LOGGERS = re.compile(r"\b(azure\.monitor|opentelemetry)")
BASE_TYPES = {"MessageData", "MetricData", "RequestData", "RemoteDependencyData", "ExceptionData"}
WAIT_SECONDS = 60  # when to give up waiting for the exports, never how fast they are: about 5 s here
Envelope = dict[str, Any]


@dataclass
class Received:
    """What the stand-in was sent; the server's threads append under the lock."""

    envelopes: list[Envelope] = field(default_factory=list)
    live: list[str] = field(default_factory=list)  # live-metrics paths
    unexpected: list[str] = field(default_factory=list)  # "METHOD path" of anything else sent to it
    forwarded: list[str] = field(default_factory=list)  # requests for another host, sent to it as a proxy
    authorization: list[str] = field(default_factory=list)  # the scheme of each Authorization header
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, entry: Any) -> None:
        with self.lock:
            getattr(self, kind).append(entry)

    def snapshot(self) -> list[Envelope]:
        with self.lock:
            return list(self.envelopes)


class IngestionStandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received = Received()
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(BaseHTTPRequestHandler):
    server: IngestionStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the base class names it `format`
        pass

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return body

    def _refuse(self) -> None:
        """Anything but the two APIs; an absolute URL or CONNECT is a request meant for another host."""
        meant_elsewhere = self.command == "CONNECT" or "://" in self.path
        self.server.received.add("forwarded" if meant_elsewhere else "unexpected", f"{self.command} {self.path}")
        self._answer(403 if meant_elsewhere else 404)

    do_CONNECT = do_GET = do_PUT = do_DELETE = _refuse

    def do_POST(self) -> None:
        received = self.server.received
        if "Authorization" in self.headers:
            received.add("authorization", self.headers["Authorization"].split(" ")[0])
        path = self.path.split("?")[0]
        if path in TRACK_PATHS:
            envelopes = json.loads(self._body())
            if not isinstance(envelopes, list):
                received.add("unexpected", f"POST {path} with a body that is not a JSON array")
                self._answer(400)
                return
            with received.lock:
                received.envelopes.extend(envelopes)
            count = len(envelopes)
            body = json.dumps({"itemsReceived": count, "itemsAccepted": count, "errors": []}).encode()
            self._answer(200, body, {"Content-Type": "application/json"})
        elif path in LIVE_PATHS:
            self._body()
            received.add("live", path)
            self._answer(200, headers={"x-ms-qps-subscribed": "false"})  # nobody has Live Metrics open
        else:
            self._refuse()


@pytest.fixture
def standin() -> Iterator[IngestionStandIn]:
    server = IngestionStandIn()
    thread = threading.Thread(target=server.serve_forever, name="ingestion-standin", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def monitored_settings(standin: IngestionStandIn, instrumentation_key: str, temp_dir: Path) -> dict[str, str]:
    connection_string = (
        f"InstrumentationKey={instrumentation_key};IngestionEndpoint={standin.url};LiveEndpoint={standin.url}"
    )
    proxies = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    return {
        "SENSOR_COUNT": "2",
        "SIMULATOR_SCHEDULE": "*/1 * * * * *",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": connection_string,
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",  # statsbeat goes to Microsoft's own resource
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",  # else OneSettings is polled on the internet
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "azure_app_service",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_BLRP_SCHEDULE_DELAY": "300",
        "OTEL_BSP_SCHEDULE_DELAY": "300",
        "TMPDIR": str(temp_dir),  # the exporter's offline storage is under tempfile.gettempdir()
        **{name: standin.url for name in proxies},
        **{name.lower(): standin.url for name in proxies},
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


# -- reading the envelopes as App Insights' tables would show them ------------------------------------------


def base_data(envelope: Envelope) -> dict[str, Any]:
    data: dict[str, Any] = envelope["data"]["baseData"]
    return data


def properties(envelope: Envelope) -> dict[str, str]:
    found: dict[str, str] = base_data(envelope).get("properties") or {}
    return found


def of_type(envelopes: list[Envelope], *base_types: str) -> list[Envelope]:
    return [e for e in envelopes if e["data"]["baseType"] in base_types]


def traces(envelopes: list[Envelope], event: str) -> list[Envelope]:
    return [e for e in of_type(envelopes, "MessageData") if properties(e).get("event") == event]


def spans(envelopes: list[Envelope], name: str) -> list[Envelope]:
    return [e for e in of_type(envelopes, "RequestData", "RemoteDependencyData") if base_data(e)["name"] == name]


def points(envelopes: list[Envelope], name: str) -> list[tuple[float, dict[str, str]]]:
    """(value, custom dimensions) of every exported point of one metric."""
    return [
        (float(metric["value"]), properties(e))
        for e in of_type(envelopes, "MetricData")
        for metric in base_data(e)["metrics"]
        if metric["name"] == name
    ]


def total(envelopes: list[Envelope], name: str, **dimensions: str) -> float:
    """A counter's total: the sum of what it grew by in each export (delta temporality)."""
    return sum(
        value
        for value, dims in points(envelopes, name)
        if all(dims.get(key) == wanted for key, wanted in dimensions.items())
    )


def everything_arrived(envelopes: list[Envelope]) -> bool:
    summarised = [e for e in traces(envelopes, "summarised") if int(properties(e).get("readings", "0")) > 0]
    return bool(
        summarised
        and traces(envelopes, "simulated")
        and spans(envelopes, SUMMARISE)
        and spans(envelopes, SIMULATE)
        and total(envelopes, "sensorpulse_readings_summarised_total", source=READINGS_SOURCE) > 0
        and points(envelopes, "sensorpulse_lag_seconds_bucket")
    )


def wait_until(condition: Callable[[], bool], seconds: float) -> None:
    """Polls without failing: the assertions that follow say what did not arrive."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.2)


def quiet_logger_complaints(output: str) -> list[str]:
    """devhost's WARNING and ERROR lines from the exporter or OpenTelemetry (JSON lines, or plain text)."""
    found = []
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            level, where = str(record.get("level")), str(record.get("logger"))
        else:
            match = re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line)
            level, where = (match.group(1) if match else ""), line
        if level in ("WARNING", "ERROR", "CRITICAL") and QUIET_LOGGERS.search(where):
            found.append(line[:300])
    return found


# -- the test -----------------------------------------------------------------------------------------------


def test_logs_metrics_and_invocation_spans_reach_application_insights(
    standin: IngestionStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for inherited in ("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "APPINSIGHTS_INSTRUMENTATIONKEY"):
        monkeypatch.delenv(inherited, raising=False)  # key-based ingestion: no managed identity, no token
    instrumentation_key = str(uuid.uuid4())
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    host = DevhostProcess(tmp_path / "data", monitored_settings(standin, instrumentation_key, temp_dir))
    try:
        wait_until(lambda: everything_arrived(standin.received.snapshot()), WAIT_SECONDS)
    finally:
        exit_code = host.stop()  # the exporters flush at exit: what follows counts everything
    received = standin.received
    envelopes = received.snapshot()
    output = "".join(host.output)

    # Everything went to the stand-in, with the key, and nothing anywhere else.
    assert received.forwarded == []  # no request for another host (OneSettings, IMDS, statsbeat, Azure)
    assert received.unexpected == []
    assert received.authorization == []  # no AAD token: key-based ingestion
    assert set(received.live) >= {"/QuickPulseService.svc/ping"}  # live metrics used the LiveEndpoint
    assert envelopes, "nothing was exported"
    assert {e["iKey"] for e in envelopes} == {instrumentation_key}
    assert {e["data"]["baseType"] for e in envelopes} <= BASE_TYPES
    assert all(e["name"].startswith("Microsoft.ApplicationInsights.") and e["time"] for e in envelopes)

    # devhost ran and stopped cleanly, without a word from the exporter, and never showed the key.
    assert exit_code == 0, output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    assert not quiet_logger_complaints(output)
    assert instrumentation_key not in output
    assert instrumentation_key.replace("-", "") not in output

    # traces: the app's own log lines (devhost's and the SDKs' stay out), with their fields as dimensions.
    messages = of_type(envelopes, "MessageData")
    assert {properties(e).get("logger_name", "").partition(".")[0] for e in messages} == {"sensorpulse"}
    summarised = traces(envelopes, "summarised")
    assert summarised, "no 'summarised' trace"
    for trace in summarised:
        dims = properties(trace)
        assert base_data(trace)["message"].startswith(f"summarised {dims['readings']} readings from ")
        assert (dims["function"], dims["source"], dims["trigger"]) == (SUMMARISE, READINGS_SOURCE, "cosmos")
        assert UUID.match(dims["invocation_id"]), dims
        assert int(dims["dead_letters"]) == 0
    simulated = traces(envelopes, "simulated")
    assert simulated, "no 'simulated' trace"
    for trace in simulated:
        dims = properties(trace)
        assert (dims["function"], dims["trigger"]) == (SIMULATE, "timer")
        assert UUID.match(dims["invocation_id"]), dims
    readings_in_traces = sum(int(properties(e)["readings"]) for e in summarised)
    assert readings_in_traces > 0

    # customMetrics: the registry's samples under their Prometheus names; summed over time they agree with
    # the traces, as the counters and the log lines count the same batches.
    assert total(envelopes, "sensorpulse_readings_summarised_total", source=READINGS_SOURCE) == readings_in_traces
    assert {dims.get("source") for _, dims in points(envelopes, "sensorpulse_readings_summarised_total")} == {
        READINGS_SOURCE
    }
    buckets = points(envelopes, "sensorpulse_lag_seconds_bucket")
    assert {dims.get("le") for _, dims in buckets} == {repr(b) for b in LAG_BUCKETS} | {"+Inf"}
    assert total(envelopes, "sensorpulse_lag_seconds_bucket", le="+Inf") == readings_in_traces
    assert total(envelopes, "sensorpulse_lag_seconds_count", source=READINGS_SOURCE) == readings_in_traces
    assert total(envelopes, "sensorpulse_invocations_total", function=SIMULATE, outcome="succeeded") == len(simulated)
    assert total(envelopes, "sensorpulse_invocations_total", function=SUMMARISE, outcome="succeeded") == len(summarised)
    assert total(envelopes, "sensorpulse_invocations_total", outcome="failed") == 0
    assert points(envelopes, "sensorpulse_unique_devices"), "the gauge was not exported"

    # dependencies (an internal span): one per invocation, named after its function, with its fields.
    for name, trigger in ((SUMMARISE, "cosmos"), (SIMULATE, "timer")):
        exported = spans(envelopes, name)
        assert exported, f"no span named {name}"
        for span in exported:
            dims = properties(span)
            assert (dims["function"], dims["trigger"]) == (name, trigger)
            assert UUID.match(dims["invocation_id"]) and base_data(span)["success"] is True
            assert span["tags"]["ai.operation.name"] == name

    # A trace points at its invocation's span: same operation, the span as parent.
    by_invocation = {properties(span)["invocation_id"]: span for span in spans(envelopes, SUMMARISE)}
    matched = [trace for trace in summarised if properties(trace)["invocation_id"] in by_invocation]
    assert matched, "no 'summarised' trace has the span of its invocation"
    for trace in matched:
        span = by_invocation[properties(trace)["invocation_id"]]
        assert trace["tags"]["ai.operation.id"] == span["tags"]["ai.operation.id"]
        assert trace["tags"]["ai.operation.parentId"] == base_data(span)["id"]

    # The exporter's offline storage is under the TMPDIR it was given, and empty: nothing had to be retried.
    storage = list(temp_dir.glob(f"*/opentelemetry-python-{instrumentation_key}"))
    assert len(storage) == 1, sorted(str(p) for p in temp_dir.rglob("*"))
    assert [p for p in storage[0].rglob("*") if p.is_file()] == []


def test_the_stand_in_answers_as_ingestion_does_and_records_what_is_not_for_it(standin: IngestionStandIn) -> None:
    """The checks above can fail: a gzipped batch is read, and a request for another host is caught."""
    envelope = {"name": "Microsoft.ApplicationInsights.Message", "iKey": "k", "data": {"baseType": "MessageData"}}
    body = gzip.compress(json.dumps([envelope, envelope]).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    track = urllib.request.Request(standin.url + "v2.1/track", data=body, headers=headers)
    with urllib.request.urlopen(track, timeout=10) as response:
        assert json.loads(response.read()) == {"itemsReceived": 2, "itemsAccepted": 2, "errors": []}
    ping = urllib.request.Request(standin.url + "QuickPulseService.svc/ping?ikey=k", data=b"{}")
    with urllib.request.urlopen(ping, timeout=10) as response:
        assert response.headers["x-ms-qps-subscribed"] == "false"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(standin.url + "v2.1/other", data=b"{}"), timeout=10)
    assert refused.value.code == 404
    through_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({"http": standin.url}))
    with pytest.raises(urllib.error.HTTPError) as refused:
        through_proxy.open("http://telemetry.invalid/v2.1/track", timeout=10)
    assert refused.value.code == 403
    received = standin.received
    assert received.snapshot() == [envelope, envelope]
    assert received.live == ["/QuickPulseService.svc/ping"]
    assert received.unexpected == ["POST /v2.1/other"]
    assert received.forwarded == ["GET http://telemetry.invalid/v2.1/track"]


def test_the_output_check_finds_exporter_warnings_in_either_format() -> None:
    json_line = json.dumps({"level": "WARNING", "logger": "azure.monitor.opentelemetry.exporter", "message": "x"})
    text_line = "[12:00:00] opentelemetry.sdk.metrics ERROR: could not export"
    quiet = json.dumps({"level": "INFO", "logger": "azure.monitor.opentelemetry.exporter", "message": "sent"})
    app = json.dumps({"level": "WARNING", "logger": "sensorpulse.blueprints.dashboard", "message": "not ready"})
    assert quiet_logger_complaints("\n".join([json_line, text_line, quiet, app])) == [json_line, text_line]
