"""The webhook sender against real HTTP receivers on 127.0.0.1: delivery with a stable idempotency key,
backoff, dead letters after the deadline, several webhooks, and two senders not sending one notification at
once."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.alerts.sender import WebhookSender, retry_delay_seconds
from shared.alerts.store import AlertStore
from shared.readings.dead_letters import DeadLetterBox
from shared.storage.factory import Stores
from tests.component.alert_rig import AlertingProcess, embedded_stores, notifications, put_threshold, reading

TOKEN = "not-a-real-token-42"  # pragma: allowlist secret


class Receiver:
    """An HTTP receiver that answers `statuses` in turn (then 200) and keeps what it was sent."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"noted")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token={TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def keys(self) -> list[str]:
        return [headers["idempotency-key"] for headers, _ in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


class Clock:
    """The sender's clock, from now on (the transitions were written at the real time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def closed_port_url() -> str:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}/hook?token={TOKEN}"


def fired(tmp_path: Path) -> tuple[Stores, AlertStore]:
    """A store with one firing and one resolved notification in its outbox."""
    stores = embedded_stores(tmp_path)
    process = AlertingProcess.start(stores)
    put_threshold(process.store)
    for second, value in enumerate([35, 20]):
        process.deliver([reading("s1", value, second)])
    assert len(notifications(process.store)) == 2
    return stores, process.store


def sender(stores: Stores, store: AlertStore, urls: list[str], clock: Clock, deadline: int = 600) -> WebhookSender:
    return WebhookSender(store, urls, 2, deadline, DeadLetterBox(stores.state), clock=clock)


def test_each_notification_reaches_every_webhook_once_in_alertmanager_format(
    tmp_path: Path, receivers: list[Receiver]
) -> None:
    stores, store = fired(tmp_path)
    receivers += [Receiver(), Receiver()]
    report = sender(stores, store, [r.url for r in receivers], Clock()).deliver_due()

    assert report.sent == 4 and notifications(store) == []  # delivered everywhere: the outbox is empty
    for receiver in receivers:
        assert [body["status"] for _, body in receiver.requests] == ["firing", "resolved"]
        firing, resolved = (body for _, body in receiver.requests)
        assert firing["version"] == "4" and firing["receiver"] == "sensorpulse"
        assert firing["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
        assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
        assert firing["alerts"][0]["fingerprint"] == resolved["alerts"][0]["fingerprint"]
        assert firing["alerts"][0]["labels"] == {
            "alertname": "hot",
            "severity": "warning",
            "sensor_id": "s1",
            "metric": "temperature",
        }
        assert receiver.requests[0][0]["content-type"] == "application/json"
    assert receivers[0].keys() == receivers[1].keys()


def test_a_failing_webhook_is_retried_with_backoff_and_the_same_key(tmp_path: Path, receivers: list[Receiver]) -> None:
    stores, store = fired(tmp_path)
    flaky = Receiver(statuses=[503, 503, 503, 503])
    receivers.append(flaky)
    clock = Clock()
    run = sender(stores, store, [flaky.url], clock)

    first = run.deliver_due()
    assert (first.sent, first.retried) == (0, 2)
    assert run.deliver_due().retried == 0  # not due yet: nothing is sent before the backoff
    clock.now += timedelta(seconds=retry_delay_seconds(1))
    assert run.deliver_due().retried == 2  # second attempt: 503 again
    clock.now += timedelta(seconds=retry_delay_seconds(2) - 1)
    assert run.deliver_due().sent == 0
    clock.now += timedelta(seconds=1)
    assert run.deliver_due().sent == 2

    keys = flaky.keys()
    assert len(keys) == 6 and len(set(keys)) == 2  # three attempts of each, each with its one key
    assert notifications(store) == []


def test_past_the_deadline_a_notification_is_parked_with_its_reason_and_no_url(tmp_path: Path) -> None:
    stores, store = fired(tmp_path)
    clock = Clock()
    run = sender(stores, store, [closed_port_url()], clock, deadline=60)
    for _ in range(4):  # attempts at 0, 30, 60 s: the third is past the deadline
        run.deliver_due()
        clock.now += timedelta(seconds=30)
    assert notifications(store) == []

    letters = DeadLetterBox(stores.state).list("alert-notifications")
    assert len(letters) == 2
    for letter in letters:
        assert letter["reason"].startswith("webhook 1 (127.0.0.1) did not accept it in ")
        assert "could not connect" in letter["reason"]
        assert TOKEN not in letter["reason"] and TOKEN not in letter["item"] and "/hook" not in letter["item"]
        assert json.loads(letter["item"])["alert"]["labels"]["alertname"] == "hot"


def test_one_webhook_down_does_not_hold_back_or_repeat_the_other(tmp_path: Path, receivers: list[Receiver]) -> None:
    stores, store = fired(tmp_path)
    healthy = Receiver()
    receivers.append(healthy)
    clock = Clock()
    run = sender(stores, store, [closed_port_url(), healthy.url], clock)
    for _ in range(3):
        run.deliver_due()
        clock.now += timedelta(seconds=retry_delay_seconds(3))

    assert len(healthy.requests) == 2  # sent once each, however often the other webhook is retried
    assert len(notifications(store)) == 2  # kept for the webhook still failing


def test_a_claimed_notification_is_not_sent_by_a_second_sender(tmp_path: Path, receivers: list[Receiver]) -> None:
    stores, store = fired(tmp_path)
    receiver = Receiver()
    receivers.append(receiver)
    clock = Clock()
    (row, *_) = store.outbox()
    # Another sender claimed it and is sending: its lease runs for a while.
    store.write_outbox(row.row_key, {**row.properties, "claimed_until_ms": 10**15}, row.etag)

    report = sender(stores, store, [receiver.url], clock).deliver_due()

    assert report.sent == 1 and report.pending == 1
    assert len(receiver.requests) == 1


def test_the_test_notification_answers_what_each_webhook_said(tmp_path: Path, receivers: list[Receiver]) -> None:
    stores = embedded_stores(tmp_path)
    failing = Receiver(statuses=[500])
    receivers.append(failing)
    answers = sender(stores, AlertStore(stores.state), [failing.url, closed_port_url()], Clock()).send_test()

    assert [(a["webhook"], a["ok"], a["status"]) for a in answers] == [(1, False, 500), (2, False, None)]
    assert answers[0]["answer"] == "noted"
    assert "could not connect" in answers[1]["error"]
    assert TOKEN not in json.dumps(answers)
    assert failing.requests[0][1]["alerts"][0]["labels"]["alertname"] == "SensorPulseTest"


def test_without_webhooks_notifications_wait_until_their_deadline_then_go(tmp_path: Path) -> None:
    stores, store = fired(tmp_path)
    clock = Clock()
    idle = sender(stores, store, [], clock, deadline=60)
    idle.deliver_due()
    # A process without webhooks (say, a local run on the deployed app's tables) leaves them to one that has.
    assert len(notifications(store)) == 2
    clock.now += timedelta(seconds=61)
    idle.deliver_due()  # nobody delivered them in time: dropped, the transitions stay in state and history
    assert notifications(store) == []
    assert len(store.history()) == 1
