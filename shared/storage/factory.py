"""Chooses the storage adapters from settings; one set of clients per process."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from shared.settings import BACKEND_EMBEDDED, STORAGE_BACKEND, Settings, SettingsError, get_settings
from shared.storage.names import PARTITION_KEY_PATHS
from shared.storage.ports import DocumentStore, EventPublisher, StateStore
from shared.storage.sqlite_database import SqliteDatabase
from shared.storage.sqlite_documents import SqliteDocumentStore
from shared.storage.sqlite_events import SqliteEventHub
from shared.storage.sqlite_state import SqliteStateStore


@dataclass(frozen=True, slots=True)
class Stores:
    documents: DocumentStore
    state: StateStore
    events: EventPublisher


def open_embedded(database: SqliteDatabase) -> Stores:
    return Stores(
        documents=SqliteDocumentStore(database, PARTITION_KEY_PATHS),
        state=SqliteStateStore(database),
        events=SqliteEventHub(database),
    )


def open_stores(settings: Settings) -> Stores:
    if settings.storage_backend == BACKEND_EMBEDDED:
        return open_embedded(SqliteDatabase.in_directory(settings.embedded_data_dir))
    # Never fall back to SQLite silently: in Azure that would lose data on the next instance.
    raise SettingsError(
        f"{STORAGE_BACKEND}={settings.storage_backend}: the Azure adapters are not available in this build; "
        f"set {STORAGE_BACKEND}={BACKEND_EMBEDDED} to run on embedded storage"
    )


@functools.cache
def get_stores() -> Stores:
    """The process's storage clients, created on first use."""
    return open_stores(get_settings())
