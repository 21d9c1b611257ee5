"""Storage ports: the four small interfaces the app talks to. Adapters live beside this module."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Protocol

Document = dict[str, Any]
# Field and container names that may be spliced into a query: identifiers only, never user text.
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Fields Cosmos DB sets on every document (the embedded store sets them too): never the caller's to write, and
# new on every write, even one that rewrites the same content.
SYSTEM_PROPERTIES = frozenset({"_rid", "_self", "_etag", "_attachments", "_ts", "_lsn"})


def public_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """A document as the API shows it: without the store's system fields and its storage lifetime (ttl)."""
    return {k: v for k, v in document.items() if not k.startswith("_") and k != "ttl"}


def prefix_end(prefix: str) -> str:
    """The least string after every string that starts with `prefix`: the exclusive end of its row-key range."""
    if not prefix:
        raise ValueError("a prefix is at least one character")
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class StorageError(RuntimeError):
    """A storage call failed in a way the caller cannot fix by re-reading (retry the invocation)."""


MAX_ATOMIC_WRITES = 100  # Table Storage's limit for one entity-group transaction


class ConcurrencyConflict(StorageError):
    """The entity changed since it was read (Table Storage's 412/409): re-read and re-merge."""


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    documents: list[Document]
    continuation: str | None


class DocumentStore(Protocol):
    """Cosmos-like containers of JSON documents, partitioned by a key field."""

    def upsert_many(self, container: str, documents: Sequence[Mapping[str, Any]]) -> None: ...

    def insert_new(self, container: str, documents: Sequence[Mapping[str, Any]]) -> list[Document]:
        """Write every document whose (partition key, id) is not stored yet, and return the stored documents of
        those that were (left unchanged), in the order given. Each document is written or found atomically: of
        two writers of one address, one writes and the other gets the winner's document. A document given twice
        in one call is written once and answered as found the second time. Every document is checked (id,
        partition key) before any is written; a failure raises, and some documents may be written already."""
        ...

    def read(self, container: str, partition_key: str, document_id: str) -> Document | None: ...

    def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        """The stored documents at these (partition key, id) addresses, keyed by address; a missing one is left
        out. Batched: far fewer requests than keys."""
        ...

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
        """Newest first by `order_by` within one partition, optionally filtered on exact field values, on
        `order_by` >= `since` and on `order_by` <= `until` (both bounds included); with `fields`, each document
        carries only those fields (a projection)."""
        ...

    def read_changes(self, container: str, continuation: str | None, max_items: int) -> ChangeBatch:
        """Documents created or replaced after `continuation` (None: from the beginning), oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class Entity:
    partition_key: str
    row_key: str
    properties: dict[str, Any]
    etag: str


@dataclass(frozen=True, slots=True)
class EntityWrite:
    """A conditional write: etag None inserts only if absent; otherwise the stored etag must match."""

    partition_key: str
    row_key: str
    properties: Mapping[str, Any]
    etag: str | None = None


MAX_ENTITY_PAGE = 1000  # Table Storage answers at most 1,000 entities per request


@dataclass(frozen=True, slots=True)
class EntityPage:
    entities: list[Entity]
    continuation: str | None  # opaque; None when nothing follows


class StateStore(Protocol):
    """Table-Storage-like entities with ETags."""

    def get(self, table: str, partition_key: str, row_key: str) -> Entity | None: ...

    def query(self, table: str, partition_key: str | None = None) -> list[Entity]:
        """Every entity of one partition, or of the whole table when partition_key is None."""
        ...

    def query_prefix(self, table: str, partition_key: str, prefix: str) -> list[Entity]:
        """The entities of one partition whose row key starts with `prefix` (not empty), in row-key order: a range
        query, so it costs what it returns, not the partition's size."""
        ...

    def query_page(self, table: str, limit: int, continuation: str | None = None) -> EntityPage:
        """Up to `limit` entities of the table in (PartitionKey, RowKey) order, starting where `continuation` (from
        the previous page) says. A page may hold fewer than `limit` entities even when more follow (Table Storage
        ends pages at its own boundaries); callers go on while `continuation` is not None. Raises ValueError for a
        continuation this store did not issue (garbled, tampered, or from another table), and for a `limit` outside
        1..MAX_ENTITY_PAGE."""
        ...

    def upsert(self, table: str, partition_key: str, row_key: str, properties: Mapping[str, Any]) -> Entity: ...

    def write(self, table: str, change: EntityWrite) -> Entity:
        """Conditional write; raises ConcurrencyConflict when the condition fails."""
        ...

    def write_many(self, table: str, changes: Sequence[EntityWrite]) -> list[Entity | ConcurrencyConflict]:
        """Independent conditional writes: each succeeds or conflicts on its own."""
        ...

    def write_atomically(self, table: str, changes: Sequence[EntityWrite]) -> list[Entity]:
        """Conditional writes that all succeed or none does (Table Storage's entity-group transaction): one
        partition key, at most 100 entities; raises ConcurrencyConflict when any condition fails."""
        ...

    def delete(self, table: str, partition_key: str, row_key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    body: bytes
    partition_key: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)


