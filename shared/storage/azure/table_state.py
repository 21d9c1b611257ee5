"""State store on Azure Table Storage (or Azurite): the state port over azure-data-tables.

Conditional writes use the entity's ETag with If-Match; a 412 (or a 409 on insert-if-absent) becomes
ConcurrencyConflict, which the caller answers by re-reading and re-merging. write_many sends its
independent writes concurrently, since each is its own HTTP request; write_atomically uses one entity-group
transaction (at most 100 entities of one partition).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import EntityProperty, TableClient, TableServiceClient, TableTransactionError, UpdateMode

from shared.storage.names import WINDOWS_TABLE
from shared.storage.paging import check_page_limit, decode_continuation, encode_continuation
from shared.storage.ports import (
    MAX_ATOMIC_WRITES,
    ConcurrencyConflict,
    Entity,
    EntityPage,
    EntityWrite,
    StorageError,
    prefix_end,
)

_PARALLEL_WRITES = 16
_KEYS = ("PartitionKey", "RowKey")
_NEXT = "next"  # the token holds the service's NextPartitionKey and NextRowKey: where the next page starts


class TableStorageError(StorageError):
    """A Table Storage call failed after the SDK's retries; the message has the status, never a key."""


def _failure(action: str, table: str, error: Exception) -> TableStorageError:
    status = getattr(error, "status_code", None)
    return TableStorageError(f"Table Storage {action} on {table!r} failed (status {status}): {type(error).__name__}")


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, EntityProperty) else value


def _entity(raw: Mapping[str, Any]) -> Entity:
    etag = getattr(raw, "metadata", {}).get("etag", "")
    properties = {k: _plain(v) for k, v in raw.items() if k not in _KEYS}
    return Entity(str(raw["PartitionKey"]), str(raw["RowKey"]), properties, str(etag))


def _etag_of(response: Mapping[str, Any]) -> str:
    return str(response.get("etag", ""))


