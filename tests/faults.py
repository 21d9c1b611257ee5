"""Seeded storage faults for tests: wrappers around the storage ports (and the embedded hub devhost reads)
that fail a few calls the way the Azure adapters report such a fault to the app.

A transient fault (429, 503, a timeout) strikes either before the call reaches storage, so nothing is
written, or after it, so the write landed and only its answer was lost: "written but reported failed" is
what breaks a naive retry. A 429 is the one answer known to have done nothing. A 412 is another writer's
doing: the wrapper lets that writer change the entity first, then reports the conflict. Every fault is
counted, so a test can show that faults really happened.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, NamedTuple, Protocol, TypeVar

from azure.core.exceptions import HttpResponseError, ServiceResponseTimeoutError
from azure.cosmos.exceptions import CosmosHttpResponseError
from azure.eventhub.exceptions import ConnectionLostError, EventHubError, OperationTimeoutError

from devhost.triggers.change_feed import ChangeFeedSource
from shared.storage.azure import cosmos_documents, table_state
from shared.storage.azure.events import EventHubSendError
from shared.storage.ports import (
    ChangeBatch,
    ConcurrencyConflict,
    Document,
    DocumentStore,
    Entity,
    EntityPage,
    EntityWrite,
    OutboundEvent,
    PublishOutcome,
    StateStore,
    StorageError,
)
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.events import DEFAULT_PARTITIONS, HubEvent, SqliteEventHub

T = TypeVar("T")
DEFAULT_RATE = 0.05


class FaultKind(StrEnum):
    THROTTLED = "429"
    UNAVAILABLE = "503"
    TIMEOUT = "408"  # the service's request timeout, or a response that never came
    CONFLICT = "412"


class Phase(StrEnum):
    BEFORE = "before"  # refused before storage saw it: nothing written
    AFTER = "after"  # storage did it, the answer was lost: written, reported failed


class Injected(NamedTuple):
    operation: str  # the wrapped call, e.g. "state.write_many"
    kind: FaultKind
    phase: Phase


_TRANSIENT = (FaultKind.THROTTLED, FaultKind.UNAVAILABLE, FaultKind.TIMEOUT)


class FaultInjector:
    """Decides from one seeded random stream which calls fail and how, and counts what it injected.
    Share one between the wrappers of a run: the same seed and the same calls give the same faults."""

    def __init__(self, seed: int, rate: float = DEFAULT_RATE) -> None:
        self.rate = rate
        self._random = random.Random(seed)
        self.injected: Counter[Injected] = Counter()

    def transient(self, operation: str, writes: bool) -> Injected | None:
        """A 429, 503 or timeout for this call, or None (most of the time)."""
        if self._random.random() >= self.rate:
            return None
        kind = self._random.choice(_TRANSIENT)
        landed = writes and kind is not FaultKind.THROTTLED and self._random.random() < 0.5
        fault = Injected(operation, kind, Phase.AFTER if landed else Phase.BEFORE)
        self.injected[fault] += 1
        return fault

    def conflict(self, operation: str) -> bool:
        """Whether another writer beats this conditional write to its entity (a 412)."""
        if self._random.random() >= self.rate:
            return False
        self.injected[Injected(operation, FaultKind.CONFLICT, Phase.BEFORE)] += 1
        return True

    def coin(self) -> bool:
        """A fair toss from the same seeded stream."""
        return self._random.random() < 0.5

    def some_of(self, items: Sequence[T]) -> list[T]:
        """A non-empty part of `items`, in order: the writes of a parallel call that landed before one failed."""
        if not items:
            return []
        chosen = sorted(self._random.sample(range(len(items)), self._random.randint(1, len(items))))
        return [items[i] for i in chosen]

    def first_of(self, groups: Sequence[Sequence[T]]) -> int:
        """How many of a call's sequential requests went out (at least one) before the failing answer."""
        return self._random.randint(1, len(groups)) if groups else 0

    def by_kind(self) -> Counter[FaultKind]:
        counts: Counter[FaultKind] = Counter()
        for fault, n in self.injected.items():
            counts[fault.kind] += n
        return counts

    def written_then_failed(self) -> int:
        """Faults where the write landed and the caller was told it failed."""
        return sum(n for fault, n in self.injected.items() if fault.phase is Phase.AFTER)


