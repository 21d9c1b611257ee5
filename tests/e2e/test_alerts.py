"""Alerts end to end: devhost runs the app on SQLite with a webhook receiver of the test's own on 127.0.0.1, readings
go in through `POST /api/readings` (no simulated sensors, one reading per window, so a summary's avg is the reading's
value) and each scenario watches what reaches the receiver, the alert listing, the metrics and the SQLite file.

- a threshold crossed and crossed back gives one firing and one resolved notification, every retry of one
  transition under the same Idempotency-Key, as Alertmanager webhook bodies (version 4);
- the same with devhost SIGKILLed between the transition and its send: the restart sends it once in effect, and the
  change feed delivered again does not fire the rule again;
- a silence rule fires once its series has been quiet for its duration and resolves when a reading comes;
- a value oscillating around the threshold inside the hysteresis band fires once and does not flap;
- an unreachable webhook is retried, then dead-lettered with a reason that names it by number and host, never by
  its URL (whose token shows nowhere);
- platform alerts in (Alertmanager, Azure Monitor), firing then resolved;
- bad rule bodies and inbound bodies answered with the field at fault, and the test notification.

Scenarios with the same settings share one devhost (module-scoped), each on its own sensors and rule names. Every
wait is a condition with a generous deadline: a slow machine only takes longer to get there.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from devhost.triggers.change_feed import LEASES_TABLE
from shared.alerts.sender import DEAD_LETTER_SOURCE
from shared.alerts.store import OUTBOX, PARTITION, AlertStore
from shared.readings.dead_letters import DeadLetterBox
from shared.readings.reading import epoch_ms
from shared.storage.names import ALERTS_TABLE
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.state import SqliteStateStore
from tests.e2e.devhost_process import DevhostProcess
from tests.e2e.prometheus_scrape import scrape, total
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

WAIT = 60.0  # seconds: when to give up on a condition, never how long anything takes
ZERO_TIME = "0001-01-01T00:00:00Z"
THRESHOLD = {"kind": "threshold", "metric": "temperature", "field": "avg", "op": ">", "value": 30, "clear": 28}


# --- the webhook receiver -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request the receiver got, with what it answered."""

    key: str  # the Idempotency-Key header
    answered: int
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.time() on arrival

    @property
    def alert(self) -> dict[str, Any]:
        alert: dict[str, Any] = self.body["alerts"][0]
        return alert

    @property
    def alertname(self) -> str:
        return str(self.alert["labels"]["alertname"])

    @property
    def status(self) -> str:
        return str(self.body["status"])