class TableStateStore:
    def __init__(self, service: TableServiceClient) -> None:
        self._service = service
        self._tables: dict[str, TableClient] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=_PARALLEL_WRITES, thread_name_prefix="table-write")

    def _table(self, name: str) -> TableClient:
        """The table's client; the table is created on first use in this process (infra creates it in Azure)."""
        with self._lock:
            client = self._tables.get(name)
            if client is None:
                try:
                    self._service.create_table_if_not_exists(name)
                except (HttpResponseError, AzureError) as error:
                    raise _failure("create table", name, error) from error
                client = self._tables[name] = self._service.get_table_client(name)
            return client

    def check(self) -> None:
        """Readiness: the table service answers an entity read (a missing entity is a fine answer)."""
        self.get(WINDOWS_TABLE, "readiness", "readiness")

    def get(self, table: str, partition_key: str, row_key: str) -> Entity | None:
        try:
            return _entity(self._table(table).get_entity(partition_key, row_key))
        except ResourceNotFoundError:
            return None
        except (HttpResponseError, AzureError) as error:
            raise _failure("read", table, error) from error

    def query(self, table: str, partition_key: str | None = None) -> list[Entity]:
        client = self._table(table)
        try:
            if partition_key is None:
                rows = client.list_entities()
            else:
                rows = client.query_entities("PartitionKey eq @pk", parameters={"pk": partition_key})
            found = [_entity(row) for row in rows]
        except (HttpResponseError, AzureError) as error:
            raise _failure("query", table, error) from error
        return sorted(found, key=lambda e: (e.partition_key, e.row_key))

    def query_prefix(self, table: str, partition_key: str, prefix: str) -> list[Entity]:
        end = prefix_end(prefix)
        try:
            rows = self._table(table).query_entities(
                "PartitionKey eq @pk and RowKey ge @start and RowKey lt @end",
                parameters={"pk": partition_key, "start": prefix, "end": end},
            )
            found = [_entity(row) for row in rows]
        except (HttpResponseError, AzureError) as error:
            raise _failure("query", table, error) from error
        return sorted(found, key=lambda e: e.row_key)

    def query_page(self, table: str, limit: int, continuation: str | None = None) -> EntityPage:
        check_page_limit(limit)
        # The SDK types the token as str, but its entity pages take and give the next keys as a dict.
        next_keys: Any = None
        if continuation is not None:
            partition_key, row_key = decode_continuation(continuation, table, _NEXT)
            if not partition_key:  # the service always names the next partition; without it paging restarts
                raise ValueError("continuation is not one this store issued")
            next_keys = {"PartitionKey": partition_key, "RowKey": row_key}
        client = self._table(table)
        try:
            pages = client.list_entities(results_per_page=limit).by_page(continuation_token=next_keys)
            entities = [_entity(row) for row in next(pages)]
        except HttpResponseError as error:
            if continuation is not None and error.status_code == 400:
                raise ValueError("continuation is not one this store issued") from error
            raise _failure("query", table, error) from error
        except AzureError as error:
            raise _failure("query", table, error) from error
        following: object = getattr(pages, "continuation_token", None)
        if not isinstance(following, Mapping):
            return EntityPage(entities, None)
        position = (following.get("PartitionKey"), following.get("RowKey"))
        return EntityPage(entities, encode_continuation(table, _NEXT, position))

    def upsert(self, table: str, partition_key: str, row_key: str, properties: Mapping[str, Any]) -> Entity:
        body = {**properties, "PartitionKey": partition_key, "RowKey": row_key}
        try:
            response = self._table(table).upsert_entity(body, mode=UpdateMode.REPLACE)
        except (HttpResponseError, AzureError) as error:
            raise _failure("upsert", table, error) from error
        return Entity(partition_key, row_key, dict(properties), _etag_of(response))

    def write(self, table: str, change: EntityWrite) -> Entity:
        result = self._write(table, change)
        if isinstance(result, ConcurrencyConflict):
            raise result
        return result

    def _write(self, table: str, change: EntityWrite) -> Entity | ConcurrencyConflict:
        client = self._table(table)
        body = {**change.properties, "PartitionKey": change.partition_key, "RowKey": change.row_key}
        where = f"{table}/{change.partition_key}/{change.row_key}"
        try:
            if change.etag is None:
                response = client.create_entity(body)
            else:
                response = client.update_entity(
                    body, mode=UpdateMode.REPLACE, etag=change.etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceExistsError:
            return ConcurrencyConflict(f"{where} already exists")
        except (ResourceModifiedError, ResourceNotFoundError):
            return ConcurrencyConflict(f"{where} changed since read")
        except HttpResponseError as error:
            if error.status_code in (409, 412):
                return ConcurrencyConflict(f"{where} changed since read")
            raise _failure("write", table, error) from error
        except AzureError as error:
            raise _failure("write", table, error) from error
        return Entity(change.partition_key, change.row_key, dict(change.properties), _etag_of(response))

    def write_many(self, table: str, changes: Sequence[EntityWrite]) -> list[Entity | ConcurrencyConflict]:
        if len(changes) <= 1:
            return [self._write(table, change) for change in changes]
        self._table(table)  # create it once, before the writers race for it
        return list(self._pool.map(lambda change: self._write(table, change), changes))

    def write_atomically(self, table: str, changes: Sequence[EntityWrite]) -> list[Entity]:
        """All or nothing, in one entity-group transaction: one partition, at most 100 entities.
        Raises ConcurrencyConflict when any condition fails (then nothing was written)."""
        if not changes:
            return []
        if len(changes) > MAX_ATOMIC_WRITES:
            raise ValueError(f"a transaction holds at most {MAX_ATOMIC_WRITES} entities")
        if len({change.partition_key for change in changes}) != 1:
            raise ValueError("a transaction's entities must share one partition key")
        operations: list[Any] = []
        for change in changes:
            body = {**change.properties, "PartitionKey": change.partition_key, "RowKey": change.row_key}
            if change.etag is None:
                operations.append(("create", body))
            else:
                operations.append(
                    (
                        "update",
                        body,
                        {
                            "mode": UpdateMode.REPLACE,
                            "etag": change.etag,
                            "match_condition": MatchConditions.IfNotModified,
                        },
                    )
                )
        try:
            responses = self._table(table).submit_transaction(operations)
        except TableTransactionError as error:
            if error.status_code in (409, 412):
                raise ConcurrencyConflict(f"{table}/{changes[0].partition_key}: an entity changed since read") from None
            raise _failure("transaction", table, error) from error
        except (HttpResponseError, AzureError) as error:
            raise _failure("transaction", table, error) from error
        return [
            Entity(change.partition_key, change.row_key, dict(change.properties), _etag_of(response))
            for change, response in zip(changes, responses, strict=True)
        ]

    def delete(self, table: str, partition_key: str, row_key: str) -> None:
        try:
            self._table(table).delete_entity(partition_key, row_key)
        except (HttpResponseError, AzureError) as error:
            raise _failure("delete", table, error) from error

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for client in self._tables.values():
            client.close()
        self._service.close()