def _sdk_error(fault: Injected, with_status: Callable[[int], Exception]) -> Exception:
    """The SDK's exception for a fault, as the adapter would catch it after the SDK's own retries."""
    if fault.kind is FaultKind.TIMEOUT and fault.phase is Phase.AFTER:
        return ServiceResponseTimeoutError("the response did not arrive in time")  # sent; no status came back
    return with_status(int(fault.kind))


def _cosmos_error(status: int) -> CosmosHttpResponseError:
    return CosmosHttpResponseError(status_code=status, message="injected")  # type: ignore[no-untyped-call]


def cosmos_failure(fault: Injected, action: str, container: str) -> StorageError:
    """The fault as CosmosDocumentStore raises it: its own StorageError, naming the status."""
    cause = _sdk_error(fault, _cosmos_error)
    error = cosmos_documents._failure(action, container, cause)
    error.__cause__ = cause
    return error


def _http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message="injected")
    error.status_code = status
    return error


def table_failure(fault: Injected, action: str, table: str) -> StorageError:
    """The fault as TableStateStore raises it: its own StorageError, naming the status."""
    cause = _sdk_error(fault, _http_error)
    error = table_state._failure(action, table, cause)
    error.__cause__ = cause
    return error


def table_conflict(table: str, change: EntityWrite) -> ConcurrencyConflict:
    """A 412 as TableStateStore reports it."""
    return ConcurrencyConflict(f"{table}/{change.partition_key}/{change.row_key} changed since read")


class FeedDocumentStore(DocumentStore, ChangeFeedSource, Protocol):
    """A document store whose change feed devhost can also read (both adapters are)."""


class FaultyDocumentStore:
    """The documents port (Cosmos DB) with faults: upserts and inserts are parallel point writes, so a failed call
    may have written some of its documents."""

    def __init__(self, inner: FeedDocumentStore, faults: FaultInjector) -> None:
        self.inner = inner
        self._faults = faults

    def _fail_read(self, operation: str, action: str, container: str) -> None:
        fault = self._faults.transient(f"documents.{operation}", writes=False)
        if fault is not None:
            raise cosmos_failure(fault, action, container)

    def upsert_many(self, container: str, documents: Sequence[Mapping[str, Any]]) -> None:
        fault = self._faults.transient("documents.upsert_many", writes=True)
        if fault is None:
            self.inner.upsert_many(container, documents)
            return
        if fault.phase is Phase.AFTER:
            self.inner.upsert_many(container, self._faults.some_of(documents))
        raise cosmos_failure(fault, "upsert", container)

    def insert_new(self, container: str, documents: Sequence[Mapping[str, Any]]) -> list[Document]:
        fault = self._faults.transient("documents.insert_new", writes=True)
        if fault is None:
            return self.inner.insert_new(container, documents)
        if fault.phase is Phase.AFTER:
            self.inner.insert_new(container, self._faults.some_of(documents))
        raise cosmos_failure(fault, "create", container)

    def read(self, container: str, partition_key: str, document_id: str) -> Document | None:
        self._fail_read("read", "read", container)
        return self.inner.read(container, partition_key, document_id)

    def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        self._fail_read("read_many", "read many", container)
        return self.inner.read_many(container, keys)

    def latest(
        self,
        container: str,
        partition_key: str,
        order_by: str,
        limit: int,
        equals: Mapping[str, str] | None = None,
        since: str | None = None,
        fields: Sequence[str] | None = None,
        until: str | None = None,
    ) -> list[Document]:
        self._fail_read("latest", "query", container)
        return self.inner.latest(container, partition_key, order_by, limit, equals, since, fields, until)

    def read_changes(self, container: str, continuation: str | None, max_items: int) -> ChangeBatch:
        self._fail_read("read_changes", "change feed read", container)
        return self.inner.read_changes(container, continuation, max_items)

    def end_of_feed(self, container: str) -> str | None:
        return self.inner.end_of_feed(container)  # computed locally by the Cosmos adapter: no call to fail