class Receiver:
    """A webhook on 127.0.0.1 that records every request and answers 200, or 500 for the first N requests about
    an alert name when told to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._failures: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (the name http.server calls)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answered = receiver._record(dict(self.headers.items()), raw)
                self.send_response(answered)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if answered == 200 else b"no")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/sensorpulse"

    def _record(self, headers: dict[str, str], raw: bytes) -> int:
        body = json.loads(raw)
        name = str(body["alerts"][0]["labels"]["alertname"])
        with self._lock:
            left = self._failures.get(name, 0)
            answered = 500 if left > 0 else 200
            if left > 0:
                self._failures[name] = left - 1
            self._deliveries.append(Delivery(headers.get("Idempotency-Key", ""), answered, headers, body, time.time()))
        return answered

    def fail_first(self, alertname: str, count: int) -> None:
        with self._lock:
            self._failures[alertname] = count

    def about(self, alertname: str) -> list[Delivery]:
        """Every request about one alert name, in arrival order."""
        with self._lock:
            return [delivery for delivery in self._deliveries if delivery.alertname == alertname]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    webhook = Receiver()
    try:
        yield webhook
    finally:
        webhook.close()


def alert_settings(webhooks: list[str], **extra: str) -> dict[str, str]:
    """No simulated sensors, one reading per window, fast timers (six-field NCRONTAB: seconds first)."""
    return {
        "SENSOR_COUNT": "0",
        "WINDOW_SIZE": "1",
        "ALERT_WEBHOOK_URLS": json.dumps(webhooks),
        "ALERT_WEBHOOK_TIMEOUT_SECONDS": "5",
        "ALERT_SENDER_SCHEDULE": "*/1 * * * * *",
        "ALERT_SILENCE_SCHEDULE": "*/2 * * * * *",
        "LOG_LEVEL": "INFO",
        **extra,
    }


@dataclass(frozen=True, slots=True)
class Host:
    process: DevhostProcess
    data_dir: Path


@pytest.fixture(scope="module")
def shared(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """One devhost for the scenarios that need nothing but the receiver."""
    data_dir = tmp_path_factory.mktemp("alerts")
    process = DevhostProcess(data_dir, alert_settings([receiver.url]))
    try:
        yield Host(process, data_dir)
    finally:
        process.kill()


# --- talking to devhost -------------------------------------------------------------------------------------------


def call(
    host: DevhostProcess, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
) -> tuple[int, Any]:
    """(status, the answer as JSON, or None when empty)."""
    status, answer = host.send(method, path, body, content_type)
    return status, json.loads(answer) if answer else None


def put_rule(host: DevhostProcess, name: str, rule: dict[str, Any]) -> None:
    status, answer = call(host, "PUT", f"/api/alerts/rules/{name}", json.dumps(rule).encode())
    assert status == 201, answer


def listed(host: DevhostProcess, state: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = host.get_json(f"/api/alerts?state={state}&limit=500")["items"]
    return items


def listed_named(host: DevhostProcess, state: str, name: str) -> list[dict[str, Any]]:
    return [alert for alert in listed(host, state) if alert["name"] == name]


class Series:
    """One sensor's temperature readings, a second apart in their own time, each posted once the one before it
    has been summarised (so every reading is a window, and a summary, of its own)."""

    def __init__(self, host: DevhostProcess, sensor_id: str, start: datetime) -> None:
        self.host = host
        self.sensor_id = sensor_id
        self.start = start
        self.count = 0

    def post(self, value: float, at: datetime | None = None) -> datetime:
        """Post one reading (at `at`, or a second after the last) and wait for its summary; returns its time."""
        self.count += 1
        moment = at if at is not None else self.start + timedelta(seconds=self.count)
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)  # readings keep milliseconds
        reading_id = f"{self.sensor_id}-{self.count}"
        reading = {
            "id": reading_id,
            "sensor_id": self.sensor_id,
            "metric": "temperature",
            "value": value,
            "timestamp": moment.isoformat(timespec="milliseconds"),
        }
        status, answer = self.host.post_json("/api/readings", reading)
        assert status == 201, answer
        wait_for(lambda: self.newest() == reading_id, WAIT, f"{reading_id} ({value}) to be summarised")
        return moment

    def newest(self) -> str | None:
        status, _, body = self.host.get(f"/api/sensors/{self.sensor_id}/summaries?limit=1")
        summaries = json.loads(body) if status == 200 else []
        return str(summaries[0]["newest_reading_id"]) if summaries else None


@contextlib.contextmanager
def state_store(data_dir: Path) -> Iterator[SqliteStateStore]:
    """devhost's own SQLite file, read (or changed) beside it."""
    database = SqliteDatabase.in_directory(data_dir)
    try:
        yield SqliteStateStore(database)
    finally:
        database.close()


def outbox_about(data_dir: Path, fingerprint: str) -> list[str]:
    """The notifications of one alert still waiting to be delivered."""
    with state_store(data_dir) as state:
        return [row.row_key for row in AlertStore(state).outbox() if fingerprint in row.row_key]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- checks on what the receiver got ------------------------------------------------------------------------------


def delivered(receiver: Receiver, alertname: str, status: str) -> Delivery | None:
    """The first accepted request about an alert in a status, once there is one."""
    return next((d for d in receiver.about(alertname) if d.status == status and d.answered == 200), None)


def settled(receiver: Receiver, host: Host, alertname: str, status: str) -> Delivery:
    """Wait until a notification in `status` was accepted and nothing about that alert is left in the outbox: from
    then on the receiver has everything the transitions so far will ever send."""

    def done() -> Delivery | None:
        accepted = delivered(receiver, alertname, status)
        if accepted is None or outbox_about(host.data_dir, accepted.alert["fingerprint"]):
            return None
        return accepted

    return wait_for(done, WAIT, f"the {status} notification of {alertname} to be delivered")


