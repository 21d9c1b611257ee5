"""Embedded document store: Cosmos-like containers with a change feed, in SQLite."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from shared.storage.ports import FIELD_NAME, SYSTEM_PROPERTIES, ChangeBatch, Document, StorageError
from shared.storage.sqlite.database import SqliteDatabase

_PURGE_EVERY_SECONDS = 60.0


def _without_system(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in SYSTEM_PROPERTIES}


class SqliteDocumentStore:
    """Upserts get a new, strictly increasing log sequence number (LSN) per container, like Cosmos `_lsn`;
    the change feed is every document whose LSN is past the continuation, so a replaced document shows up
    again, as in Cosmos's latest-version change feed. Per-item `ttl` (seconds) expires documents."""

    def __init__(self, database: SqliteDatabase, partition_key_paths: Mapping[str, str] | None = None) -> None:
        self._db = database
        self._paths = dict(partition_key_paths or {})
        self._last_purge = 0.0
        self._purge_lock = threading.Lock()

    def check(self) -> None:
        """Readiness: the embedded database answers."""
        self._db.check()

    def _partition_key(self, container: str, document: Mapping[str, Any]) -> str:
        field = self._paths.get(container, "/sensor_id").lstrip("/")
        value = document.get(field)
        if not isinstance(value, str) or not value:
            raise StorageError(f"document has no partition key {field!r} for container {container!r}")
        return value

    def upsert_many(self, container: str, documents: Sequence[Mapping[str, Any]]) -> None:
        if not documents:
            return
        now = time.time()
        rows = []
        for document in documents:
            doc_id = document.get("id")
            if not isinstance(doc_id, str) or not doc_id:
                raise StorageError("document has no string id")
            ttl = document.get("ttl")
            expires = now + ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0 else None
            # Cosmos's system properties are the store's to set, never the caller's.
            body = document if SYSTEM_PROPERTIES.isdisjoint(document) else _without_system(document)
            rows.append(
                (container, self._partition_key(container, document), doc_id, orjson.dumps(body).decode(), expires)
            )
        with self._db.transaction() as conn:
            (last,) = conn.execute(
                "SELECT COALESCE(MAX(lsn), 0) FROM documents WHERE container = ?", (container,)
            ).fetchone()
            conn.executemany(
                "INSERT INTO documents (container, pk, id, body, lsn, ts, expires_at) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (container, pk, id) DO UPDATE SET body = excluded.body, lsn = excluded.lsn, "
                "ts = excluded.ts, expires_at = excluded.expires_at",
                [(c, pk, i, b, last + n, now, e) for n, (c, pk, i, b, e) in enumerate(rows, start=1)],
            )
        self._purge_expired(now)

    def _purge_expired(self, now: float) -> None:
        if now - self._last_purge < _PURGE_EVERY_SECONDS or not self._purge_lock.acquire(blocking=False):
            return
        try:
            self._last_purge = now
            with self._db.transaction() as conn:
                conn.execute("DELETE FROM documents WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        finally:
            self._purge_lock.release()

    @staticmethod
    def _document(body: str, lsn: int, ts: float) -> Document:
        document: Document = orjson.loads(body)
        document["_lsn"] = lsn
        document["_ts"] = int(ts)
        document["_etag"] = f'"{uuid.UUID(int=lsn)}"'
        return document

    def read(self, container: str, partition_key: str, document_id: str) -> Document | None:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT body, lsn, ts FROM documents WHERE container = ? AND pk = ? AND id = ? "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (container, partition_key, document_id, time.time()),
            ).fetchone()
        return None if row is None else self._document(*row)

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
        names = [container, order_by, *(equals or {}), *(fields or ())]
        if not all(FIELD_NAME.match(name) for name in names):
            raise ValueError("container and field names must be identifiers")
        # A projection reads only the named fields out of the body (as Cosmos leaves out a field a document
        # lacks, so does this); the whole body is parsed only when the caller wants the whole document.
        columns = ", ".join(f"json_extract(body, '$.{name}')" for name in fields) if fields else "body, lsn, ts"
        # The container as a literal lets SQLite use the partial index of that container.
        sql = f"SELECT {columns} FROM documents WHERE container = '{container}' AND pk = ? "
        sql += "AND (expires_at IS NULL OR expires_at > ?) "
        params: list[Any] = [partition_key, time.time()]
        for name, value in (equals or {}).items():
            sql += f"AND json_extract(body, '$.{name}') = ? "
            params.append(value)
        if since is not None:
            sql += f"AND json_extract(body, '$.{order_by}') >= ? "
            params.append(since)
        if until is not None:
            sql += f"AND json_extract(body, '$.{order_by}') <= ? "
            params.append(until)
        # The literal path matches the expression indexes, so SQLite walks the index backwards.
        sql += f"ORDER BY json_extract(body, '$.{order_by}') DESC LIMIT ?"
        params.append(limit)
        with self._db.connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        if fields:
            return [{name: value for name, value in zip(fields, row, strict=True) if value is not None} for row in rows]
        return [self._document(*row) for row in rows]

    def read_changes(self, container: str, continuation: str | None, max_items: int) -> ChangeBatch:
        after = int(continuation) if continuation else 0
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT body, lsn, ts FROM documents WHERE container = ? AND lsn > ? "
                "AND (expires_at IS NULL OR expires_at > ?) ORDER BY lsn LIMIT ?",
                (container, after, time.time(), max_items),
            ).fetchall()
        if not rows:
            return ChangeBatch([], continuation)
        return ChangeBatch([self._document(*row) for row in rows], str(rows[-1][1]))

    def end_of_feed(self, container: str) -> str:
        """A continuation from which only later changes are read (the change feed's "now")."""
        with self._db.connection() as conn:
            (last,) = conn.execute(
                "SELECT COALESCE(MAX(lsn), 0) FROM documents WHERE container = ?", (container,)
            ).fetchone()
        return str(last)

    def count(self, container: str) -> int:
        with self._db.connection() as conn:
            (n,) = conn.execute("SELECT COUNT(*) FROM documents WHERE container = ?", (container,)).fetchone()
        return int(n)
