"""The webhook sender: delivers the outbox to every URL of ALERT_WEBHOOK_URLS, at least once, each notification
always with the same idempotency key, so a receiver that deduplicates sees it once.

A run claims a notification (an If-Match write of a short lease) before sending, so two instances do not send it
at once; a sender that dies after the send leaves the lease to run out, and the next run sends again with the same
key. A failed send is retried with exponential backoff until ALERT_DELIVERY_DEADLINE_SECONDS after the
transition, then the notification is parked as a dead letter with its reason. Webhook URLs often carry a token:
logs, errors and answers name a webhook by its number and host, never by its URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from shared.alerts.notifications import fingerprint, webhook_message
from shared.alerts.store import OUTBOX, AlertStore, stored_alert
from shared.ops.log_context import app_logger
from shared.ops.metrics import PipelineMetrics
from shared.readings.dead_letters import DeadLetter, DeadLetterBox
from shared.readings.reading import epoch_ms, format_epoch_ms
from shared.storage.ports import ConcurrencyConflict, Entity

logger = app_logger(__name__)

DEAD_LETTER_SOURCE = "alert-notifications"
FIRST_RETRY_SECONDS = 5
MAX_RETRY_SECONDS = 300
CLAIM_SPARE_MS = 5_000
USER_AGENT = "SensorPulse-Alerts/1"
MAX_ANSWER_CHARS = 200


@dataclass(frozen=True, slots=True)
class Webhook:
    number: int  # 1-based position in ALERT_WEBHOOK_URLS, for people
    url: str = field(repr=False)

    @property
    def id(self) -> str:
        """Stable while the URL is: delivery records are kept by it, so reordering the setting loses nothing."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        return f"webhook {self.number} ({urlsplit(self.url).hostname or '?'})"


def retry_delay_seconds(attempts: int) -> int:
    """Backoff after `attempts` failed sends: 5 s, 10 s, 20 s ... at most 5 minutes."""
    return int(min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1)))


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0  # parked as dead letters
    pending: int = 0  # notifications left for a later run


@dataclass(frozen=True, slots=True)
class Attempt:
    ok: bool
    status: int | None
    error: str | None
    answer: str
    elapsed_ms: int