def keys_by_status(deliveries: list[Delivery]) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {}
    for delivery in deliveries:
        keys.setdefault(delivery.status, set()).add(delivery.key)
    return keys


def check_episode(deliveries: list[Delivery], began: datetime, ended: datetime) -> None:
    """Exactly one firing and one resolved notification of one episode, each retry under its own transition's
    key, as Alertmanager webhook bodies (version 4)."""
    keys = keys_by_status(deliveries)
    assert {status: len(found) for status, found in keys.items()} == {"firing": 1, "resolved": 1}, keys
    firing = [d for d in deliveries if d.status == "firing"]
    resolved = [d for d in deliveries if d.status == "resolved"]
    assert max(d.at for d in firing) <= min(d.at for d in resolved), "resolved sent before firing"
    fingerprint = firing[0].alert["fingerprint"]
    for delivery in deliveries:
        body, alert = delivery.body, delivery.alert
        assert body["version"] == "4"
        assert body["status"] == alert["status"] == delivery.status
        assert len(body["alerts"]) == 1
        assert alert["fingerprint"] == fingerprint
        assert parse_time(alert["startsAt"]) == began
        assert delivery.headers["Content-Type"] == "application/json"
        assert delivery.headers["X-SensorPulse-Notification"] == delivery.key
        # The notification id: the alert's fingerprint, the episode's start and the status.
        assert delivery.key == f"{fingerprint}-{epoch_ms(began)}-{delivery.status}"
        if delivery.status == "firing":
            assert alert["endsAt"] == ZERO_TIME
        else:
            assert parse_time(alert["endsAt"]) == ended


# --- 1. a threshold crossed and crossed back ----------------------------------------------------------------------


def test_a_threshold_crossed_and_back_notifies_once_firing_once_resolved(shared: Host, receiver: Receiver) -> None:
    host, rule = shared.process, "e2e-warm-1"
    put_rule(host, rule, {**THRESHOLD, "sensors": "warm-1", "for_summaries": 1, "severity": "critical"})
    receiver.fail_first(rule, 1)  # the first send is answered 500: the sender retries it, under the same key
    series = Series(host, "warm-1", datetime.now(UTC) - timedelta(minutes=5))

    series.post(25)
    assert not listed_named(host, "all", rule)
    began = series.post(35)
    firing = wait_for(lambda: listed_named(host, "firing", rule), WAIT, f"{rule} to fire")
    assert firing[0]["sensor_id"] == "warm-1" and firing[0]["source"] == "sensorpulse"
    assert firing[0]["value"] == 35 and firing[0]["severity"] == "critical"
    settled(receiver, shared, rule, "firing")
    series.post(29)  # above the clear level: still firing, nothing to notify
    assert [alert["fingerprint"] for alert in listed_named(host, "firing", rule)] == [firing[0]["fingerprint"]]
    ended = series.post(27)
    settled(receiver, shared, rule, "resolved")

    deliveries = receiver.about(rule)
    check_episode(deliveries, began, ended)
    sent_firing = [d for d in deliveries if d.status == "firing"]
    # Answered 500 first, then retried under the same key (check_episode) until accepted.
    assert len(sent_firing) >= 2 and sent_firing[0].answered == 500 and sent_firing[-1].answered == 200
    assert sent_firing[0].alert["labels"] == {
        "alertname": rule,
        "severity": "critical",
        "sensor_id": "warm-1",
        "metric": "temperature",
    }

    resolved = wait_for(lambda: listed_named(host, "resolved", rule), WAIT, f"{rule} in the resolved listing")
    assert [alert["fingerprint"] for alert in resolved] == [firing[0]["fingerprint"]]
    assert parse_time(resolved[0]["ends_at"]) == ended
    # Every scenario on the shared devhost ends with nothing firing, so the listing is empty, not just of this rule.
    assert listed(host, "firing") == []


# --- 2. SIGKILL between the transition and its send ---------------------------------------------------------------


