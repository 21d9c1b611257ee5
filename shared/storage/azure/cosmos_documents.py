"""Document store on Azure Cosmos DB (NoSQL API): the documents port over azure-cosmos.

Every query is scoped to one partition (the partition key is passed to the SDK and repeated in the WHERE
clause, which the service uses to route and which the Cosmos stand-in used in tests requires); the hot path
never fans out across partitions. Each response's request charge is added to `charges`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import AzureError
from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey
from azure.cosmos.exceptions import (
    CosmosHttpResponseError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)

from shared.storage.azure.request_charges import RequestCharges
from shared.storage.names import READINGS, SUMMARIES
from shared.storage.ports import FIELD_NAME, SYSTEM_PROPERTIES, ChangeBatch, Document, StorageError

_PARALLEL_WRITES = 8
_CREATE_ATTEMPTS = 3  # create, or read what a 409 says is there; again only if it vanished in between
_FROM_TIME = "from-time:"  # a continuation meaning "changes after this moment" (see end_of_feed)


class CosmosStorageError(StorageError):
    """A Cosmos call failed after the SDK's own retries; the message has the status, never a key."""


def _failure(action: str, container: str, error: Exception) -> CosmosStorageError:
    status = getattr(error, "status_code", None)
    return CosmosStorageError(f"Cosmos DB {action} on {container!r} failed (status {status}): {type(error).__name__}")


