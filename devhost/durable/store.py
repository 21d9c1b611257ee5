"""Durable Functions state in the host's SQLite file: instances, their history, and their inbox.

The inbox plays the task hub's control queue: what an orchestration has not seen yet (its start, activity
results, fired timers, raised events, a terminate request) waits there until the next episode moves it into
the history, in the same transaction that records the episode's outcome. An activity result therefore
survives a restart even when the episode that would have consumed it never ran.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import orjson

from devhost.durable.history import EventType, HistoryEvent, execution_started
from shared.storage.sqlite.database import SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS durable_instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    runtime_status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    created_time TEXT NOT NULL,
    last_updated_time TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS durable_history (
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS durable_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS durable_inbox_by_instance ON durable_inbox (instance_id, id);
"""

_COLUMNS = (
    "instance_id, name, execution_id, runtime_status, input, output, custom_status, created_time, last_updated_time"
)


class RuntimeStatus(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    TERMINATED = "Terminated"

    @property
    def terminal(self) -> bool:
        return self in (RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.CANCELED, RuntimeStatus.TERMINATED)


class InstanceExists(Exception):
    """An instance with this id is not in a terminal state; the extension's default refuses to replace it."""

    def __init__(self, status: RuntimeStatus) -> None:
        super().__init__(f"An Orchestration instance with the status {status} already exists.")
        self.status = status


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    instance_id: str
    name: str
    execution_id: str
    runtime_status: RuntimeStatus
    input: str | None  # raw JSON, as the client sent it
    output: str | None  # JSON, or a plain failure/termination message
    custom_status: str | None  # JSON
    created_time: datetime
    last_updated_time: datetime


@dataclass(frozen=True, slots=True)
class InstanceQuery:
    created_from: datetime | None = None
    created_to: datetime | None = None
    statuses: frozenset[RuntimeStatus] = frozenset()
    id_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class EpisodeCommit:
    """One episode's outcome, written in one transaction."""

    instance_id: str
    consumed_through: int  # inbox ids up to this one were read by the episode
    events: Sequence[HistoryEvent]
    status: RuntimeStatus
    output: str | None
    custom_status: str | None
    now: datetime
    next_input: str | None = None  # continue-as-new: a fresh history that starts with this input
    continue_as_new: bool = False


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _record(row: Sequence[str | None]) -> InstanceRecord:
    return InstanceRecord(
        instance_id=str(row[0]),
        name=str(row[1]),
        execution_id=str(row[2]),
        runtime_status=RuntimeStatus(str(row[3])),
        input=row[4],
        output=row[5],
        custom_status=row[6],
        created_time=datetime.fromisoformat(str(row[7])),
        last_updated_time=datetime.fromisoformat(str(row[8])),
    )


def _dump(event: HistoryEvent) -> str:
    return orjson.dumps(event).decode()


class DurableStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database
        with database.connection() as conn:
            conn.executescript(_SCHEMA)

    def create(self, instance_id: str, name: str, raw_input: str | None, now: datetime) -> InstanceRecord:
        """A new Pending instance with its ExecutionStarted waiting in the inbox; a terminal instance with the
        same id is replaced, a live one is not (raises InstanceExists)."""
        execution_id = uuid.uuid4().hex
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT runtime_status FROM durable_instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
            if row is not None and not RuntimeStatus(row[0]).terminal:
                raise InstanceExists(RuntimeStatus(row[0]))
            self._delete(conn, [instance_id])
            conn.execute(
                f"INSERT INTO durable_instances ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                (instance_id, name, execution_id, RuntimeStatus.PENDING, raw_input, None, None, _time(now), _time(now)),
            )
            started = execution_started(now, instance_id, execution_id, name, raw_input)
            conn.execute("INSERT INTO durable_inbox (instance_id, body) VALUES (?, ?)", (instance_id, _dump(started)))
        return InstanceRecord(instance_id, name, execution_id, RuntimeStatus.PENDING, raw_input, None, None, now, now)

    def enqueue(self, instance_id: str, event: HistoryEvent) -> None:
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO durable_inbox (instance_id, body) VALUES (?, ?)", (instance_id, _dump(event)))

    def get(self, instance_id: str) -> InstanceRecord | None:
        with self._db.connection() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM durable_instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
        return None if row is None else _record(row)

    def history(self, instance_id: str) -> list[HistoryEvent]:
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT body FROM durable_history WHERE instance_id = ? ORDER BY seq", (instance_id,)
            ).fetchall()
        return [orjson.loads(row[0]) for row in rows]

    def inbox(self, instance_id: str) -> tuple[int, list[HistoryEvent]]:
        """The waiting messages, oldest first, and the id of the newest (0 when there are none)."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT id, body FROM durable_inbox WHERE instance_id = ? ORDER BY id", (instance_id,)
            ).fetchall()
        return (int(rows[-1][0]) if rows else 0), [orjson.loads(row[1]) for row in rows]

    def discard_inbox(self, instance_id: str, through: int) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM durable_inbox WHERE instance_id = ? AND id <= ?", (instance_id, through))

    def commit(self, episode: EpisodeCommit) -> None:
        with self._db.transaction() as conn:
            instance_id = episode.instance_id
            conn.execute(
                "DELETE FROM durable_inbox WHERE instance_id = ? AND id <= ?", (instance_id, episode.consumed_through)
            )
            (last,) = conn.execute(
                "SELECT COALESCE(MAX(seq), -1) FROM durable_history WHERE instance_id = ?", (instance_id,)
            ).fetchone()
            conn.executemany(
                "INSERT INTO durable_history (instance_id, seq, body) VALUES (?, ?, ?)",
                [(instance_id, last + 1 + n, _dump(event)) for n, event in enumerate(episode.events)],
            )
            conn.execute(
                "UPDATE durable_instances SET runtime_status = ?, output = ?, custom_status = ?, last_updated_time = ?"
                " WHERE instance_id = ?",
                (episode.status, episode.output, episode.custom_status, _time(episode.now), instance_id),
            )
            if episode.continue_as_new:
                self._restart(conn, instance_id, episode.next_input, episode.now)

    def _restart(self, conn: sqlite3.Connection, instance_id: str, raw_input: str | None, now: datetime) -> None:
        """Continue-as-new: the history starts over (the extension keeps only the new generation's)."""
        (name,) = conn.execute("SELECT name FROM durable_instances WHERE instance_id = ?", (instance_id,)).fetchone()
        execution_id = uuid.uuid4().hex
        conn.execute("DELETE FROM durable_history WHERE instance_id = ?", (instance_id,))
        conn.execute(
            "UPDATE durable_instances SET execution_id = ?, input = ?, output = NULL WHERE instance_id = ?",
            (execution_id, raw_input, instance_id),
        )
        # What the old generation scheduled cannot reach the new one; raised events carry over, as in DTFx.
        conn.execute(
            "DELETE FROM durable_inbox WHERE instance_id = ? AND json_extract(body, '$.EventType') != ?",
            (instance_id, int(EventType.EVENT_RAISED)),
        )
        started = execution_started(now, instance_id, execution_id, str(name), raw_input)
        # Before any event already waiting, so the new generation starts with it.
        (first,) = conn.execute("SELECT COALESCE(MIN(id), 1) FROM durable_inbox").fetchone()
        conn.execute(
            "INSERT INTO durable_inbox (id, instance_id, body) VALUES (?, ?, ?)",
            (int(first) - 1, instance_id, _dump(started)),
        )

    def unfinished(self) -> list[str]:
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT instance_id FROM durable_instances WHERE runtime_status IN (?, ?, ?) ORDER BY created_time",
                (RuntimeStatus.PENDING, RuntimeStatus.RUNNING, RuntimeStatus.CONTINUED_AS_NEW),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def query(self, query: InstanceQuery) -> list[InstanceRecord]:
        clauses, values = self._where(query)
        with self._db.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM durable_instances{clauses} ORDER BY created_time, instance_id", values
            ).fetchall()
        return [_record(row) for row in rows]

    def purge(self, instance_ids: Iterable[str]) -> int:
        with self._db.transaction() as conn:
            return self._delete(conn, list(instance_ids))

    def history_bytes(self, instance_id: str) -> int:
        """Bytes of history stored for the instance (the JSON of its events)."""
        with self._db.connection() as conn:
            (size,) = conn.execute(
                "SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) FROM durable_history WHERE instance_id = ?",
                (instance_id,),
            ).fetchone()
        return int(size)

    @staticmethod
    def _delete(conn: sqlite3.Connection, instance_ids: list[str]) -> int:
        deleted = 0
        for instance_id in instance_ids:
            conn.execute("DELETE FROM durable_history WHERE instance_id = ?", (instance_id,))
            conn.execute("DELETE FROM durable_inbox WHERE instance_id = ?", (instance_id,))
            deleted += conn.execute("DELETE FROM durable_instances WHERE instance_id = ?", (instance_id,)).rowcount
        return deleted

    @staticmethod
    def _where(query: InstanceQuery) -> tuple[str, list[str | int]]:
        clauses: list[str] = []
        values: list[str | int] = []
        if query.created_from is not None:
            clauses.append("created_time >= ?")
            values.append(_time(query.created_from))
        if query.created_to is not None:
            clauses.append("created_time <= ?")
            values.append(_time(query.created_to))
        if query.statuses:
            clauses.append(f"runtime_status IN ({','.join('?' * len(query.statuses))})")
            values.extend(sorted(query.statuses))
        if query.id_prefix:
            clauses.append("substr(instance_id, 1, ?) = ?")
            values.extend([len(query.id_prefix), query.id_prefix])
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), values