def test_a_transition_written_before_a_sigkill_is_sent_once_after_the_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    """One rule fires in the first life and is sent only in the second. Another, which needs two breaching
    summaries, is pending on one when devhost dies: the change feed delivered again must not count it twice."""
    rule, sensor, pending_rule, pending_sensor = "e2e-killed", "killed-1", "e2e-killed-pending", "killed-2"
    # The sender does not run in the first life: the firing transition is written with its notification, unsent.
    first = DevhostProcess(
        tmp_path, alert_settings([receiver.url], **{"AzureWebJobs.send_alert_notifications.Disabled": "true"})
    )
    try:
        put_rule(first, rule, {**THRESHOLD, "sensors": sensor, "for_summaries": 1})
        put_rule(first, pending_rule, {**THRESHOLD, "sensors": pending_sensor, "for_summaries": 2})
        start = datetime.now(UTC) - timedelta(minutes=5)
        series, pending = Series(first, sensor, start), Series(first, pending_sensor, start)
        series.post(25)
        began = series.post(35)
        pending_began = pending.post(35)
        firing = wait_for(lambda: listed_named(first, "firing", rule), WAIT, f"{rule} to fire")
        fingerprint = firing[0]["fingerprint"]
        assert outbox_about(tmp_path, fingerprint) == [f"{OUTBOX}{fingerprint}-{epoch_ms(began)}-firing"]
    finally:
        first.kill()  # SIGKILL: no clean shutdown
    assert not receiver.about(rule)
    # Whether the kill came before or after the change feed's lease moved on is the moment's luck; forgetting the
    # lease makes the restart deliver every reading again (the trigger starts from the beginning), the most a
    # redelivery can be.
    with state_store(tmp_path) as state:
        for lease in state.query(LEASES_TABLE):
            state.delete(LEASES_TABLE, lease.partition_key, lease.row_key)

    second = DevhostProcess(tmp_path, alert_settings([receiver.url]))
    host = Host(second, tmp_path)
    try:
        settled(receiver, host, rule, "firing")
        series.host = pending.host = second
        # The change feed keeps its order: once this reading is judged, so is everything delivered again before it.
        ended = series.post(27)
        settled(receiver, host, rule, "resolved")
        assert not listed_named(second, "firing", pending_rule), "a summary delivered again was counted twice"
        assert not receiver.about(pending_rule)
        pending.post(36)  # the second breaching summary
        settled(receiver, host, pending_rule, "firing")
        samples = scrape(second)
    finally:
        second.kill()

    check_episode(receiver.about(rule), began, ended)  # one firing key: the redelivered 35 fired nothing again
    pending_keys = keys_by_status(receiver.about(pending_rule))
    assert {status: len(keys) for status, keys in pending_keys.items()} == {"firing": 1}
    # Its episode began at the first breaching summary, the one delivered twice.
    assert {parse_time(d.alert["startsAt"]) for d in receiver.about(pending_rule)} == {pending_began}
    # The second life summarised every reading (25 and both 35s again), and made two transitions: the resolution,
    # and the pending rule firing on its second breaching summary.
    assert total(samples, "sensorpulse_readings_summarised_total", source="cosmos-readings") == 5
    assert total(samples, "sensorpulse_alert_transitions_total", to="firing") == 1
    assert total(samples, "sensorpulse_alert_transitions_total", to="resolved") == 1


# --- 3. a silence ----------------------------------------------------------------------------------------------------


def test_a_silence_fires_after_its_duration_and_resolves_on_the_next_reading(shared: Host, receiver: Receiver) -> None:
    host, rule, sensor = shared.process, "e2e-quiet-1", "quiet-1"
    put_rule(host, rule, {"kind": "silence", "metric": "temperature", "sensors": sensor, "for_seconds": 30})
    # The series' last reading is 20 s old when it arrives, so its 30 s of silence are over some 10 s from now.
    series = Series(host, sensor, datetime.now(UTC))
    last = series.post(21.0, at=datetime.now(UTC) - timedelta(seconds=20))
    fired = wait_for(lambda: delivered(receiver, rule, "firing"), WAIT, f"{rule} to fire")
    assert fired.at >= last.timestamp() + 30, "fired before 30 s without a reading"
    began = last + timedelta(seconds=30)
    assert parse_time(fired.alert["startsAt"]) == began
    assert listed_named(host, "firing", rule)[0]["sensor_id"] == sensor

    back = series.post(22.0, at=datetime.now(UTC))
    settled(receiver, shared, rule, "resolved")
    check_episode(receiver.about(rule), began, back)
    wait_for(lambda: listed_named(host, "resolved", rule), WAIT, f"{rule} in the resolved listing")
    assert not listed_named(host, "firing", rule)
    # Deleted, so it does not report this series silent again while the module goes on.
    assert call(host, "DELETE", f"/api/alerts/rules/{rule}")[0] == 204