class FaultyStateStore:
    """The state port (Table Storage) with faults; write_many's writes are independent requests, so a failed
    call may have written some of them, and each conditional write may meet another writer (412)."""

    def __init__(self, inner: StateStore, faults: FaultInjector) -> None:
        self.inner = inner
        self._faults = faults

    def _fail_read(self, operation: str, action: str, table: str) -> None:
        fault = self._faults.transient(f"state.{operation}", writes=False)
        if fault is not None:
            raise table_failure(fault, action, table)

    def _another_writer(self, table: str, change: EntityWrite) -> None:
        """What a 412 means: another instance wrote the entity first, either the very change this caller meant
        to make (it handled the same delivery) or the stored properties again (only the ETag moved)."""
        stored = self.inner.get(table, change.partition_key, change.row_key)
        if stored is None or self._faults.coin():
            self.inner.write_many(table, [change])
        else:
            self.inner.upsert(table, stored.partition_key, stored.row_key, stored.properties)

    def get(self, table: str, partition_key: str, row_key: str) -> Entity | None:
        self._fail_read("get", "read", table)
        return self.inner.get(table, partition_key, row_key)

    def query(self, table: str, partition_key: str | None = None) -> list[Entity]:
        self._fail_read("query", "query", table)
        return self.inner.query(table, partition_key)

    def query_prefix(self, table: str, partition_key: str, prefix: str) -> list[Entity]:
        self._fail_read("query_prefix", "query", table)
        return self.inner.query_prefix(table, partition_key, prefix)

    def query_page(self, table: str, limit: int, continuation: str | None = None) -> EntityPage:
        self._fail_read("query_page", "query", table)
        return self.inner.query_page(table, limit, continuation)

    def upsert(self, table: str, partition_key: str, row_key: str, properties: Mapping[str, Any]) -> Entity:
        fault = self._faults.transient("state.upsert", writes=True)
        if fault is None:
            return self.inner.upsert(table, partition_key, row_key, properties)
        if fault.phase is Phase.AFTER:
            self.inner.upsert(table, partition_key, row_key, properties)
        raise table_failure(fault, "upsert", table)

    def write(self, table: str, change: EntityWrite) -> Entity:
        fault = self._faults.transient("state.write", writes=True)
        if fault is not None:
            if fault.phase is Phase.AFTER:
                self.inner.write(table, change)  # a conflict of its own is the true answer, and is raised
            raise table_failure(fault, "write", table)
        if self._faults.conflict("state.write"):
            self._another_writer(table, change)
            raise table_conflict(table, change)
        return self.inner.write(table, change)

    def write_many(self, table: str, changes: Sequence[EntityWrite]) -> list[Entity | ConcurrencyConflict]:
        fault = self._faults.transient("state.write_many", writes=True)
        if fault is not None:
            if fault.phase is Phase.AFTER:
                self.inner.write_many(table, self._faults.some_of(changes))
            raise table_failure(fault, "write", table)
        beaten = {i for i, _ in enumerate(changes) if self._faults.conflict("state.write_many")}
        for i in sorted(beaten):
            self._another_writer(table, changes[i])
        written = iter(self.inner.write_many(table, [c for i, c in enumerate(changes) if i not in beaten]))
        return [table_conflict(table, c) if i in beaten else next(written) for i, c in enumerate(changes)]

    def write_atomically(self, table: str, changes: Sequence[EntityWrite]) -> list[Entity]:
        fault = self._faults.transient("state.write_atomically", writes=True)
        if fault is not None:
            if fault.phase is Phase.AFTER:
                self.inner.write_atomically(table, changes)  # one transaction: all of it landed
            raise table_failure(fault, "transaction", table)
        if changes and self._faults.conflict("state.write_atomically"):
            # Another instance wrote first: the very same transaction (it handled the same delivery), all of it as
            # a transaction is, or only its first entity again (only that ETag moved).
            first = changes[0]
            stored = self.inner.get(table, first.partition_key, first.row_key)
            if stored is None or self._faults.coin():
                self.inner.write_atomically(table, changes)
            else:
                self.inner.upsert(table, stored.partition_key, stored.row_key, stored.properties)
            raise ConcurrencyConflict(f"{table}/{first.partition_key}: an entity changed since read")
        return self.inner.write_atomically(table, changes)

    def delete(self, table: str, partition_key: str, row_key: str) -> None:
        fault = self._faults.transient("state.delete", writes=True)
        if fault is None or fault.phase is Phase.AFTER:
            self.inner.delete(table, partition_key, row_key)
        if fault is not None:
            raise table_failure(fault, "delete", table)


