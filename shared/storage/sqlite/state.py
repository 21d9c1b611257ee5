"""Embedded state store: Table-Storage-like entities with ETags, in SQLite."""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from shared.storage.paging import check_page_limit, decode_continuation, encode_continuation
from shared.storage.ports import (
    MAX_ATOMIC_WRITES,
    ConcurrencyConflict,
    Entity,
    EntityPage,
    EntityWrite,
    prefix_end,
)
from shared.storage.sqlite.database import SqliteDatabase


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
# Each kind of conditional write is one statement over a JSON array of rows, not executemany: the sqlite3 module
# lets go of the GIL at every step, and executemany steps once a row, so beside a busy thread every row waited for
# the GIL to come back (see shared.storage.sqlite.documents).
_INSERT_IF_ABSENT = (
    "INSERT INTO entities (tbl, pk, rk, props, etag) "
    "SELECT ?1, r.value ->> 0, r.value ->> 1, r.value -> 2, r.value ->> 3 FROM json_each(?2) AS r WHERE true "
    "ON CONFLICT (tbl, pk, rk) DO NOTHING"
)
# The matches first, each one probe of the unique index; then the rows they name, by rowid. Of two updates of one
# entity in a batch one wins: the conflict check reads which.
_UPDATE_IF_MATCH = (
    "WITH m AS MATERIALIZED (SELECT e.rowid AS row, r.value -> 0 AS props, r.value ->> 1 AS etag "
    "FROM json_each(?2) AS r CROSS JOIN entities AS e "
    "ON e.tbl = ?1 AND e.pk = r.value ->> 2 AND e.rk = r.value ->> 3 AND e.etag = r.value ->> 4) "
    "UPDATE entities SET props = m.props, etag = m.etag FROM m WHERE entities.rowid = m.row"
)
# Keyset paging: a row-value bound on the unique (tbl, pk, rk) index, so a page costs the same wherever it starts
# and rows written behind the cursor shift nothing (an OFFSET would repeat or skip rows).
_FIRST_PAGE = "SELECT pk, rk, props, etag FROM entities WHERE tbl = ? ORDER BY pk, rk LIMIT ?"
_PAGE_AFTER = "SELECT pk, rk, props, etag FROM entities WHERE tbl = ? AND (pk, rk) > (?, ?) ORDER BY pk, rk LIMIT ?"
_AFTER = "after"  # the token holds the last key returned


def _conflict(table: str, change: EntityWrite) -> ConcurrencyConflict:
    return ConcurrencyConflict(f"{table}/{change.partition_key}/{change.row_key} changed since read")


_Insert = tuple[str, str, Mapping[str, Any], str]  # partition key, row key, properties, new ETag
_Update = tuple[Mapping[str, Any], str, str, str, str]  # properties, new ETag, partition key, row key, ETag read


def _prepare(changes: Sequence[EntityWrite]) -> tuple[list[Entity], str | None, str | None]:
    """Each change as the entity it writes (with its new ETag), and the rows to insert-if-absent (no etag) and
    to update-if-match as JSON; prepared before the transaction, so the write lock is not held for the JSON work."""
    written: list[Entity] = []
    inserts: list[_Insert] = []
    updates: list[_Update] = []
    for change in changes:
        entity = Entity(change.partition_key, change.row_key, dict(change.properties), _new_etag())
        written.append(entity)
        if change.etag is None:
            inserts.append((entity.partition_key, entity.row_key, entity.properties, entity.etag))
        else:
            updates.append((entity.properties, entity.etag, entity.partition_key, entity.row_key, change.etag))
    return (
        written,
        orjson.dumps(inserts).decode() if inserts else None,
        orjson.dumps(updates).decode() if updates else None,
    )


def _execute(conn: sqlite3.Connection, table: str, inserts: str | None, updates: str | None) -> int:
    """The conditional writes, each kind in one statement; returns how many rows they changed."""
    before = conn.total_changes
    if inserts is not None:
        conn.execute(_INSERT_IF_ABSENT, (table, inserts))
    if updates is not None:
        conn.execute(_UPDATE_IF_MATCH, (table, updates))
    return conn.total_changes - before


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

    def query_prefix(self, table: str, partition_key: str, prefix: str) -> list[Entity]:
        end = prefix_end(prefix)
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT rk, props, etag FROM entities WHERE tbl = ? AND pk = ? AND rk >= ? AND rk < ? ORDER BY rk",
                (table, partition_key, prefix, end),
            ).fetchall()
        return [Entity(partition_key, rk, orjson.loads(props), etag) for rk, props, etag in rows]

    def query_page(self, table: str, limit: int, continuation: str | None = None) -> EntityPage:
        check_page_limit(limit)
        args: tuple[str | int, ...]
        # One row more than asked says whether another page follows, so the last page carries no continuation.
        if continuation is None:
            sql, args = _FIRST_PAGE, (table, limit + 1)
        else:
            after_pk, after_rk = decode_continuation(continuation, table, _AFTER)
            if after_pk is None or after_rk is None:
                raise ValueError("continuation is not one this store issued")
            sql, args = _PAGE_AFTER, (table, after_pk, after_rk, limit + 1)
        with self._db.connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        entities = [Entity(pk, rk, orjson.loads(props), etag) for pk, rk, props, etag in rows[:limit]]
        if len(rows) <= limit:
            return EntityPage(entities, None)
        last = entities[-1]
        return EntityPage(entities, encode_continuation(table, _AFTER, (last.partition_key, last.row_key)))

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
        written, inserts, updates = _prepare(changes)
        with self._db.transaction() as conn:
            rows = _execute(conn, table, inserts, updates)
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
        written, inserts, updates = _prepare(changes)
        with self._db.transaction() as conn:
            if _execute(conn, table, inserts, updates) != len(changes):
                # Raised inside the transaction: every write is rolled back.
                raise ConcurrencyConflict(f"{table}/{changes[0].partition_key}: an entity changed since read")
        return written

    def delete(self, table: str, partition_key: str, row_key: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM entities WHERE tbl = ? AND pk = ? AND rk = ?", (table, partition_key, row_key))
