"""Cosmos DB faults reach our adapter only after the SDK's own retries, set in azure_clients.COSMOS_RETRY:
throttling (429 with its retry-after), 503 and timeouts are retried; what still fails is a StorageError that
names the container and status and never the key."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.cosmos import CosmosClient

from shared.storage.azure.clients import COSMOS_RETRY
from shared.storage.azure.cosmos_documents import CosmosDocumentStore
from shared.storage.names import PARTITION_KEY_PATHS, READINGS
from shared.storage.ports import StorageError
from tests.cosmos_http import RecordedCosmos, RecordedCosmosHandler, serving

KEY = "c2VjcmV0LWtleS1uZXZlci1pbi1hLW1lc3NhZ2U="
DOCUMENT = {"id": "r1", "sensor_id": "s1", "value": 1.5, "_rid": "x", "_etag": '"1"', "_ts": 1}
# Only the timeout case has a short read timeout, and its hang outlasts it many times over; everywhere else the
# SDK's own (30 s), so that a slow answer on a busy machine is not a timeout retried under a test counting reads.
SHORT_READ_TIMEOUT = 0.5
HANG_SECONDS = 5.0


class FaultyCosmos(RecordedCosmos):
    """Answers document reads with the scripted faults first, then the document."""

    def __init__(self) -> None:
        super().__init__(_FaultyHandler)
        self.faults: list[int | str] = []  # a status code, or "hang" for an answer after HANG_SECONDS
        self.document_reads = 0


class _FaultyHandler(RecordedCosmosHandler):
    server: FaultyCosmos

    def answer_documents(self, path: str) -> None:
        self.server.document_reads += 1
        fault = self.server.faults.pop(0) if self.server.faults else None
        if fault == "hang":
            time.sleep(HANG_SECONDS)
            self.answer(200, DOCUMENT)
        elif fault == 429:
            self.answer(429, {"code": "TooManyRequests", "message": "throttled"}, {"x-ms-retry-after-ms": "20"})
        elif fault is not None:
            self.answer(int(fault), {"code": "ServiceUnavailable", "message": "unavailable"})
        else:
            self.answer(200, DOCUMENT, {"etag": '"1"'})


@pytest.fixture
def server() -> Iterator[FaultyCosmos]:
    with serving(FaultyCosmos()) as faulty:
        yield faulty


def _store(server: FaultyCosmos, **overrides: Any) -> CosmosDocumentStore:
    options = {**COSMOS_RETRY, "retry_backoff_factor": 0.01, **overrides}
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

    found = _store(server, read_timeout=SHORT_READ_TIMEOUT).read(READINGS, "s1", "r1")

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