# --- 4. no flapping --------------------------------------------------------------------------------------------------


def test_a_value_oscillating_around_the_threshold_fires_once_and_does_not_flap(
    shared: Host, receiver: Receiver
) -> None:
    host, rule, sensor = shared.process, "e2e-flap-1", "flap-1"
    put_rule(host, rule, {**THRESHOLD, "sensors": sensor, "for_summaries": 1})
    series = Series(host, sensor, datetime.now(UTC) - timedelta(minutes=5))
    series.post(29.5)
    began = series.post(30.5)
    for value in (29.5, 30.5) * 4:
        series.post(value)
    # Still the first episode: firing since the first 30.5.
    firing = wait_for(lambda: listed_named(host, "firing", rule), WAIT, f"{rule} to fire")
    assert len(firing) == 1 and parse_time(firing[0]["starts_at"]) == began
    # Resolving it at the end shows what came before: had it flapped in between, its resolutions and new
    # episodes would have reached the receiver before this resolution.
    ended = series.post(27)
    settled(receiver, shared, rule, "resolved")
    check_episode(receiver.about(rule), began, ended)


# --- 5. an unreachable webhook --------------------------------------------------------------------------------------

FAKE_TOKEN = "not-a-real-secret-123"  # pragma: allowlist secret
HOOK_PATH = "/pulse-hook-7f3a"


def test_an_unreachable_webhook_is_retried_then_dead_lettered_without_its_url(tmp_path: Path) -> None:
    rule, sensor = "e2e-unreachable", "unreachable-1"
    # A bound socket that never listens: connections to its port are refused for as long as the test holds it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}{HOOK_PATH}?token={FAKE_TOKEN}"
        host = DevhostProcess(tmp_path, alert_settings([url], ALERT_DELIVERY_DEADLINE_SECONDS="10"))
        try:
            put_rule(host, rule, {**THRESHOLD, "sensors": sensor, "for_summaries": 1})
            series = Series(host, sensor, datetime.now(UTC) - timedelta(minutes=5))
            series.post(35)

            def parked() -> list[dict[str, Any]]:
                with state_store(tmp_path) as state:
                    return DeadLetterBox(state).list(DEAD_LETTER_SOURCE)

            letters = wait_for(parked, WAIT, "the notification to be dead-lettered")
            samples = scrape(host)
            with state_store(tmp_path) as state:
                left = [row.row_key for row in state.query_prefix(ALERTS_TABLE, PARTITION, OUTBOX)]
        finally:
            stopped = host.stop()
    output = "".join(host.output)
    assert stopped == 0, output[-2000:]

    assert len(letters) == 1
    reason = str(letters[0]["reason"])
    assert reason.startswith("webhook 1 (127.0.0.1) did not accept it in "), reason
    assert "could not connect" in reason
    item = json.loads(letters[0]["item"])
    assert item["webhook"] == "webhook 1 (127.0.0.1)"
    assert item["alert"]["labels"]["alertname"] == rule and item["alert"]["status"] == "firing"
    assert not left, "a dead-lettered notification stays in the outbox"

    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    retries = [line for line in logged if line.get("event") == "alert_notification_retry"]
    assert retries, "no retry warning in devhost's output"
    assert all(line["level"] == "WARNING" and "webhook 1 (127.0.0.1)" in line["message"] for line in retries)
    parked_lines = [line for line in logged if line.get("event") == "dead_letter"]
    assert [(line["level"], line["source"], line["reason"]) for line in parked_lines] == [
        ("WARNING", DEAD_LETTER_SOURCE, reason)
    ]
    assert total(samples, "sensorpulse_alert_notifications_total", outcome="retried") > 0
    assert total(samples, "sensorpulse_alert_notifications_total", outcome="failed") > 0
    assert total(samples, "sensorpulse_alert_notifications_total", outcome="sent") == 0

    shown = {"the dead letter's reason": reason, "the dead letter": str(letters[0]["item"]), "devhost's output": output}
    for where, text in shown.items():
        for part in (FAKE_TOKEN, HOOK_PATH, urllib.parse.quote(FAKE_TOKEN)):
            assert part not in text, f"the webhook URL's path or query shows in {where}"


