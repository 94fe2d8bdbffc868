"""The processor's local state for one partition: every live task, on disk.

A SQLite file per partition holds each task's encoded ``TaskState`` and the
time of its one timer (``due_ms``), indexed by that time. The timing wheel
keeps only the near horizon in memory and asks this index for what comes
into the horizon, so ten million far-future tasks cost disk, not RSS.

The file is a cache of the changelog, never the truth. It remembers the
changelog offset it has applied (the offset of the next record to read), in
the same SQLite transaction as the rows, so a process that restarts in the
same slot reads only the changelog's tail. It is reused only when that
checkpoint is consistent with the changelog (the offset lies between its low
and high watermarks, or above the high when reading shows the changelog
really reaches it: the dev broker's high is short) and recent
(:data:`REUSE_MAX_AGE_MS`: well inside the time a compacted changelog keeps
tombstones, ``delete.retention.ms``, 24 h by default; an older file could miss
a tombstone compaction removed). Anything else (no checkpoint, a torn or
unreadable file) is rebuilt from the start.

A rebuild writes a fresh file without a journal (fast, and a crash during it
leaves no checkpoint, so it is rebuilt again); afterwards the file runs in
WAL mode, so a step's writes and the checkpoint commit together or not at
all, and an uncommitted step is rolled back when the process dies.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

# rows fetched per step when promoting into the wheel
_FETCH = 10_000
# changelog records coalesced and written together during a restore
_LOAD_CHUNK = 50_000
# One write for a task, whether it is new or replaces the row it had.
_PUT = "INSERT OR REPLACE INTO tasks (task_id, due_ms, state) VALUES (?, ?, ?)"
_SAVE = "INSERT OR REPLACE INTO checkpoint (one, next_offset, saved_at_ms) VALUES (1, ?, ?)"
# A file saved longer ago than this is rebuilt rather than caught up (see above).
REUSE_MAX_AGE_MS = 60 * 60_000
_SUFFIXES = ("", "-journal", "-wal", "-shm")


class PartitionStore:
    def __init__(self, path: Path) -> None:
        """Open the file a previous process left, or a new one (see :meth:`resume_from`).

        One process at a time uses a slot's file: a lock on ``<file>.lock``, which
        the OS drops when the process dies. A process that finds it held (a frozen
        predecessor in its slot, about to find itself fenced) works in a private
        file of its own instead, rebuilt, and removed when it closes."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._private = False
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = -1
            self._private = True
            log.warning("partition store %s is in use by another process: not reused", path.name)
            path = path.with_name(f"{path.name}.{os.getpid()}")
        self.path = path
        self._in_batch = False
        self._count = 0
        if self._private or not path.exists():
            self._fresh()
            return
        try:
            self._db = self._connect()
            self._checkpoint = self._read_checkpoint()
            self._count = self._counted()
        except sqlite3.DatabaseError as exc:  # torn, or not a store at all
            log.warning("partition store %s is unreadable (%s): rebuilding it", path.name, exc)
            self._fresh()

    def resume_from(
        self,
        low: int,
        high: int,
        now_ms: int,
        reaches: Callable[[int], bool] | None = None,
    ) -> int | None:
        """The changelog offset to read on from, when this file can be reused; None
        when it must be rebuilt (call :meth:`reset`). ``low``/``high``: the changelog
        partition's watermarks, as the broker reports them.

        A checkpoint above ``high`` is reused only when ``reaches(checkpoint)``
        confirms, by reading, that the changelog really goes that far. The dev broker
        reports a high up to one record batch short of the end, so a rebuild's
        checkpoint (the true end, from the records it read) lies above it; on Kafka
        it means the topic was recreated or truncated, and the read says no."""
        if self._checkpoint is None:
            return None
        offset, saved_at_ms = self._checkpoint
        recent = 0 <= now_ms - saved_at_ms <= REUSE_MAX_AGE_MS
        in_range = low <= offset <= high
        if recent and high < offset and reaches is not None and reaches(offset):
            log.info(
                "partition store %s: checkpoint %d beyond the reported high %d, and the "
                "changelog does reach it: reused",
                self.path.name,
                offset,
                high,
            )
            in_range = low <= offset
        if not in_range or not recent:
            log.info(
                "partition store %s not reused: offset %d outside [%d, %d] or saved %d ms ago",
                self.path.name,
                offset,
                low,
                high,
                now_ms - saved_at_ms,
            )
            return None
        return offset

    def reset(self) -> None:
        """Start again from an empty file (before a restore from the changelog's start)."""
        self._fresh()

    def save_offset(self, next_offset: int, now_ms: int) -> None:
        """Record, with this step's writes, the changelog offset they bring the file to."""
        self.begin()
        self._db.execute(_SAVE, (next_offset, now_ms))
        self._checkpoint = (next_offset, now_ms)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db = db  # closed by _fresh() if what follows finds the file unreadable
        db.executescript(
            """
            PRAGMA temp_store = MEMORY;
            PRAGMA cache_size = -16000;
            CREATE TABLE IF NOT EXISTS tasks (
                task_id TEXT PRIMARY KEY,
                due_ms INTEGER,
                state BLOB NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS checkpoint (
                one INTEGER PRIMARY KEY CHECK (one = 1),
                next_offset INTEGER NOT NULL,
                saved_at_ms INTEGER NOT NULL
            );
            """
        )
        return db

    def _fresh(self) -> None:
        if getattr(self, "_db", None) is not None:
            self._db.close()
        for suffix in _SUFFIXES:
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        self._db = self._connect()
        # No journal while the file has no checkpoint: a crash leaves it to be rebuilt.
        self._db.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        self._checkpoint = None
        self._count = 0

    def _read_checkpoint(self) -> tuple[int, int] | None:
        row = self._db.execute("SELECT next_offset, saved_at_ms FROM checkpoint").fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def _counted(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM tasks").fetchone()[0])

    def _journaled(self) -> None:
        """From now on, a step's writes and its checkpoint commit together (WAL)."""
        mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            self._db.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")

    def __len__(self) -> int:
        return max(self._count, 0)

    def begin(self) -> None:
        """Group the writes of one processing step (SQLite is much faster so)."""
        if not self._in_batch:
            self._db.execute("BEGIN")
            self._in_batch = True

    def commit(self) -> None:
        if self._in_batch:
            self._db.execute("COMMIT")
            self._in_batch = False

    def rollback(self) -> None:
        """Drop this step's writes (a journaled file; without one, rebuild instead)."""
        if self._in_batch:
            self._db.execute("ROLLBACK")
            self._in_batch = False
            self._checkpoint = self._read_checkpoint()
            self._count = self._counted()

    def get(self, task_id: str) -> bytes | None:
        row = self._db.execute("SELECT state FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, task_id: str, state: bytes, due_ms: int | None, existed: bool) -> None:
        """Insert or replace; the caller says whether the task existed (it just read it),
        which keeps the count exact without asking SQLite to count millions of rows."""
        self.begin()
        self._db.execute(_PUT, (task_id, due_ms, state))
        if not existed:
            self._count += 1

    def delete(self, task_id: str) -> None:
        self.begin()
        if self._db.execute("DELETE FROM tasks WHERE task_id = ?", (task_id,)).rowcount:
            self._count -= 1

    def load(
        self,
        rows: Iterable[tuple[str, int | None, bytes | None]],
        next_offset: int | None = None,
        now_ms: int = 0,
    ) -> None:
        """Restore: apply changelog records in order (a None state is a tombstone), on
        top of what the file holds; with ``next_offset``, record it in the same commit.

        Records are taken in chunks: within a chunk only each task's last record
        counts, and the chunk is written in key order, which keeps B-tree inserts
        local (random task ids inserted as they come are about 3x slower).
        Memory stays bounded by the chunk, whatever the partition's size.
        """
        self.load_part(rows)
        self.end_load(next_offset, now_ms)

    def load_part(self, rows: Iterable[tuple[str, int | None, bytes | None]]) -> None:
        """One part of a restore (as :meth:`load`), left uncommitted: a restore in
        slices calls this per slice and :meth:`end_load` once (or :meth:`abandon`)."""
        self.begin()
        chunk: dict[str, tuple[int | None, bytes | None]] = {}
        for task_id, due_ms, state in rows:
            chunk[task_id] = (due_ms, state)
            if len(chunk) >= _LOAD_CHUNK:
                self._write_chunk(chunk)
                chunk = {}
        self._write_chunk(chunk)

    def end_load(self, next_offset: int | None = None, now_ms: int = 0) -> None:
        """Commit a restore's parts, with the changelog offset they bring the file to."""
        self.begin()
        if next_offset is not None:
            self.save_offset(next_offset, now_ms)
        self.commit()
        self._count = self._counted()
        self._journaled()

    def abandon(self) -> None:
        """A restore stopped half way (its partition was revoked): drop its parts and
        close. A file that had a checkpoint keeps it (its rows are rolled back with
        the parts); a rebuild's file, unjournaled and without one, is removed."""
        resumable = self._checkpoint is not None
        if resumable:
            self.rollback()
        self.close(remove=not resumable)

    def _write_chunk(self, chunk: dict[str, tuple[int | None, bytes | None]]) -> None:
        ordered = sorted(chunk.items())
        self._db.executemany(
            "DELETE FROM tasks WHERE task_id = ?",
            [(task_id,) for task_id, (_, state) in ordered if state is None],
        )
        self._db.executemany(
            _PUT, [(task_id, due, state) for task_id, (due, state) in ordered if state is not None]
        )

    def create_due_index(self) -> None:
        """Built once after a restore's bulk load: cheaper than keeping it during."""
        self._db.execute("CREATE INDEX IF NOT EXISTS tasks_by_due ON tasks (due_ms)")

    def due_before(self, start_ms: int | None, end_ms: int) -> Iterator[tuple[str, int]]:
        """Tasks whose timer is in [start_ms, end_ms) (no lower bound when None)."""
        if start_ms is None:
            cursor = self._db.execute(
                "SELECT task_id, due_ms FROM tasks WHERE due_ms < ? ORDER BY due_ms", (end_ms,)
            )
        else:
            cursor = self._db.execute(
                "SELECT task_id, due_ms FROM tasks WHERE due_ms >= ? AND due_ms < ? "
                "ORDER BY due_ms",
                (start_ms, end_ms),
            )
        while rows := cursor.fetchmany(_FETCH):
            yield from rows

    def close(self, remove: bool = True) -> None:
        """Close; uncommitted writes are dropped. ``remove=False`` keeps the file for
        a restart in the same slot."""
        self._db.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = -1
        if remove or self._private:
            for suffix in _SUFFIXES:
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