_HUB_ERRORS: dict[FaultKind, Callable[[str], EventHubError]] = {
    FaultKind.THROTTLED: EventHubError,  # the service's server-busy answer
    FaultKind.UNAVAILABLE: ConnectionLostError,
    FaultKind.TIMEOUT: OperationTimeoutError,
}


class FaultyEventHub(SqliteEventHub):
    """The embedded hub with faults: publish as AzureEventPublisher reports them (one send per partition key
    in turn, so the first ones may have gone out, the failing one too), and the consumer side devhost's
    EventHubDriver reads (receive, checkpoints) failing as the host's own client would."""

    def __init__(self, database: SqliteDatabase, faults: FaultInjector, partitions: int = DEFAULT_PARTITIONS) -> None:
        super().__init__(database, partitions)
        self._faults = faults

    def publish(self, hub: str, events: Sequence[OutboundEvent]) -> PublishOutcome:
        fault = self._faults.transient("hub.publish", writes=True)
        if fault is None:
            return super().publish(hub, events)
        sent = 0
        if fault.phase is Phase.AFTER:
            groups: dict[str | None, list[OutboundEvent]] = {}
            for event in events:
                groups.setdefault(event.partition_key, []).append(event)
            sends = list(groups.values())
            went_out = sends[: self._faults.first_of(sends)]
            super().publish(hub, [event for send in went_out for event in send])
            sent = sum(len(send) for send in went_out[:-1])  # the last one's acknowledgement was lost
        cause = _HUB_ERRORS[fault.kind]("injected")
        raise EventHubSendError(
            f"sending to event hub '{hub}' failed after {sent} of {len(events)} events: {type(cause).__name__}"
        ) from cause

    @staticmethod
    def _consumer_error(fault: Injected, action: str, hub: str, partition: int) -> StorageError:
        cause = _HUB_ERRORS[fault.kind]("injected")
        error = StorageError(f"event hub '{hub}' partition {partition}: {action} failed: {type(cause).__name__}")
        error.__cause__ = cause
        return error

    def receive(self, hub: str, partition: int, after_sequence: int | None, max_events: int) -> list[HubEvent]:
        fault = self._faults.transient("hub.receive", writes=False)
        if fault is not None:
            raise self._consumer_error(fault, "receive", hub, partition)
        return super().receive(hub, partition, after_sequence, max_events)

    def checkpoint(self, hub: str, consumer_group: str, partition: int) -> int | None:
        fault = self._faults.transient("hub.checkpoint", writes=False)
        if fault is not None:
            raise self._consumer_error(fault, "checkpoint read", hub, partition)
        return super().checkpoint(hub, consumer_group, partition)

    def set_checkpoint(self, hub: str, consumer_group: str, partition: int, sequence_number: int) -> None:
        fault = self._faults.transient("hub.set_checkpoint", writes=True)
        if fault is None or fault.phase is Phase.AFTER:
            super().set_checkpoint(hub, consumer_group, partition, sequence_number)
        if fault is not None:
            raise self._consumer_error(fault, "checkpoint write", hub, partition)