MAX_EVENT_BYTES = 1_048_576  # Event Hubs Standard: one event, and one batch, carry at most 1 MiB


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """What a publish did: `too_large` holds the very event objects passed in that no batch of the hub can
    carry; they are never sent, never fail the call, and the caller dead-letters them."""

    sent: int
    too_large: list[OutboundEvent] = field(default_factory=list)


class EventPublisher(Protocol):
    """Event Hubs producer side."""

    def publish(self, hub: str, events: Sequence[OutboundEvent]) -> PublishOutcome:
        """Send every event that fits; raises StorageError when the hub cannot be reached or refuses a send."""
        ...


@dataclass(frozen=True, slots=True)
class BlobProperties:
    name: str
    etag: str  # opaque, changes on every write of the blob, stable otherwise
    size: int
    last_modified: datetime  # aware UTC
    content_type: str | None


DEFAULT_CONTENT_TYPE = "application/octet-stream"  # what Blob Storage records when a write names no type
MAX_BLOB_NAME = 1024
_CONTAINER_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class BlobNotFound(StorageError):
    """The blob (or its container) does not exist."""


class BlobChanged(ConcurrencyConflict):
    """A read pinned to an etag found another version of the blob."""


def check_container_name(container: str) -> None:
    """Raises ValueError unless `container` follows Blob Storage's rule for container names."""
    if not (3 <= len(container) <= 63 and _CONTAINER_NAME.fullmatch(container)):
        raise ValueError(
            f"invalid container name {container!r}: 3 to 63 lower-case letters, digits and single hyphens, "
            "starting and ending with a letter or digit"
        )


def check_blob_name(name: str) -> None:
    """Raises ValueError unless `name` is a blob name every blob store keeps as it is: 1 to 1024 characters,
    `/` between virtual folders, no empty, `.` or `..` segment, no backslash and no control character."""
    if not 1 <= len(name) <= MAX_BLOB_NAME:
        raise ValueError(f"invalid blob name: 1 to {MAX_BLOB_NAME} characters (this one has {len(name)})")
    if "\\" in name:
        raise ValueError(f"invalid blob name {name!r}: no backslash (use / between folders)")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ValueError(f"invalid blob name {name!r}: no control characters")
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        raise ValueError(f"invalid blob name {name!r}: no empty, '.' or '..' segment between slashes")


class BlobStore(Protocol):
    """Azure-Blob-like containers of immutable-per-version files.

    Names are checked by check_container_name and check_blob_name (ValueError otherwise). A write without a
    content type records DEFAULT_CONTENT_TYPE, as Blob Storage does."""

    def put(
        self,
        container: str,
        name: str,
        data: bytes | BinaryIO | Iterable[bytes],
        content_type: str | None = None,
    ) -> BlobProperties:
        """Create or replace; the container is created when missing. A stream/iterable is written without holding
        it whole in memory. Readers never see a half-written blob."""
        ...

    def properties(self, container: str, name: str) -> BlobProperties | None: ...

    def open_read(self, container: str, name: str, offset: int = 0, etag: str | None = None) -> BinaryIO:
        """A readable binary stream from `offset` to the end (empty when `offset` is at or past the end), fetched in
        bounded pieces (never the whole blob in memory); the caller closes it. With `etag`, raises BlobChanged (at
        open, or on a later read) if the blob is another version now; BlobNotFound if absent. A reader never gets
        bytes of two versions: a replace during the read either goes unseen or raises BlobChanged."""
        ...

    def read_head(self, container: str, name: str, length: int, etag: str | None = None) -> bytes:
        """The first `length` bytes (fewer if the blob is smaller); BlobNotFound / BlobChanged as open_read."""
        ...

    def list(self, container: str, prefix: str = "") -> list[BlobProperties]:
        """Every blob of the container whose name starts with prefix, by name; [] when the container does not
        exist."""
        ...

    def delete(self, container: str, name: str) -> None:
        """Removes the blob; absent is fine."""
        ...
