"""Fixtures that hand every contract test each adapter of a port: SQLite always, the Azure adapters on
their local stand-ins (marked `integration`). An adapter that cannot do what a case checks skips it with
the reason; everything else must behave the same on every adapter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import CosmosClient, PartitionKey

from shared.storage.azure.blobs import AzureBlobStore
from shared.storage.azure.clients import COSMOS_RETRY, IMPORTS, Connection, blob_service, table_service
from shared.storage.azure.cosmos_documents import CosmosDocumentStore
from shared.storage.azure.table_state import TableStateStore
from shared.storage.names import PARTITION_KEY_PATHS
from shared.storage.ports import BlobStore, DocumentStore, StateStore
from shared.storage.sqlite.blobs import FolderBlobStore
from shared.storage.sqlite.database import SqliteDatabase
from shared.storage.sqlite.documents import SqliteDocumentStore
from shared.storage.sqlite.state import SqliteStateStore
from tests.emulators import Emulator


@dataclass
class Subject:
    """One adapter under test, with what it cannot do and why."""

    name: str
    store: Any
    lacks: dict[str, str] = field(default_factory=dict)

    def require(self, capability: str) -> None:
        if capability in self.lacks:
            pytest.skip(f"{self.name}: {self.lacks[capability]}")


@pytest.fixture(scope="session")
def cosmos_client(cosmos_stand_in: Emulator) -> Iterator[CosmosClient]:
    client = CosmosClient(
        cosmos_stand_in.extra["endpoint"],
        credential=cosmos_stand_in.extra["key"],
        connection_verify=False,
        **COSMOS_RETRY,
    )
    yield client


COSMOS_LACKS = {
    "change_feed": "the Cosmos stand-in has no change feed (tested with a recorded SDK response instead)",
    "ttl": "the Cosmos stand-in does not expire documents by ttl",
    "missing_read": "the Cosmos stand-in answers a point read of a missing document with 500, not 404",
}


@pytest.fixture(params=["sqlite", pytest.param("cosmos", marks=pytest.mark.integration)])
def documents(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    if request.param == "sqlite":
        database = SqliteDatabase.in_directory(tmp_path)
        yield Subject("sqlite", SqliteDocumentStore(database, PARTITION_KEY_PATHS))
        database.close()
        return
    client: CosmosClient = request.getfixturevalue("cosmos_client")
    name = f"contract-{uuid.uuid4().hex[:12]}"  # a database per test: cases never see each other's documents
    database_proxy = client.create_database(name)
    for container, path in PARTITION_KEY_PATHS.items():
        database_proxy.create_container(container, PartitionKey(path))
    yield Subject("cosmos", CosmosDocumentStore(client, name, PARTITION_KEY_PATHS), dict(COSMOS_LACKS))
    client.delete_database(name)


@pytest.fixture(params=["sqlite", pytest.param("tables", marks=pytest.mark.integration)])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    if request.param == "sqlite":
        database = SqliteDatabase.in_directory(tmp_path)
        yield Subject("sqlite", SqliteStateStore(database))
        database.close()
        return
    emulator: Emulator = request.getfixturevalue("azurite")
    store = TableStateStore(table_service(Connection("STATE", emulator.extra["connection_string"], None, None)))
    yield Subject("tables", store)
    store.close()


FOLDER_LACKS = {
    "blob_beside_folder": "a folder store cannot hold a blob 'a' and a blob 'a/b' (a file and a folder of one name)",
}


@pytest.fixture(params=["folder", pytest.param("azure", marks=pytest.mark.integration)])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    if request.param == "folder":
        yield Subject("folder", FolderBlobStore(tmp_path / "blobs"), dict(FOLDER_LACKS))
        return
    emulator: Emulator = request.getfixturevalue("azurite")
    store = AzureBlobStore(blob_service(Connection(IMPORTS, emulator.extra["blob_connection_string"], None, None)))
    yield Subject("azure", store)
    store.close()


@pytest.fixture
def container() -> str:
    """A fresh container name per test, so cases on a shared Azurite never see each other's blobs."""
    return f"c{uuid.uuid4().hex[:16]}"


@pytest.fixture
def table() -> str:
    """A fresh table name per test, so cases on a shared Azurite never see each other's entities."""
    return f"t{uuid.uuid4().hex[:16]}"


__all__ = ["BlobStore", "DocumentStore", "StateStore", "Subject"]