# --- 6. platform alerts in ------------------------------------------------------------------------------------------


def alertmanager_body(status: str, started: datetime, ended: datetime | None) -> dict[str, Any]:
    labels = {"alertname": "E2EGatewayDown", "instance": "gw-3.plant.example:9100", "severity": "critical"}
    alert = {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "Gateway gw-3 has not answered for 5 minutes"},
        "startsAt": started.isoformat(),
        "endsAt": ZERO_TIME if ended is None else ended.isoformat(),
        "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=up",
        "fingerprint": "e2e0gateway0down",
    }
    return {
        "receiver": "sensor-pulse",
        "status": status,
        "alerts": [alert],
        "groupLabels": {"alertname": "E2EGatewayDown"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.org:9093",
        "version": "4",
        "groupKey": '{}:{alertname="E2EGatewayDown"}',
        "truncatedAlerts": 0,
    }


def azure_monitor_body(condition: str, fired: datetime, resolved: datetime | None) -> dict[str, Any]:
    subscription = "/subscriptions/00000000-1111-2222-3333-444444444444"
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": f"{subscription}/providers/Microsoft.AlertsManagement/alerts/e2e-0a0a-bb1b",
                "alertRule": "e2e-gateway-cpu-high",
                "severity": "Sev2",
                "signalType": "Metric",
                "monitorCondition": condition,
                "monitoringService": "Platform",
                "alertTargetIDs": [
                    f"{subscription}/resourcegroups/pulse-rg/providers/microsoft.compute/virtualmachines/gw-vm-2"
                ],
                "firedDateTime": fired.isoformat().replace("+00:00", "Z"),
                "resolvedDateTime": None if resolved is None else resolved.isoformat().replace("+00:00", "Z"),
                "description": "CPU above 90% on a gateway VM",
                "essentialsVersion": "1.0",
                "alertContextVersion": "1.0",
            },
            "alertContext": {"conditionType": "SingleResourceMultipleMetricCriteria"},
            "customProperties": None,
        },
    }


def test_platform_alerts_are_listed_firing_then_resolved(shared: Host) -> None:
    host = shared.process
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    ended = started + timedelta(minutes=8)
    names = {"E2EGatewayDown": "alertmanager", "e2e-gateway-cpu-high": "azure-monitor"}

    def post(body: dict[str, Any]) -> None:
        assert host.post_json("/api/alerts/inbound", body) == (202, {"received": 1})

    post(alertmanager_body("firing", started, None))
    post(azure_monitor_body("Fired", started, None))

    def sources(state: str) -> dict[str, str]:
        return {alert["name"]: alert["source"] for alert in listed(host, state) if alert["name"] in names}

    wait_for(lambda: sources("firing") == names, WAIT, "both platform alerts to be listed firing")
    firing = {alert["name"]: alert for alert in host.get_json("/api/alerts")["items"] if alert["name"] in names}
    assert set(firing) == set(names)  # the listing's default state is firing
    assert firing["E2EGatewayDown"]["fingerprint"] == "e2e0gateway0down"
    assert firing["E2EGatewayDown"]["severity"] == "critical"
    assert firing["e2e-gateway-cpu-high"]["severity"] == "warning"  # Sev2
    assert all(parse_time(alert["starts_at"]) == started for alert in firing.values())

    post(alertmanager_body("resolved", started, ended))
    post(azure_monitor_body("Resolved", started, ended))
    wait_for(lambda: sources("resolved") == names and not sources("firing"), WAIT, "both to move to resolved")
    resolved = [alert for alert in listed(host, "resolved") if alert["name"] in names]
    assert len(resolved) == 2 and all(parse_time(alert["ends_at"]) == ended for alert in resolved)
    assert {alert["fingerprint"] for alert in resolved} == {alert["fingerprint"] for alert in firing.values()}