class CosmosDocumentStore:
    def __init__(
        self,
        client: CosmosClient,
        database: str,
        partition_key_paths: Mapping[str, str],
        charges: RequestCharges | None = None,
        create_missing: bool = False,
    ) -> None:
        self._client = client
        self._database_name = database
        self._create_missing = create_missing
        self._database = client.get_database_client(database)
        self._paths = dict(partition_key_paths)
        self.charges = charges if charges is not None else RequestCharges()
        self._containers: dict[str, ContainerProxy] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=_PARALLEL_WRITES, thread_name_prefix="cosmos-write")

    def _container(self, name: str) -> ContainerProxy:
        with self._lock:
            proxy = self._containers.get(name)
            if proxy is None:
                creating = self._create_missing
                proxy = self._create(name) if creating else self._database.get_container_client(name)
                self._containers[name] = proxy
            return proxy

    def _create(self, name: str) -> ContainerProxy:
        """Emulators only (key auth): with managed identity the data plane cannot create containers, and
        infra/ does. The partition key paths are the design's."""
        try:
            database = self._client.create_database_if_not_exists(self._database_name)
            path = self._paths.get(name, "/sensor_id")
            return database.create_container_if_not_exists(name, PartitionKey(path))
        except (CosmosHttpResponseError, AzureError) as error:
            raise _failure("create container", name, error) from error

    def check(self) -> None:
        """Readiness: the account answers and both containers exist (a metadata read, allowed to the app's
        data-plane role)."""
        for name in (READINGS, SUMMARIES):
            try:
                self._container(name).read()
            except (CosmosHttpResponseError, AzureError) as error:
                raise _failure("check container", name, error) from error

    def _pk_field(self, container: str) -> str:
        return self._paths.get(container, "/sensor_id").lstrip("/")

    def _hook(self, container: str, operation: str) -> Callable[[Mapping[str, Any], Any], None]:
        def record(headers: Mapping[str, Any], _body: Any) -> None:
            self.charges.add_from_headers(container, operation, headers)

        return record

    def _bodies(self, container: str, documents: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The documents as written: each checked (id, partition key) before any is, without system fields."""
        field = self._pk_field(container)
        bodies: list[dict[str, Any]] = []
        for document in documents:
            doc_id, pk = document.get("id"), document.get(field)
            if not isinstance(doc_id, str) or not doc_id:
                raise StorageError("document has no string id")
            if not isinstance(pk, str) or not pk:
                raise StorageError(f"document has no partition key {field!r} for container {container!r}")
            bodies.append({k: v for k, v in document.items() if k not in SYSTEM_PROPERTIES})
        return bodies

    def upsert_many(self, container: str, documents: Sequence[Mapping[str, Any]]) -> None:
        """Every document is checked before any is written; then point upserts, a few at a time (the SDK's
        connection pool is shared). A failure raises, and the others may still land: ids are fixed, so the
        trigger's retry rewrites the same documents."""
        bodies = self._bodies(container, documents)
        proxy = self._container(container)
        hook = self._hook(container, "upsert")

        def upsert(body: dict[str, Any]) -> None:
            proxy.upsert_item(body, response_hook=hook)

        try:
            if len(bodies) == 1:
                upsert(bodies[0])
            else:
                for _ in self._pool.map(upsert, bodies):
                    pass
        except (CosmosHttpResponseError, AzureError) as error:
            raise _failure("upsert", container, error) from error

    def insert_new(self, container: str, documents: Sequence[Mapping[str, Any]]) -> list[Document]:
        """Point creates, a few at a time: a create is atomic in Cosmos DB, and a 409 means the address is taken,
        so the stored document is read instead. A document deleted (or expired) between the 409 and the read is
        created again. A failure raises, and the others may have landed."""
        bodies = self._bodies(container, documents)
        if not bodies:
            return []
        proxy = self._container(container)
        field = self._pk_field(container)
        create_hook, read_hook = self._hook(container, "create"), self._hook(container, "read")

        def create_or_find(body: dict[str, Any]) -> Document | None:
            for _ in range(_CREATE_ATTEMPTS):
                try:
                    proxy.create_item(body, response_hook=create_hook)
                    return None
                except CosmosResourceExistsError:
                    pass
                try:
                    found: Document = proxy.read_item(body["id"], partition_key=body[field], response_hook=read_hook)
                    return found
                except CosmosResourceNotFoundError:
                    continue  # gone again since the 409: try to create it once more
            raise CosmosStorageError(f"Cosmos DB create on {container!r} kept meeting a document being deleted")

        try:
            # One document needs no hop to the pool.
            one = len(bodies) == 1
            results = [create_or_find(bodies[0])] if one else list(self._pool.map(create_or_find, bodies))
        except (CosmosHttpResponseError, AzureError) as error:
            raise _failure("create", container, error) from error
        return [found for found in results if found is not None]

    def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        """The SDK's read_items: point reads batched into one query per partition key range (chunks of 1,000)."""
        if not keys:
            return {}
        field = self._pk_field(container)
        try:
            items = self._container(container).read_items(
                items=[(doc_id, pk) for pk, doc_id in dict.fromkeys(keys)],
                executor=self._pool,
                response_hook=self._hook(container, "read_many"),
            )
        except (CosmosHttpResponseError, AzureError) as error:
            raise _failure("read many", container, error) from error
        wanted = set(keys)
        found: dict[tuple[str, str], Document] = {}
        for item in items:
            key = (item.get(field), item.get("id"))
            if key in wanted:  # the query matches ids within ranges: keep only the addresses asked for
                found[(str(key[0]), str(key[1]))] = dict(item)
        return found

    def read(self, container: str, partition_key: str, document_id: str) -> Document | None:
        try:
            found: Document = self._container(container).read_item(
                document_id, partition_key=partition_key, response_hook=self._hook(container, "read")
            )
        except CosmosResourceNotFoundError:
            return None
        except (CosmosHttpResponseError, AzureError) as error:
            raise _failure("read", container, error) from error
        return found

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
        field = self._pk_field(container)
        names = [field, order_by, *(equals or {}), *(fields or ())]
        if not all(FIELD_NAME.match(name) for name in names):
            raise ValueError("field names must be identifiers")
        # A projection costs the same RU to find the documents but sends only the named fields back.
        selected = ", ".join(f"c.{name}" for name in fields) if fields else "*"
        query = f"SELECT TOP @limit {selected} FROM c WHERE c.{field} = @pk"
        parameters: list[dict[str, Any]] = [
            {"name": "@limit", "value": int(limit)},
            {"name": "@pk", "value": partition_key},
        ]
        for n, (name, value) in enumerate((equals or {}).items()):
            query += f" AND c.{name} = @v{n}"
            parameters.append({"name": f"@v{n}", "value": value})
        if since is not None:
            query += f" AND c.{order_by} >= @since"
            parameters.append({"name": "@since", "value": since})
        if until is not None:
            query += f" AND c.{order_by} <= @until"
            parameters.append({"name": "@until", "value": until})
        query += f" ORDER BY c.{order_by} DESC"
        try:
            items = self._container(container).query_items(
                query,
                parameters=parameters,
                partition_key=partition_key,
                response_hook=self._hook(container, "query"),
            )
            return [dict(item) for item in items]
        except (CosmosHttpResponseError, AzureError) as error:
            raise _failure("query", container, error) from error

    def read_changes(self, container: str, continuation: str | None, max_items: int) -> ChangeBatch:
        """One page of the change feed (latest version) after `continuation`: None starts from the beginning,
        an end_of_feed() marker from that moment, anything else is the SDK's own token from an earlier page.
        Keep the returned continuation (devhost keeps it in the state store)."""
        proxy = self._container(container)
        hook = self._hook(container, "feed")
        try:
            position: dict[str, Any]
            if continuation is None:
                position = {"start_time": "Beginning"}
            elif continuation.startswith(_FROM_TIME):
                position = {"start_time": datetime.fromisoformat(continuation.removeprefix(_FROM_TIME))}
            else:
                position = {"continuation": continuation}
            feed = proxy.query_items_change_feed(max_item_count=max_items, response_hook=hook, **position)
            pages = feed.by_page()
            page = next(pages, None)
        except (CosmosHttpResponseError, AzureError) as error:
            raise _failure("change feed read", container, error) from error
        if page is None:  # nothing new: the position stays where it was
            return ChangeBatch([], continuation)
        documents = [dict(item) for item in page]
        token = getattr(pages, "continuation_token", None)  # set by the SDK's page iterator
        return ChangeBatch(documents, token if isinstance(token, str) and token else continuation)

    def end_of_feed(self, container: str) -> str:
        """A position from which only later changes are read: this moment, resolved by the next read."""
        return _FROM_TIME + datetime.now(UTC).isoformat()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def count(self, container: str) -> int:
        """Documents in a container: a cross-partition aggregate, for tests and tools, never the hot path."""
        try:
            (n,) = list(
                self._container(container).query_items(
                    "SELECT VALUE COUNT(1) FROM c",
                    enable_cross_partition_query=True,
                    response_hook=self._hook(container, "count"),
                )
            )
        except (CosmosHttpResponseError, AzureError) as error:
            raise _failure("count", container, error) from error
        return int(n) if isinstance(n, int | float | str) else 0
