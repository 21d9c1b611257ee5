"""Embedded state store: Table-Storage-like entities with ETags, in SQLite."""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from shared.storage.ports import MAX_ATOMIC_WRITES, ConcurrencyConflict, Entity, EntityWrite
from shared.storage.sqlite_database import SqliteDatabase


class _Etags:
    """New ETags: a random prefix per process (several processes may share one database file, and a forked
    child draws its own) and a counter, which is cheaper than asking the OS for random bytes every write."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def new(self) -> str:
        return f'W/"{self._prefix}{next(self._counter):08x}"'


_new_etag = _Etags().new
_INSERT_IF_ABSENT = (
    "INSERT INTO entities (tbl, pk, rk, props, etag) VALUES (?,?,?,?,?) ON CONFLICT (tbl, pk, rk) DO NOTHING"
)
_UPDATE_IF_MATCH = "UPDATE entities SET props = ?, etag = ? WHERE tbl = ? AND pk = ? AND rk = ? AND etag = ?"


def _conflict(table: str, change: EntityWrite) -> ConcurrencyConflict:
    return ConcurrencyConflict(f"{table}/{change.partition_key}/{change.row_key} changed since read")


def _conditional_write(conn: sqlite3.Connection, table: str, change: EntityWrite) -> Entity | None:
    """Insert-if-absent (no etag) or update-if-match; None when the condition failed."""
    etag = _new_etag()
    body = orjson.dumps(dict(change.properties)).decode()
    if change.etag is None:
        cursor = conn.execute(_INSERT_IF_ABSENT, (table, change.partition_key, change.row_key, body, etag))
    else:
        cursor = conn.execute(_UPDATE_IF_MATCH, (body, etag, table, change.partition_key, change.row_key, change.etag))
    if cursor.rowcount != 1:
        return None
    return Entity(change.partition_key, change.row_key, dict(change.properties), etag)


class SqliteStateStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    def check(self) -> None:
        """Readiness: the embedded database answers."""
        self._db.check()

    def get(self, table: str, partition_key: str, row_key: str) -> Entity | None:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT props, etag FROM entities WHERE tbl = ? AND pk = ? AND rk = ?",
                (table, partition_key, row_key),
            ).fetchone()
        return None if row is None else Entity(partition_key, row_key, orjson.loads(row[0]), row[1])

    def query(self, table: str, partition_key: str | None = None) -> list[Entity]:
        with self._db.connection() as conn:
            if partition_key is None:
                rows = conn.execute(
                    "SELECT pk, rk, props, etag FROM entities WHERE tbl = ? ORDER BY pk, rk", (table,)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT pk, rk, props, etag FROM entities WHERE tbl = ? AND pk = ? ORDER BY rk",
                    (table, partition_key),
                ).fetchall()
        return [Entity(pk, rk, orjson.loads(props), etag) for pk, rk, props, etag in rows]

    def upsert(self, table: str, partition_key: str, row_key: str, properties: Mapping[str, Any]) -> Entity:
        etag = _new_etag()
        body = orjson.dumps(dict(properties)).decode()
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO entities (tbl, pk, rk, props, etag) VALUES (?,?,?,?,?) "
                "ON CONFLICT (tbl, pk, rk) DO UPDATE SET props = excluded.props, etag = excluded.etag",
                (table, partition_key, row_key, body, etag),
            )
        return Entity(partition_key, row_key, dict(properties), etag)

    def write(self, table: str, change: EntityWrite) -> Entity:
        (result,) = self.write_many(table, [change])
        if isinstance(result, ConcurrencyConflict):
            raise result
        return result

    def write_many(self, table: str, changes: Sequence[EntityWrite]) -> list[Entity | ConcurrencyConflict]:
        """One transaction; the inserts and the updates each go to SQLite in one call. Only when fewer rows
        changed than were asked (a conflict) is each write's outcome read back: it won if its new ETag is
        the one stored."""
        written: list[Entity] = []
        inserts: list[tuple[str, str, str, str, str]] = []
        updates: list[tuple[str, str, str, str, str, str]] = []
        for change in changes:
            entity = Entity(change.partition_key, change.row_key, dict(change.properties), _new_etag())
            written.append(entity)
            body = orjson.dumps(entity.properties).decode()
            if change.etag is None:
                inserts.append((table, entity.partition_key, entity.row_key, body, entity.etag))
            else:
                updates.append((body, entity.etag, table, entity.partition_key, entity.row_key, change.etag))
        with self._db.transaction() as conn:
            rows = conn.executemany(_INSERT_IF_ABSENT, inserts).rowcount if inserts else 0
            rows += conn.executemany(_UPDATE_IF_MATCH, updates).rowcount if updates else 0
            if rows == len(changes):
                return list(written)
            stored = [
                conn.execute(
                    "SELECT etag FROM entities WHERE tbl = ? AND pk = ? AND rk = ?",
                    (table, entity.partition_key, entity.row_key),
                ).fetchone()
                for entity in written
            ]
        return [
            entity if found is not None and found[0] == entity.etag else _conflict(table, change)
            for change, entity, found in zip(changes, written, stored, strict=True)
        ]

    def write_atomically(self, table: str, changes: Sequence[EntityWrite]) -> list[Entity]:
        if len(changes) > MAX_ATOMIC_WRITES:
            raise ValueError(f"a transaction holds at most {MAX_ATOMIC_WRITES} entities")
        if len({change.partition_key for change in changes}) > 1:
            raise ValueError("a transaction's entities must share one partition key")
        results: list[Entity] = []
        with self._db.transaction() as conn:
            for change in changes:
                written = _conditional_write(conn, table, change)
                if written is None:
                    raise _conflict(table, change)  # raised inside the transaction: every write is rolled back
                results.append(written)
        return results

    def delete(self, table: str, partition_key: str, row_key: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM entities WHERE tbl = ? AND pk = ? AND rk = ?", (table, partition_key, row_key))
