"""Azure SDK clients from app settings, with the same setting names the trigger bindings use.

A connection named NAME is either a connection string in `NAME` (emulators: Azurite, the Cosmos DB and
Event Hubs emulators) or identity-based: `NAME__accountEndpoint` (Cosmos DB), `NAME__tableServiceUri`
(Tables), `NAME__fullyQualifiedNamespace` (Event Hubs), `NAME__blobServiceUri` (Blobs), with `NAME__clientId`
naming a user-assigned managed identity (else AZURE_CLIENT_ID). One credential object per client id per process.

Retries are the SDKs' own, set here deliberately: Cosmos retries 429s up to 9 times within 30 s (honouring
the service's retry-after), connection errors and read timeouts 3 times with exponential backoff, and a
503 once per region (it fails over); Tables retries 408/429/5xx 5 times, exponentially; Blobs retries 408/5xx
(Blob Storage throttles with 503) and connection errors 4 times, 1, 3, 5 and 9 s apart (the SDK's default
waits 15 s and more, longer than an HTTP caller waits), and moves at most 4 MiB per request, so a blob is
never held whole in memory. A failure after that is a StorageError, and the trigger's retry policy takes
over (tests/contract/test_cosmos_faults.py).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import urllib3
from azure.core.credentials import TokenCredential
from azure.cosmos import CosmosClient
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from shared.settings import SettingsError

COSMOS = "COSMOS"
STATE = "STATE"
EVENTHUB = "EVENTHUB"
IMPORTS = "IMPORTS"  # the blob service that holds files of readings to import
AZURE_CLIENT_ID = "AZURE_CLIENT_ID"

ENDPOINT_SUFFIXES = {
    COSMOS: "accountEndpoint",
    STATE: "tableServiceUri",
    EVENTHUB: "fullyQualifiedNamespace",
    IMPORTS: "blobServiceUri",
}
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}

COSMOS_RETRY: dict[str, Any] = {
    "retry_total": 9,  # throttled (429) attempts before giving up
    "retry_backoff_max": 30,  # seconds of throttling waits at most
    "retry_backoff_factor": 0.5,
    "retry_mode": "exponential",
    "retry_connect": 3,
    "retry_read": 3,
    "retry_write": 3,  # upserts with fixed ids are idempotent, so retrying them is safe
    "connection_timeout": 5,
    "read_timeout": 30,
}
TABLES_RETRY: dict[str, Any] = {
    "retry_total": 5,
    "retry_backoff_factor": 0.4,
    "retry_backoff_max": 20,
    "retry_mode": "exponential",
    "connection_timeout": 5,
    "read_timeout": 30,
}
BLOB_PIECE_BYTES = 4 * 1024 * 1024
BLOBS_RETRY: dict[str, Any] = {
    "retry_total": 4,
    "retry_connect": 3,
    "retry_read": 3,
    "retry_status": 4,
    "initial_backoff": 1,  # seconds before the first retry; then initial_backoff + increment_base ** n
    "increment_base": 2,
    "random_jitter_range": 1,
    "connection_timeout": 5,
    "read_timeout": 60,
    "max_single_get_size": BLOB_PIECE_BYTES,  # the first GET of a download
    "max_chunk_get_size": BLOB_PIECE_BYTES,  # each further GET
    "max_single_put_size": BLOB_PIECE_BYTES,  # larger writes go as staged blocks
    "max_block_size": BLOB_PIECE_BYTES,
}


@dataclass(frozen=True, slots=True)
class Connection:
    """Where one connection points; `connection_string` is set only for emulators (never logged)."""

    name: str
    connection_string: str | None
    endpoint: str | None
    client_id: str | None

    def __repr__(self) -> str:  # the connection string may hold a key: never print it
        return f"Connection(name={self.name!r}, endpoint={self.endpoint!r}, client_id={self.client_id!r})"


def resolve_connection(env: Mapping[str, str], name: str, suffix: str | None = None) -> Connection:
    suffix = suffix or ENDPOINT_SUFFIXES[name]
    connection_string = env.get(name, "").strip() or None
    endpoint = env.get(f"{name}__{suffix}", "").strip() or None
    client_id = env.get(f"{name}__clientId", "").strip() or env.get(AZURE_CLIENT_ID, "").strip() or None
    if connection_string is None and endpoint is None:
        raise SettingsError(
            f"connection {name} is not configured: set {name}__{suffix} (managed identity) "
            f"or {name} (a connection string, for emulators only)"
        )
    return Connection(name, connection_string, endpoint, client_id)


_credential_lock = threading.Lock()
_credentials: dict[str | None, TokenCredential] = {}  # one per client id: each holds its own token cache


def credential(client_id: str | None) -> TokenCredential:
    """The process's credential for a managed identity's client id (None: the default identity or login)."""
    with _credential_lock:
        found = _credentials.get(client_id)
        if found is None:
            # Imported here: azure-identity is only needed when a connection is identity-based.
            from azure.identity import DefaultAzureCredential

            # In Azure: the user-assigned managed identity named by its client id; locally: the developer's login.
            found = _credentials[client_id] = DefaultAzureCredential(managed_identity_client_id=client_id)
        return found


def parse_pairs(connection_string: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for part in connection_string.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            pairs[key.strip().lower()] = value.strip()
    return pairs


def is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in _LOOPBACK


def cosmos_client(connection: Connection) -> CosmosClient:
    if connection.connection_string is not None:
        pairs = parse_pairs(connection.connection_string)
        endpoint, key = pairs.get("accountendpoint"), pairs.get("accountkey")
        if not endpoint or not key:
            raise SettingsError(f"{connection.name} must hold AccountEndpoint=...;AccountKey=...")
        # The emulators serve a self-signed certificate; verification is relaxed for loopback only.
        verify = not is_loopback(endpoint)
        if not verify:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        return CosmosClient(endpoint, credential=key, connection_verify=verify, **COSMOS_RETRY)
    assert connection.endpoint is not None
    return CosmosClient(connection.endpoint, credential=credential(connection.client_id), **COSMOS_RETRY)


def table_service(connection: Connection) -> TableServiceClient:
    if connection.connection_string is not None:
        return TableServiceClient.from_connection_string(connection.connection_string, **TABLES_RETRY)
    assert connection.endpoint is not None
    return TableServiceClient(connection.endpoint, credential=credential(connection.client_id), **TABLES_RETRY)


def blob_service(connection: Connection) -> BlobServiceClient:
    if connection.connection_string is not None:
        try:
            return BlobServiceClient.from_connection_string(connection.connection_string, **BLOBS_RETRY)
        except ValueError:
            # The SDK's message may quote the string, key included: name the setting only.
            raise SettingsError(f"{connection.name} is not a storage connection string") from None
    assert connection.endpoint is not None
    return BlobServiceClient(connection.endpoint, credential=credential(connection.client_id), **BLOBS_RETRY)