# --- 7. rules refused, and the test notification --------------------------------------------------------------------

GOOD_THRESHOLD = {**THRESHOLD, "sensors": "nobody-*", "for_summaries": 1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD_THRESHOLD, "kind": "ceiling"}, "kind"),
        ({k: v for k, v in GOOD_THRESHOLD.items() if k != "op"}, "op"),
        ({**GOOD_THRESHOLD, "clear": 31}, "clear"),
        ({**GOOD_THRESHOLD, "op": "<", "clear": 29}, "clear"),
        ({**GOOD_THRESHOLD, "for_summaries": 0}, "for_summaries"),
        ({"kind": "silence", "metric": "temperature", "sensors": "nobody-*"}, "for_seconds"),
        ({"kind": "silence", "metric": "temperature", "for_seconds": 29}, "for_seconds"),
        ({**GOOD_THRESHOLD, "colour": "red"}, "colour"),
        ([GOOD_THRESHOLD], "body"),
        ("avg > 30", "body"),
    ],
)
def test_a_bad_rule_body_is_refused_naming_its_field(shared: Host, body: object, field: str) -> None:
    status, answer = call(shared.process, "PUT", "/api/alerts/rules/e2e-refused", json.dumps(body).encode())
    assert status == 400, answer
    assert answer["field"] == field and answer["error"].startswith(f"{field}: "), answer


def test_a_rule_that_is_no_json_or_has_a_bad_name_is_refused_and_an_unknown_one_is_not_found(shared: Host) -> None:
    host = shared.process
    status, answer = call(host, "PUT", "/api/alerts/rules/e2e-refused", b'{"kind": "threshold",')
    assert (status, answer["field"]) == (400, "body"), answer
    for name in ("-starts-with-a-dash", "has%20a%20space", "x" * 64):
        status, answer = call(host, "PUT", f"/api/alerts/rules/{name}", json.dumps(GOOD_THRESHOLD).encode())
        assert (status, answer["field"]) == (400, "name"), (name, answer)
    other_name = json.dumps({**GOOD_THRESHOLD, "name": "other"}).encode()
    status, answer = call(host, "PUT", "/api/alerts/rules/e2e-named", other_name)
    assert (status, answer["field"]) == (400, "name"), answer
    status, answer = call(host, "GET", "/api/alerts/rules")
    assert status == 200 and not {"e2e-refused", "e2e-named"} & {rule["name"] for rule in answer["rules"]}
    status, answer = call(host, "DELETE", "/api/alerts/rules/e2e-no-such-rule")
    assert status == 404, answer
    status, answer = call(host, "DELETE", "/api/alerts/rules/-bad-name")
    assert (status, answer["field"]) == (400, "name"), answer


def test_the_test_notification_reaches_every_webhook(shared: Host, receiver: Receiver) -> None:
    status, answer = call(shared.process, "POST", "/api/alerts/test", b"{}")
    assert status == 200, answer
    assert [(hook["webhook"], hook["host"], hook["ok"], hook["status"]) for hook in answer["webhooks"]] == [
        (1, "127.0.0.1", True, 200)
    ]
    tests = receiver.about("SensorPulseTest")
    assert len(tests) == 1
    assert tests[0].key.startswith("test-") and tests[0].body["version"] == "4" and tests[0].status == "firing"


# --- 8. inbound bodies refused ---------------------------------------------------------------------------------------


def test_inbound_alerts_must_be_json_of_a_known_shape(shared: Host) -> None:
    host = shared.process
    body = json.dumps(alertmanager_body("firing", datetime.now(UTC), None)).encode()
    status, answer = call(host, "POST", "/api/alerts/inbound", body, content_type="text/plain")
    assert status == 415, answer
    status, answer = call(host, "POST", "/api/alerts/inbound", b'{"hello": "world"}')
    assert (status, answer["field"]) == (400, "body"), answer
    status, answer = call(host, "POST", "/api/alerts/inbound", b"not json")
    assert (status, answer["field"]) == (400, "body"), answer