class WebhookSender:
    def __init__(
        self,
        store: AlertStore,
        urls: Sequence[str],
        timeout_seconds: float,
        deadline_seconds: int,
        dead_letters: DeadLetterBox,
        metrics: PipelineMetrics | None = None,
        external_url: str = "",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self.webhooks = [Webhook(number, url) for number, url in enumerate(urls, start=1)]
        self._timeout = timeout_seconds
        self._deadline_ms = deadline_seconds * 1000
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._external_url = external_url
        self._clock = clock
        self._session = requests.Session()

    def deliver_due(self) -> DeliveryReport:
        """Send every notification that is due to every webhook that has not had it yet."""
        report = DeliveryReport()
        rows = sorted(self._store.outbox(), key=lambda row: int(row.properties.get("created_ms") or 0))
        for row in rows:
            self._deliver(row, report)
        if report.sent or report.retried or report.failed:
            logger.info(
                "alert notifications: %d sent, %d to retry, %d dead-lettered",
                report.sent,
                report.retried,
                report.failed,
                extra={"event": "alert_notifications", **_counts(report)},
            )
        return report

    def _deliver(self, row: Entity, report: DeliveryReport) -> None:
        alert = stored_alert(row.properties)
        now_ms = epoch_ms(self._clock())
        created_ms = int(row.properties.get("created_ms") or now_ms)
        if alert is None:
            self._store.delete_row(row.row_key)  # a row this version cannot read: its transition stays in state
            return
        if not self.webhooks:
            # This process has no webhook (say, a local run on the deployed app's tables): it leaves the row to one
            # that has, and drops it only once nobody delivered it in time (the transition stays in state and
            # history).
            if now_ms - created_ms >= self._deadline_ms:
                self._store.delete_row(row.row_key)
            else:
                report.pending += 1
            return
        if int(row.properties.get("claimed_until_ms") or 0) > now_ms:
            report.pending += 1
            return  # another run is sending it
        deliveries = _deliveries(row.properties.get("deliveries"))
        due = [hook for hook in self.webhooks if _is_due(deliveries.get(hook.id), now_ms)]
        if not due:
            if all(_done(deliveries.get(hook.id)) for hook in self.webhooks):
                self._store.delete_row(row.row_key)
            else:
                report.pending += 1
            return
        claim_ms = now_ms + int(self._timeout * 1000) * len(due) + CLAIM_SPARE_MS
        try:
            claimed = self._store.write_outbox(row.row_key, {**row.properties, "claimed_until_ms": claim_ms}, row.etag)
        except ConcurrencyConflict:
            report.pending += 1
            return
        key = row.row_key[len(OUTBOX) :]
        body = orjson.dumps(webhook_message(alert, self._external_url))
        for hook in due:
            record = dict(deliveries.get(hook.id) or {})
            attempt = self._post(hook, body, key)
            record["attempts"] = int(record.get("attempts") or 0) + 1
            record["last_status"] = attempt.status
            if attempt.ok:
                record["done"] = "sent"
                report.sent += 1
                self._count("sent")
            elif epoch_ms(self._clock()) - created_ms >= self._deadline_ms:
                record["done"] = "dead"
                record["error"] = attempt.error
                report.failed += 1
                self._count("failed")
                self._park(hook, key, alert, record, created_ms)
            else:
                record["error"] = attempt.error
                record["next_ms"] = epoch_ms(self._clock()) + retry_delay_seconds(record["attempts"]) * 1000
                report.retried += 1
                self._count("retried")
                logger.warning(
                    "alert notification %s to %s failed (%s); retrying",
                    key,
                    hook.name,
                    attempt.error,
                    extra={"event": "alert_notification_retry", "notification": key, "webhook": hook.number},
                )
            deliveries[hook.id] = record
        if all(_done(deliveries.get(hook.id)) for hook in self.webhooks):
            self._store.delete_row(row.row_key)
            return
        kept = {**row.properties, "deliveries": orjson.dumps(deliveries).decode(), "claimed_until_ms": 0}
        # A conflict: our lease ran out and another run took the notification over; it goes on from what it read.
        with contextlib.suppress(ConcurrencyConflict):
            self._store.write_outbox(row.row_key, kept, claimed.etag)
        report.pending += 1

    def _post(self, hook: Webhook, body: bytes, key: str) -> Attempt:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": key,
            "X-SensorPulse-Notification": key,
        }
        began = time.perf_counter()
        try:
            answer = self._session.post(
                hook.url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            )
        except requests.Timeout:
            return Attempt(False, None, f"no answer within {self._timeout:g} s", "", _since(began))
        except requests.RequestException as error:
            return Attempt(False, None, f"could not connect ({type(error).__name__})", "", _since(began))
        text = answer.text[:MAX_ANSWER_CHARS]
        if 200 <= answer.status_code < 300:
            return Attempt(True, answer.status_code, None, text, _since(began))
        return Attempt(False, answer.status_code, f"answered HTTP {answer.status_code}", text, _since(began))

    def _park(self, hook: Webhook, key: str, alert: dict[str, Any], record: dict[str, Any], created_ms: int) -> None:
        reason = (
            f"{hook.name} did not accept it in {record['attempts']} attempts over "
            f"{(epoch_ms(self._clock()) - created_ms) // 1000} s: {record.get('error')}"
        )
        item = {"notification": key, "webhook": hook.name, "created_at": format_epoch_ms(created_ms), "alert": alert}
        self._dead_letters.park([DeadLetter(DEAD_LETTER_SOURCE, reason, item)])

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.notifications.labels(outcome).inc()

    def send_test(self) -> list[dict[str, Any]]:
        """POST /api/alerts/test: one test notification to every webhook, once, and what each answered."""
        now = self._clock()
        labels = {"alertname": "SensorPulseTest", "severity": "info"}
        stamp = format_epoch_ms(epoch_ms(now))
        alert = {
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": "A test notification from Sensor Pulse; nothing is wrong."},
            "startsAt": stamp,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": fingerprint(labels),
        }
        body = orjson.dumps(webhook_message(alert, self._external_url))
        key = f"test-{epoch_ms(now)}"
        answers: list[dict[str, Any]] = []
        for hook in self.webhooks:
            attempt = self._post(hook, body, key)
            answers.append(
                {
                    "webhook": hook.number,
                    "host": urlsplit(hook.url).hostname,
                    "ok": attempt.ok,
                    "status": attempt.status,
                    "error": attempt.error,
                    "answer": attempt.answer,
                    "elapsed_ms": attempt.elapsed_ms,
                }
            )
        return answers


def _since(began: float) -> int:
    return int((time.perf_counter() - began) * 1000)


def _deliveries(raw: object) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, str):
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return {k: v for k, v in parsed.items() if isinstance(v, dict)} if isinstance(parsed, dict) else {}


def _done(record: dict[str, Any] | None) -> bool:
    return record is not None and record.get("done") in ("sent", "dead")


def _is_due(record: dict[str, Any] | None, now_ms: int) -> bool:
    return record is None or (not _done(record) and int(record.get("next_ms") or 0) <= now_ms)


def _counts(report: DeliveryReport) -> dict[str, int]:
    return {"sent": report.sent, "retried": report.retried, "failed": report.failed, "pending": report.pending}
