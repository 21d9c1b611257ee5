"""Opens the storage adapters the settings choose; the composition root (shared.app) holds what it opens."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, NoReturn

from shared.ops.readiness import NotConfigured
from shared.settings import BACKEND_EMBEDDED, Settings, SettingsError
from shared.storage.azure.blobs import AzureBlobStore
from shared.storage.azure.clients import (
    COSMOS,
    EVENTHUB,
    IMPORTS,
    STATE,
    blob_service,
    cosmos_client,
    credential,
    resolve_connection,
    table_service,
)
from shared.storage.azure.cosmos_documents import CosmosDocumentStore
from shared.storage.azure.events import AzureEventPublisher
from shared.storage.azure.table_state import TableStateStore
from shared.storage.names import PARTITION_KEY_PATHS
from shared.storage.ports import (
    BlobProperties,
    BlobStore,
    DocumentStore,
    EventPublisher,
    OutboundEvent,
    PublishOutcome,
    StateStore,
)
from shared.storage.sqlite.blobs import BLOBS_FOLDER, FolderBlobStore
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.events import SqliteEventHub
from shared.storage.sqlite.state import SqliteStateStore


@dataclass(frozen=True, slots=True)
class Stores:
    """The four ports, and how to reach a hub in another Event Hubs namespace (named by its setting prefix)."""

    documents: DocumentStore
    state: StateStore
    events: EventPublisher
    blobs: BlobStore
    publisher_for: Callable[[str], EventPublisher] | None = None  # None: `events` holds every hub

    def publisher(self, connection: str | None) -> EventPublisher:
        """The publisher of the namespace a hub's connection names; None is the app's own namespace."""
        if connection is None or self.publisher_for is None:
            return self.events
        return self.publisher_for(connection)


def open_embedded(database: SqliteDatabase) -> Stores:
    """The embedded adapters on one SQLite file; its event hub holds every hub, whatever its connection; blobs are
    files in the folder beside it."""
    return Stores(
        documents=SqliteDocumentStore(database, PARTITION_KEY_PATHS),
        state=SqliteStateStore(database),
        events=SqliteEventHub(database),
        blobs=FolderBlobStore(database.path.parent / BLOBS_FOLDER),
    )


class UnconfiguredPublisher:
    """Stands in for Event Hubs when no EVENTHUB connection is set: publishing names the missing setting."""

    def check(self, hub: str) -> None:
        raise NotConfigured(f"no connection for event hub {hub!r} ({EVENTHUB}__fullyQualifiedNamespace)")

    def publish(self, hub: str, events: Sequence[OutboundEvent]) -> PublishOutcome:
        raise SettingsError(
            f"cannot send to event hub {hub!r}: "
            f"set {EVENTHUB}__fullyQualifiedNamespace (or {EVENTHUB} for the emulator)"
        )


class UnconfiguredBlobStore:
    """Stands in for Blob Storage when no IMPORTS connection is set: the app starts (imports are optional), and
    any use names the missing setting."""

    def _missing(self) -> NoReturn:
        raise SettingsError(
            f"connection {IMPORTS} is not configured: set {IMPORTS}__blobServiceUri "
            f"(or {IMPORTS} for Azurite) to import files of readings"
        )

    def put(
        self, container: str, name: str, data: bytes | BinaryIO | Iterable[bytes], content_type: str | None = None
    ) -> BlobProperties:
        self._missing()

    def properties(self, container: str, name: str) -> BlobProperties | None:
        self._missing()

    def open_read(self, container: str, name: str, offset: int = 0, etag: str | None = None) -> BinaryIO:
        self._missing()

    def read_head(self, container: str, name: str, length: int, etag: str | None = None) -> bytes:
        self._missing()

    def list(self, container: str, prefix: str = "") -> list[BlobProperties]:
        self._missing()

    def delete(self, container: str, name: str) -> None:
        self._missing()


def blob_store(env: Mapping[str, str]) -> BlobStore:
    """Blob Storage of the IMPORTS connection, or a stand-in that names the setting when it is not set."""
    try:
        connection = resolve_connection(env, IMPORTS)
    except SettingsError:
        return UnconfiguredBlobStore()
    return AzureBlobStore(blob_service(connection))


def event_publisher(env: Mapping[str, str], connection_name: str = EVENTHUB) -> EventPublisher:
    """The publisher for the Event Hubs namespace named by the setting prefix `connection_name`."""
    try:
        connection = resolve_connection(env, connection_name)
    except SettingsError:
        if connection_name != EVENTHUB:
            raise  # a hub configured with its own connection must have it
        return UnconfiguredPublisher()
    if connection.connection_string is not None:
        return AzureEventPublisher.from_connection_string(connection.connection_string)
    assert connection.endpoint is not None
    return AzureEventPublisher.from_namespace(connection.endpoint, credential(connection.client_id))


def open_azure(settings: Settings, env: Mapping[str, str]) -> Stores:
    """Cosmos DB, Table Storage, Event Hubs and Blob Storage clients; a missing connection is a start-up error
    that names the settings to set (but Event Hubs and Blob Storage, which only some functions use). Never falls
    back to SQLite: in Azure that would lose data on the next instance."""
    cosmos = resolve_connection(env, COSMOS)
    documents = CosmosDocumentStore(
        cosmos_client(cosmos),
        settings.cosmos_database,
        PARTITION_KEY_PATHS,
        create_missing=cosmos.connection_string is not None,  # an emulator starts empty
    )
    state = TableStateStore(table_service(resolve_connection(env, STATE)))
    return Stores(
        documents=documents,
        state=state,
        events=event_publisher(env),
        blobs=blob_store(env),
        publisher_for=functools.partial(event_publisher, env),
    )


def open_stores(settings: Settings, env: Mapping[str, str]) -> Stores:
    if settings.storage_backend == BACKEND_EMBEDDED:
        return open_embedded(SqliteDatabase.in_directory(settings.embedded_data_dir))
    return open_azure(settings, env)
