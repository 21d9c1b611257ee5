"""One SQLite file shared by the embedded adapters: WAL, a small connection pool, explicit transactions."""

from __future__ import annotations

import contextlib
import queue
import sqlite3
from collections.abc import Iterator
from pathlib import Path

DATABASE_FILE = "sensorpulse.db"

_SCHEMA = """
-- Rowid tables with a unique key rather than WITHOUT ROWID: bodies of a few hundred bytes or more make
-- WITHOUT ROWID B-trees split often, which made writes about 40% slower.
CREATE TABLE IF NOT EXISTS documents (
    container TEXT NOT NULL,
    pk TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    lsn INTEGER NOT NULL,
    ts REAL NOT NULL,
    expires_at REAL,
    UNIQUE (container, pk, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS documents_feed ON documents (container, lsn);
CREATE INDEX IF NOT EXISTS documents_expiry ON documents (expires_at) WHERE expires_at IS NOT NULL;
-- Partial indexes: only the container that is read in that order pays for parsing the JSON body on write.
DROP INDEX IF EXISTS documents_by_timestamp;
DROP INDEX IF EXISTS documents_by_window_end;
CREATE INDEX IF NOT EXISTS readings_by_timestamp
    ON documents (pk, json_extract(body, '$.timestamp')) WHERE container = 'readings';
CREATE INDEX IF NOT EXISTS summaries_by_window_end
    ON documents (pk, json_extract(body, '$.window_end')) WHERE container = 'summaries';

CREATE TABLE IF NOT EXISTS entities (
    tbl TEXT NOT NULL,
    pk TEXT NOT NULL,
    rk TEXT NOT NULL,
    props TEXT NOT NULL,
    etag TEXT NOT NULL,
    UNIQUE (tbl, pk, rk)
);

CREATE TABLE IF NOT EXISTS hub_events (
    hub TEXT NOT NULL,
    partition INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    body BLOB NOT NULL,
    partition_key TEXT,
    properties TEXT NOT NULL,
    enqueued REAL NOT NULL,
    PRIMARY KEY (hub, partition, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS hub_checkpoints (
    hub TEXT NOT NULL,
    consumer_group TEXT NOT NULL,
    partition INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (hub, consumer_group, partition)
) WITHOUT ROWID;
"""


class SqliteDatabase:
    """Thread-safe access to one database file; each connection is used by one thread at a time."""

    def __init__(self, path: Path, pool_size: int = 8) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._created = 0
        self._pool_size = pool_size
        with self.connection() as conn:
            conn.executescript(_SCHEMA)

    @classmethod
    def in_directory(cls, data_dir: Path) -> SqliteDatabase:
        return cls(data_dir / DATABASE_FILE)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (SIGKILL); only an OS crash may lose the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA cache_size=-32768")  # 32 MiB of pages: the hot windows and summaries stay cached
        return conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.rollback()
            if self._pool.qsize() < self._pool_size:
                self._pool.put(conn)
            else:
                conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the write lock from its start (BEGIN IMMEDIATE)."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return
