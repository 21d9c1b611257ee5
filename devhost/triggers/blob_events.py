"""blobTrigger with the Event Grid source: what the Functions host does when Event Grid posts BlobCreated to
`/runtime/webhooks/blobs?functionName=Host.Functions.<name>`, and what Event Grid itself does on this machine.

The webhook (BlobWebhook) answers Event Grid's subscription handshake (`aeg-event-type: SubscriptionValidation`:
the `validationCode` back as `validationResponse`) and queues each BlobCreated event of the function's container;
the driver invokes the function once per event with the blob's client (an azure.storage.blob BlobClient, as the
SDK-type binding gives it: the content is never downloaded), with the function's retry policy.

With no Event Grid here, the driver also watches the container (every second) and raises BlobCreated for every blob
version it has not delivered yet: a file uploaded through the app, copied into the embedded store's folder, or put
into Azurite with storage tools. What it delivered is kept as a receipt per blob version in the state store
(table `devhostblobreceipts`), so a restart does not raise the same event again, while an event whose function
never succeeded is raised again, as Event Grid retries one that was not acknowledged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devhost.app.function_index import FunctionSpec
from devhost.app.invoker import Invoker
from devhost.http.front import WebhookAnswer, WebhookRequest
from shared.storage.ports import BlobStore, StateStore

logger = logging.getLogger("devhost")

BLOB_TRIGGER = "blobTrigger"
EVENT_GRID_SOURCE = "EventGrid"
WEBHOOK_PATH = "runtime/webhooks/blobs"
RECEIPTS_TABLE = "devhostblobreceipts"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
WATCH_SECONDS = 1.0
_SUBJECT_PREFIX = "/blobServices/default/containers/"

ClientFactory = Callable[[str, str], Any]  # (container, blob name) -> the BlobClient the function receives


@dataclass(frozen=True, slots=True)
class BlobEvent:
    container: str
    name: str
    etag: str | None


def _json_answer(status: int, document: Any) -> WebhookAnswer:
    return WebhookAnswer(status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(document).encode())


def parse_event(event: Mapping[str, Any]) -> BlobEvent | None:
    """A BlobCreated event of the Event Grid schema, or None for another event type or an unusable subject."""
    if event.get("eventType") != BLOB_CREATED:
        return None
    subject = event.get("subject")
    if not isinstance(subject, str) or not subject.startswith(_SUBJECT_PREFIX):
        return None
    container, marker, name = subject[len(_SUBJECT_PREFIX) :].partition("/blobs/")
    if not marker or not container or not name:
        return None
    data = event.get("data")
    etag = data.get("eTag") if isinstance(data, Mapping) else None
    return BlobEvent(container, name, etag if isinstance(etag, str) else None)


def blob_created(container: str, name: str, etag: str, size: int) -> dict[str, Any]:
    """The Event Grid (EventGridSchema) BlobCreated event the watcher raises for a blob version."""
    return {
        "id": hashlib.sha256(f"{container}/{name}\x1f{etag}".encode()).hexdigest()[:32],
        "topic": "/subscriptions/devhost/resourceGroups/devhost/providers/Microsoft.Storage/storageAccounts/devhost",
        "subject": f"{_SUBJECT_PREFIX}{container}/blobs/{name}",
        "eventType": BLOB_CREATED,
        "dataVersion": "",
        "metadataVersion": "1",
        "data": {"api": "PutBlob", "eTag": etag, "contentLength": size, "blobType": "BlockBlob"},
    }


class BlobTriggerDriver:
    """One blob-triggered function: its event queue, its container watcher and its receipts."""

    def __init__(
        self,
        spec: FunctionSpec,
        invoker: Invoker,
        blobs: BlobStore,
        receipts: StateStore,
        client_for: ClientFactory,
        stop: threading.Event,
    ) -> None:
        self.spec = spec
        path = str(spec.trigger.get("path", ""))
        self.container = path.split("/", 1)[0]
        self._invoker = invoker
        self._blobs = blobs
        self._receipts = receipts
        self._client_for = client_for
        self._stop = stop
        self._events: queue.Queue[BlobEvent] = queue.Queue()
        self._pending: set[tuple[str, str | None]] = set()
        self._lock = threading.Lock()

    def enqueue(self, event: BlobEvent) -> bool:
        """Queue an event of this function's container; False for another container's."""
        if event.container != self.container:
            return False
        with self._lock:
            key = (event.name, event.etag)
            if key in self._pending:
                return True  # queued already and not yet delivered
            self._pending.add(key)
        self._events.put(event)
        return True

    def _receipt_key(self, name: str) -> str:
        return hashlib.sha256(name.encode()).hexdigest()

    def _delivered(self, name: str) -> str | None:
        entity = self._receipts.get(RECEIPTS_TABLE, self.spec.name, self._receipt_key(name))
        etag = None if entity is None else entity.properties.get("etag")
        return etag if isinstance(etag, str) else None

    def watch_once(self) -> int:
        """Raise BlobCreated for every blob version of the container not delivered yet; returns how many."""
        raised = 0
        for blob in self._blobs.list(self.container):
            if self._delivered(blob.name) == blob.etag:
                continue
            if self.enqueue(BlobEvent(self.container, blob.name, blob.etag)):
                raised += 1
        return raised

    def deliver_once(self, timeout: float) -> bool:
        """Invoke the function for one queued event; False when none came within `timeout`."""
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            return False
        name = str(self.spec.trigger["name"])
        try:
            succeeded = self._invoker.call_with_retry(
                self.spec, lambda: {name: self._client_for(event.container, event.name)}
            )
            if succeeded and event.etag is not None:
                properties = {"etag": event.etag, "name": event.name[:1024]}
                self._receipts.upsert(RECEIPTS_TABLE, self.spec.name, self._receipt_key(event.name), properties)
            elif not succeeded and not self._stop.is_set():
                logger.error("Functions.%s failed on %s after its retries", self.spec.name, event.name)
        finally:
            with self._lock:
                self._pending.discard((event.name, event.etag))
        return True

    def run_watcher(self) -> None:
        while not self._stop.is_set():
            try:
                self.watch_once()
            except Exception:
                logger.exception("the %s container could not be listed; trying again", self.container)
            if self._stop.wait(WATCH_SECONDS):
                return

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_once(timeout=0.5)
            except Exception:
                logger.exception("a blob event for Functions.%s could not be delivered", self.spec.name)


class BlobWebhook:
    """POST /runtime/webhooks/blobs?functionName=Host.Functions.<name>: Event Grid's endpoint for blob triggers."""

    def __init__(self, drivers: Mapping[str, BlobTriggerDriver]) -> None:
        self._drivers = drivers

    def handles(self, path: str) -> bool:
        return path.lower() == WEBHOOK_PATH

    def handle(self, request: WebhookRequest) -> WebhookAnswer:
        if request.method != "POST":
            return WebhookAnswer(405, {}, b"")
        function = (request.query.get("functionName") or [""])[0]
        driver = self._drivers.get(function.removeprefix("Host.Functions."))
        if driver is None or not function.startswith("Host.Functions."):
            return _json_answer(
                404, {"error": f"no blob-triggered function {function[:100]!r} with the Event Grid source"}
            )
        try:
            events = json.loads(request.body)
        except ValueError:
            return _json_answer(400, {"error": "the body is not JSON"})
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
            return _json_answer(400, {"error": "the body must be an array of Event Grid events"})
        if (request.header("aeg-event-type") or "").lower() == "subscriptionvalidation":
            return self._validate(events)
        accepted = 0
        for event in events:
            parsed = parse_event(event)
            if parsed is not None and driver.enqueue(parsed):
                accepted += 1
        logger.debug("blob webhook: %d of %d events queued for %s", accepted, len(events), function)
        return WebhookAnswer(202, {}, b"")

    def _validate(self, events: list[dict[str, Any]]) -> WebhookAnswer:
        data = events[0].get("data") if events else None
        code = data.get("validationCode") if isinstance(data, dict) else None
        if not isinstance(code, str):
            return _json_answer(400, {"error": "a SubscriptionValidation event carries data.validationCode"})
        return _json_answer(200, {"validationResponse": code})
