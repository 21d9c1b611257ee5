"""devhost's blob trigger (Event Grid source): the webhook Event Grid posts to, and the watcher that raises
BlobCreated for the embedded store, each invoking the function once per blob version with its BlobClient."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobClient

from devhost.app.function_index import FunctionSpec, RetryPolicy
from devhost.app.invoker import Invoker
from devhost.http.front import WebhookRequest
from devhost.triggers.blob_events import BlobTriggerDriver, BlobWebhook, blob_created, parse_event
from shared.storage.sqlite.blobs import FolderBlobStore
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.state import SqliteStateStore

NO_WAIT_RETRY = RetryPolicy("fixed_delay", 2, timedelta(0), timedelta(0), timedelta(0))
PATH = "runtime/webhooks/blobs"


def _driver(
    database: SqliteDatabase, blobs: FolderBlobStore, function: Callable[..., Any], retry: RetryPolicy | None = None
) -> BlobTriggerDriver:
    trigger = {
        "name": "client",
        "direction": "in",
        "type": "blobTrigger",
        "path": "imports/{name}",
        "source": "EventGrid",
    }
    spec = FunctionSpec(name="import_blob", trigger=trigger, bindings=[trigger], retry=retry, function=function)

    def client_for(container: str, name: str) -> BlobClient:
        return BlobClient("http://127.0.0.1/devhost/blobs", container, name)

    stop = threading.Event()
    return BlobTriggerDriver(spec, Invoker(stop), blobs, SqliteStateStore(database), client_for, stop)


def _request(body: Any, query: str = "Host.Functions.import_blob", kind: str = "Notification") -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        path=PATH,
        query={"functionName": [query]},
        headers={"aeg-event-type": kind},
        body=json.dumps(body).encode() if not isinstance(body, bytes) else body,
        origin="http://127.0.0.1",
        url=f"http://127.0.0.1/{PATH}",
    )


def test_the_watcher_raises_blob_created_once_per_blob_version_and_remembers_it(
    database: SqliteDatabase, tmp_path: Path
) -> None:
    blobs = FolderBlobStore(tmp_path / "blobs")
    seen: list[str] = []
    driver = _driver(database, blobs, lambda client: seen.append(client.blob_name))
    blobs.put("imports", "a.csv", b"sensor_id,metric,value,timestamp\n")
    blobs.put("imports-results", "other.json", b"{}")  # another container: not this trigger's
    assert driver.watch_once() == 1
    assert driver.deliver_once(timeout=1)
    assert seen == ["a.csv"]
    assert driver.watch_once() == 0  # delivered: no second event for the same version

    # A restarted host reads the receipts: only a new version raises an event.
    again = _driver(database, blobs, lambda client: seen.append(client.blob_name))
    assert again.watch_once() == 0
    blobs.put("imports", "a.csv", b"sensor_id,metric,value,timestamp\nx,temperature,1,2026-01-01T00:00:00Z\n")
    assert again.watch_once() == 1
    assert again.deliver_once(timeout=1)
    assert seen == ["a.csv", "a.csv"]


def test_an_event_whose_function_failed_is_raised_again(database: SqliteDatabase, tmp_path: Path) -> None:
    blobs = FolderBlobStore(tmp_path / "blobs")
    attempts: list[str] = []

    def failing(client: BlobClient) -> None:
        attempts.append(client.blob_name)
        raise RuntimeError("storage is down")

    driver = _driver(database, blobs, failing, NO_WAIT_RETRY)
    blobs.put("imports", "b.csv", b"sensor_id,metric,value,timestamp\n")
    driver.watch_once()
    driver.deliver_once(timeout=1)
    assert attempts == ["b.csv"] * 3  # the first call and the policy's two retries
    assert driver.watch_once() == 1  # no receipt: Event Grid would deliver it again


def test_the_webhook_answers_the_handshake_and_queues_blob_created_events(
    database: SqliteDatabase, tmp_path: Path
) -> None:
    blobs = FolderBlobStore(tmp_path / "blobs")
    seen: list[tuple[str, str]] = []
    driver = _driver(database, blobs, lambda client: seen.append((client.container_name, client.blob_name)))
    hook = BlobWebhook({"import_blob": driver})
    assert hook.handles(PATH) and not hook.handles("runtime/webhooks/durabletask")

    handshake = [{"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {"validationCode": "c0de"}}]
    answer = hook.handle(_request(handshake, kind="SubscriptionValidation"))
    assert answer.status == 200 and json.loads(answer.body) == {"validationResponse": "c0de"}

    created = blob_created("imports", "dir/c.jsonl", '"0x1"', 10)
    other = {**blob_created("imports-results", "c.result.json", '"0x2"', 2)}
    deleted = {**created, "eventType": "Microsoft.Storage.BlobDeleted"}
    assert hook.handle(_request([created, other, deleted])).status == 202
    assert driver.deliver_once(timeout=1)
    assert not driver.deliver_once(timeout=0.1)  # only the BlobCreated event of the function's container
    assert seen == [("imports", "dir/c.jsonl")]

    assert hook.handle(_request([created], query="Host.Functions.nothing")).status == 404
    assert hook.handle(_request(b"not json")).status == 400
    assert hook.handle(_request({"no": "array"})).status == 202  # one event object is taken as a list of one
    assert hook.handle(_request([], kind="SubscriptionValidation")).status == 400


def test_parse_event_reads_the_blob_name_from_the_subject() -> None:
    event = blob_created("imports", "a/b c.csv", '"0x9"', 5)
    parsed = parse_event(event)
    assert parsed is not None
    assert (parsed.container, parsed.name, parsed.etag) == ("imports", "a/b c.csv", '"0x9"')
    assert parse_event({**event, "subject": "/blobServices/default/containers/imports"}) is None
