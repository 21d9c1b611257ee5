"""Embedded document store: Cosmos-like containers with a change feed, in SQLite."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from operator import itemgetter
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


_Row = tuple[str, str, Mapping[str, Any], float | None]  # partition key, id, body, expiry

# A batch goes to SQLite as one JSON parameter and one statement rather than executemany: the sqlite3 module lets
# go of the GIL around every step, and executemany steps once a row, so while another thread of this process runs
# Python each row waits for the GIL to come back (a convoy: a bulk import beside the summariser ran at a third of
# its speed). One statement is one step. `r.key` is the row's place in the batch, so LSNs follow the batch's order.
_UPSERT = (
    "INSERT INTO documents (container, pk, id, body, lsn, ts, expires_at) "
    "SELECT ?1, r.value ->> 0, r.value ->> 1, r.value -> 2, ?2 + r.key + 1, ?3, r.value ->> 3 "
    "FROM json_each(?4) AS r WHERE true "  # WHERE: SQLite's rule for an upsert on a SELECT
    "ON CONFLICT (container, pk, id) DO UPDATE SET body = excluded.body, lsn = excluded.lsn, "
    "ts = excluded.ts, expires_at = excluded.expires_at"
)
_INSERT_NEW = _UPSERT + " WHERE documents.expires_at IS NOT NULL AND documents.expires_at <= excluded.ts"
# Rows a statement takes: a larger batch is several statements in its one transaction, so the JSON text and SQLite's
# parse of it stay a few MB however large the batch (a bulk import writes 20,000 readings at once).
_STATEMENT_ROWS = 5_000
# A stored body with the system properties _document adds, made by SQLite; its ETag is _etag's (an LSN is below 2**63,
# so the UUID's first 16 hex digits are zeros). The contract suite reads one document both ways.
_WITH_SYSTEM = (
    "json_set(body, '$._lsn', lsn, '$._ts', CAST(ts AS INTEGER), "
    "'$._etag', printf('\"00000000-0000-0000-%04x-%012x\"', lsn >> 48, lsn & 281474976710655))"
)


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

    def _rows(self, container: str, documents: Sequence[Mapping[str, Any]], now: float) -> list[_Row]:
        """(partition key, id, body, expiry) of each document, every one checked before any is written."""
        field = self._paths.get(container, "/sensor_id").lstrip("/")
        rows: list[_Row] = []
        for document in documents:
            doc_id = document.get("id")
            if not isinstance(doc_id, str) or not doc_id:
                raise StorageError("document has no string id")
            key = document.get(field)
            if not isinstance(key, str) or not key:
                raise StorageError(f"document has no partition key {field!r} for container {container!r}")
            ttl = document.get("ttl")
            expires = now + ttl if type(ttl) is int and ttl > 0 else None
            # Cosmos's system properties are the store's to set, never the caller's.
            body = document if SYSTEM_PROPERTIES.isdisjoint(document) else _without_system(document)
            rows.append((key, doc_id, body, expires))
        return rows

    def upsert_many(self, container: str, documents: Sequence[Mapping[str, Any]]) -> None:
        if not documents:
            return
        now = time.time()
        rows = self._rows(container, documents, now)
        with self._db.transaction() as conn:
            last = _last_lsn(conn, container)
            for start in range(0, len(rows), _STATEMENT_ROWS):
                part = orjson.dumps(rows[start : start + _STATEMENT_ROWS]).decode()
                conn.execute(_UPSERT, (container, last + start, now, part))
        self._purge_expired(now)

    def insert_new(self, container: str, documents: Sequence[Mapping[str, Any]]) -> list[Document]:
        """One transaction: insert what is absent (an expired document not purged yet counts as absent), then
        read what was not inserted. The write lock is held throughout, so no other writer comes in between."""
        if not documents:
            return []
        now = time.time()
        # Written partition by partition (in the order given within each, as the change feed keeps it): the index
        # pages of one partition are touched together, about a third faster for a large batch in a large store.
        rows = self._rows(container, documents, now)
        order = sorted(range(len(rows)), key=lambda n: rows[n][0])
        with self._db.transaction() as conn:
            last = _last_lsn(conn, container)
            before = conn.total_changes
            # A repeated address gets an LSN too; ON CONFLICT skips it, and an unused LSN is only a gap in the feed.
            for start in range(0, len(order), _STATEMENT_ROWS):
                part = orjson.dumps([rows[n] for n in order[start : start + _STATEMENT_ROWS]]).decode()
                conn.execute(_INSERT_NEW, (container, last + start, now, part))
            if conn.total_changes - before == len(rows):  # the common case: every address was new
                return []
            # Which rows went in: the LSNs this call gave out are past `last`, and no one else writes meanwhile.
            lsns = [0] * len(rows)
            for lsn, n in enumerate(order, start=last + 1):
                lsns[n] = lsn
            lsn_of = {(pk, doc_id): lsn for pk, doc_id, lsn in _written_since(conn, container, last)}
            found_keys = [
                (pk, doc_id)
                for (pk, doc_id, _, _), lsn in zip(rows, lsns, strict=True)
                if lsn_of.get((pk, doc_id)) != lsn
            ]
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
            # The batch as one JSON array built in one step (see _UPSERT: a fetch steps once a row).
            text, last = conn.execute(
                f"SELECT json_group_array({_WITH_SYSTEM}), max(lsn) FROM (SELECT body, lsn, ts FROM documents "
                "WHERE container = ? AND lsn > ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY lsn LIMIT ?)",
                (container, after, time.time(), max_items),
            ).fetchone()
        if last is None:
            return ChangeBatch([], continuation)
        documents: list[Document] = orjson.loads(text)
        documents.sort(key=itemgetter("_lsn"))  # an aggregate's order is SQLite's to choose
        return ChangeBatch(documents, str(last))

    def end_of_feed(self, container: str) -> str:
        """A continuation from which only later changes are read (the change feed's "now")."""
        with self._db.connection() as conn:
            return str(_last_lsn(conn, container))

    def count(self, container: str) -> int:
        with self._db.connection() as conn:
            (n,) = conn.execute("SELECT COUNT(*) FROM documents WHERE container = ?", (container,)).fetchone()
        return int(n)
