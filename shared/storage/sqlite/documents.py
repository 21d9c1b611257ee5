"""Embedded document store: Cosmos-like containers with a change feed, in SQLite."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from shared.storage.ports import FIELD_NAME, SYSTEM_PROPERTIES, ChangeBatch, Document, StorageError
from shared.storage.sqlite.database import SqliteDatabase

_PURGE_EVERY_SECONDS = 60.0
_READ_CHUNK = 10_000  # addresses per read_many query: bounds the JSON text of one parameter


def _etag(lsn: int) -> str:
    """The ETag of a document version: its LSN as a quoted UUID, formatted as str(uuid.UUID(int=lsn)) would,
    at a quarter of the cost (a read of many documents makes one each)."""
    h = f"{lsn:032x}"
    return f'"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"'


def _last_lsn(conn: sqlite3.Connection, container: str) -> int:
    (last,) = conn.execute("SELECT COALESCE(MAX(lsn), 0) FROM documents WHERE container = ?", (container,)).fetchone()
    return int(last)


def _written_since(conn: sqlite3.Connection, container: str, lsn: int) -> list[tuple[str, str, int]]:
    rows: list[tuple[str, str, int]] = conn.execute(
        "SELECT pk, id, lsn FROM documents WHERE container = ? AND lsn > ?", (container, lsn)
    ).fetchall()
    return rows


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

    def _rows(
        self, container: str, documents: Sequence[Mapping[str, Any]], now: float
    ) -> list[tuple[str, str, str, float | None]]:
        """(partition key, id, body, expiry) of each document, every one checked before any is written."""
        rows = []
        for document in documents:
            doc_id = document.get("id")
            if not isinstance(doc_id, str) or not doc_id:
                raise StorageError("document has no string id")
            ttl = document.get("ttl")
            expires = now + ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0 else None
            # Cosmos's system properties are the store's to set, never the caller's.
            body = document if SYSTEM_PROPERTIES.isdisjoint(document) else _without_system(document)
            rows.append((self._partition_key(container, document), doc_id, orjson.dumps(body).decode(), expires))
        return rows

    def upsert_many(self, container: str, documents: Sequence[Mapping[str, Any]]) -> None:
        if not documents:
            return
        now = time.time()
        rows = self._rows(container, documents, now)
        with self._db.transaction() as conn:
            last = _last_lsn(conn, container)
            conn.executemany(
                "INSERT INTO documents (container, pk, id, body, lsn, ts, expires_at) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (container, pk, id) DO UPDATE SET body = excluded.body, lsn = excluded.lsn, "
                "ts = excluded.ts, expires_at = excluded.expires_at",
                [(container, pk, i, b, last + n, now, e) for n, (pk, i, b, e) in enumerate(rows, start=1)],
            )
        self._purge_expired(now)

    def insert_new(self, container: str, documents: Sequence[Mapping[str, Any]]) -> list[Document]:
        """One transaction: insert what is absent (an expired document not purged yet counts as absent), then
        read what was not inserted. The write lock is held throughout, so no other writer comes in between."""
        if not documents:
            return []
        now = time.time()
        rows = self._rows(container, documents, now)
        keys = [(pk, doc_id) for pk, doc_id, _, _ in rows]
        # Written partition by partition (in the order given within each, as the change feed keeps it): the index
        # pages of one partition are touched together, about a third faster for a large batch in a large store.
        order = sorted(range(len(rows)), key=lambda n: rows[n][0])
        with self._db.transaction() as conn:
            last = _last_lsn(conn, container)
            lsns = [0] * len(rows)
            for lsn, n in enumerate(order, start=last + 1):
                lsns[n] = lsn
            before = conn.total_changes
            # A repeated address gets an LSN too; ON CONFLICT skips it, and an unused LSN is only a gap in the feed.
            conn.executemany(
                "INSERT INTO documents (container, pk, id, body, lsn, ts, expires_at) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (container, pk, id) DO UPDATE SET body = excluded.body, lsn = excluded.lsn, "
                "ts = excluded.ts, expires_at = excluded.expires_at "
                "WHERE documents.expires_at IS NOT NULL AND documents.expires_at <= excluded.ts",
                [(container, *rows[n][:3], lsns[n], now, rows[n][3]) for n in order],
            )
            inserted = conn.total_changes - before
            if inserted == len(rows):  # the common case: every address was new
                return []
            # Which rows went in: the LSNs this call gave out are past `last`, and no one else writes meanwhile.
            lsn_of = {(pk, doc_id): lsn for pk, doc_id, lsn in _written_since(conn, container, last)}
            found_keys = [key for key, lsn in zip(keys, lsns, strict=True) if lsn_of.get(key) != lsn]
            stored = self._read_many(conn, container, found_keys, now)
        self._purge_expired(now)
        return [stored[key] for key in found_keys if key in stored]

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
        document["_etag"] = _etag(lsn)
        return document

    def read(self, container: str, partition_key: str, document_id: str) -> Document | None:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT body, lsn, ts FROM documents WHERE container = ? AND pk = ? AND id = ? "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (container, partition_key, document_id, time.time()),
            ).fetchone()
        return None if row is None else self._document(*row)

    def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        if not keys:
            return {}
        with self._db.connection() as conn:
            return self._read_many(conn, container, keys, time.time())

    def _read_many(
        self, conn: sqlite3.Connection, container: str, keys: Sequence[tuple[str, str]], now: float
    ) -> dict[tuple[str, str], Document]:
        # The addresses travel as one JSON parameter (no limit on bound variables); CROSS JOIN keeps them the
        # outer loop, so each is one probe of the (container, pk, id) index.
        found: dict[tuple[str, str], Document] = {}
        for start in range(0, len(keys), _READ_CHUNK):
            rows = conn.execute(
                "SELECT d.pk, d.id, d.body, d.lsn, d.ts FROM json_each(?) AS k CROSS JOIN documents AS d "
                "ON d.container = ? AND d.pk = json_extract(k.value, '$[0]') AND d.id = json_extract(k.value, '$[1]') "
                "WHERE d.expires_at IS NULL OR d.expires_at > ?",
                (orjson.dumps(keys[start : start + _READ_CHUNK]).decode(), container, now),
            ).fetchall()
            for pk, doc_id, body, lsn, ts in rows:
                found[(pk, doc_id)] = self._document(body, lsn, ts)
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
            return str(_last_lsn(conn, container))

    def count(self, container: str) -> int:
        with self._db.connection() as conn:
            (n,) = conn.execute("SELECT COUNT(*) FROM documents WHERE container = ?", (container,)).fetchone()
        return int(n)
