"""Cosmos DB faults reach our adapter only after the SDK's own retries, set in azure_clients.COSMOS_RETRY:
throttling (429 with its retry-after), 503 and timeouts are retried; what still fails is a StorageError that
names the container and status and never the key."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.cosmos import CosmosClient

from shared.storage.azure_clients import COSMOS_RETRY
from shared.storage.cosmos_documents import CosmosDocumentStore
from shared.storage.names import PARTITION_KEY_PATHS, READINGS
from shared.storage.ports import StorageError
from tests.contract.test_cosmos_change_feed_recorded import RECORDING

KEY = "c2VjcmV0LWtleS1uZXZlci1pbi1hLW1lc3NhZ2U="
DOCUMENT = {"id": "r1", "sensor_id": "s1", "value": 1.5, "_rid": "x", "_etag": '"1"', "_ts": 1}


class FaultyCosmos(ThreadingHTTPServer):
    """Answers document reads with the scripted faults first, then the document."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.endpoint = f"http://127.0.0.1:{self.server_address[1]}/"
        self.faults: list[int | str] = []  # a status code, or "hang" for a response slower than the read timeout
        self.document_reads = 0


class _Handler(BaseHTTPRequestHandler):
    server: FaultyCosmos

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-ms-request-charge", "1")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/":
            account = json.loads(json.dumps(RECORDING["account"]).replace("{endpoint}", self.server.endpoint))
            self._answer(200, account)
            return
        if path.rstrip("/") == "/dbs/sensorpulse/colls/readings":
            self._answer(200, RECORDING["container"])
            return
        self.server.document_reads += 1
        fault = self.server.faults.pop(0) if self.server.faults else None
        if fault == "hang":
            time.sleep(1.5)
            self._answer(200, DOCUMENT)
        elif fault == 429:
            self._answer(429, {"code": "TooManyRequests", "message": "throttled"}, {"x-ms-retry-after-ms": "20"})
        elif fault is not None:
            self._answer(int(fault), {"code": "ServiceUnavailable", "message": "unavailable"})
        else:
            self._answer(200, DOCUMENT, {"etag": '"1"'})


@pytest.fixture
def server() -> Iterator[FaultyCosmos]:
    faulty = FaultyCosmos()
    threading.Thread(target=faulty.serve_forever, daemon=True).start()
    yield faulty
    faulty.shutdown()
    faulty.server_close()


def _store(server: FaultyCosmos, **overrides: Any) -> CosmosDocumentStore:
    options = {**COSMOS_RETRY, "read_timeout": 0.5, "retry_backoff_factor": 0.01, **overrides}
    return CosmosDocumentStore(
        CosmosClient(server.endpoint, credential=KEY, **options), "sensorpulse", PARTITION_KEY_PATHS
    )


def test_throttling_is_retried_after_the_retry_after_interval(server: FaultyCosmos) -> None:
    server.faults = [429, 429, 429]

    found = _store(server).read(READINGS, "s1", "r1")

    assert found is not None and found["value"] == 1.5
    assert server.document_reads == 4


def test_service_unavailable_is_retried_once_per_region_then_left_to_the_trigger(server: FaultyCosmos) -> None:
    server.faults = [503]
    found = _store(server).read(READINGS, "s1", "r1")
    assert found is not None
    assert server.document_reads == 2

    # The SDK fails over region by region; this account has one, so a second 503 is the trigger's to retry.
    server.faults = [503, 503]
    with pytest.raises(StorageError, match="503"):
        _store(server).read(READINGS, "s1", "r1")


def test_a_read_that_times_out_is_retried(server: FaultyCosmos) -> None:
    server.faults = ["hang"]

    found = _store(server).read(READINGS, "s1", "r1")

    assert found is not None
    assert server.document_reads >= 2


def test_throttling_beyond_the_retry_budget_is_a_storage_error_without_the_key(server: FaultyCosmos) -> None:
    server.faults = [429] * 50

    with pytest.raises(StorageError) as failure:
        _store(server, retry_total=3).read(READINGS, "s1", "r1")

    message = str(failure.value)
    assert "429" in message and "readings" in message
    assert KEY not in message
    assert server.document_reads == 4  # the first try and the three retries
