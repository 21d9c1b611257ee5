"""One SQLite file shared by the embedded adapters: WAL, a small connection pool, explicit transactions."""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from shared.ops.log_context import app_logger

DATABASE_FILE = "sensorpulse.db"
_BUSY_SECONDS = 30.0  # how long a writer waits for the write lock before 'database is locked'
CHECKPOINT_INTERVAL_SECONDS = 0.25
PAGE_SIZE = 16_384
RESTART_FRAMES = 4_096  # 64 MiB of WAL: past this the checkpoint makes the WAL start over (see _checkpoint)

logger = app_logger(__name__)

_SCHEMA = """
-- Rowid tables with a unique key rather than WITHOUT ROWID: bodies of a few hundred bytes or more make
-- WITHOUT ROWID B-trees split often, which slows every write (`python -m bench summariser` shows it).
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
    """Thread-safe access to one database file; each connection is used by one thread at a time.

    Writers never checkpoint the WAL themselves (that copy-back and its fsync would land on whichever
    commit crosses the threshold); a background thread checkpoints passively, without blocking anyone,
    a moment after commits happened."""

    def __init__(self, path: Path, pool_size: int = 8) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._pool_size = pool_size
        self._committed = threading.Event()
        self._writer = threading.Lock()  # this process's writers queue here (see transaction)
        self._closing = threading.Event()
        with self.connection() as conn:
            conn.executescript(_SCHEMA)
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True)
        self._checkpointer.start()

    @classmethod
    def in_directory(cls, data_dir: Path) -> SqliteDatabase:
        return cls(data_dir / DATABASE_FILE)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        # Set before the first table exists (later it changes nothing). A summariser batch touches pages all
        # over the windows and the per-sensor indexes, and every touched page is one WAL frame (two writes):
        # 16 KiB pages write about the same bytes in a quarter of the frames.
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (SIGKILL); only an OS crash may lose the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(_BUSY_SECONDS * 1000)}")
        conn.execute("PRAGMA cache_size=-8192")  # 8 MiB per connection: the hot windows and summaries stay cached
        conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint thread does it
        # A WAL that grew (a long read kept it from starting over) is cut back to this when it does.
        conn.execute(f"PRAGMA journal_size_limit={RESTART_FRAMES * PAGE_SIZE}")
        return conn

    def _checkpoint_loop(self) -> None:
        conn = self._connect()
        try:
            while not self._closing.is_set():
                if not self._committed.wait(CHECKPOINT_INTERVAL_SECONDS):
                    continue
                self._closing.wait(CHECKPOINT_INTERVAL_SECONDS)  # let a burst of commits go by first
                self._committed.clear()
                try:
                    self._checkpoint(conn)
                except sqlite3.Error as error:  # busy or I/O: the next round tries again
                    logger.warning("WAL checkpoint failed: %s", error)
                    self._committed.set()
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """Copy the WAL back without blocking anyone. A writer starts the WAL over only when it finds every frame
        copied back, which under back-to-back writes (a bulk import) never happens: the file grew to gigabytes and
        every write slowed. So once the WAL is past RESTART_FRAMES, this process's writers wait while the few frames
        written since are copied too and the WAL starts over (readers are waited for, as busy_timeout allows)."""
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames < RESTART_FRAMES:
            return
        if not self._writer.acquire(timeout=_BUSY_SECONDS):
            return
        try:
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        finally:
            self._writer.release()

    def check(self) -> None:
        """Readiness: the file opens and its schema reads (raises sqlite3.Error otherwise)."""
        with self.connection() as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()

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
        """A write transaction that holds the write lock from its start (BEGIN IMMEDIATE).

        SQLite has one writer at a time, and a writer that finds the lock taken sleeps and polls (1, 2, 5 ... 100 ms),
        so it may sleep on long after the lock is free. Writers of this process queue on a lock of their own first and
        start the moment the last one commits; busy_timeout still covers writers in other processes. Transactions do
        not nest (a second one in the same thread would wait for itself in SQLite too)."""
        if not self._writer.acquire(timeout=_BUSY_SECONDS):
            raise sqlite3.OperationalError("database is locked")  # what busy_timeout would have raised
        try:
            with self.connection() as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
        finally:
            self._writer.release()
        self._committed.set()

    def close(self) -> None:
        self._closing.set()
        self._checkpointer.join()
        with contextlib.suppress(sqlite3.Error), self.connection() as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return
