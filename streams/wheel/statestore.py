"""The processor's local state for one partition: every live task, on disk.

A SQLite file per partition holds each task's encoded ``TaskState`` and the
time of its one timer (``due_ms``), indexed by that time. The timing wheel
keeps only the near horizon in memory and asks this index for what comes
into the horizon, so ten million far-future tasks cost disk, not RSS.

The file is a cache of the changelog, never the truth: it is rebuilt from
``tasks.state`` every time the partition is assigned, so it needs no
durability (no journal, no fsync) and a crash can leave it in any state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

# rows fetched per step when promoting into the wheel
_FETCH = 10_000
# changelog records coalesced and written together during a restore
_LOAD_CHUNK = 50_000
# One write for a task, whether it is new or replaces the row it had.
_PUT = "INSERT OR REPLACE INTO tasks (task_id, due_ms, state) VALUES (?, ?, ?)"


class PartitionStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-journal", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA temp_store = MEMORY;
            PRAGMA cache_size = -16000;
            CREATE TABLE tasks (
                task_id TEXT PRIMARY KEY,
                due_ms INTEGER,
                state BLOB NOT NULL
            ) WITHOUT ROWID;
            """
        )
        self._in_batch = False
        self._count = 0

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

    def load(self, rows: Iterable[tuple[str, int | None, bytes | None]]) -> None:
        """Restore: apply changelog records in order (a None state is a tombstone).

        Records are taken in chunks: within a chunk only each task's last record
        counts, and the chunk is written in key order, which keeps B-tree inserts
        local (random task ids inserted as they come are about 3x slower).
        Memory stays bounded by the chunk, whatever the partition's size.
        """
        self.begin()
        chunk: dict[str, tuple[int | None, bytes | None]] = {}
        for task_id, due_ms, state in rows:
            chunk[task_id] = (due_ms, state)
            if len(chunk) >= _LOAD_CHUNK:
                self._write_chunk(chunk)
                chunk = {}
        self._write_chunk(chunk)
        self.commit()
        self._count = int(self._db.execute("SELECT count(*) FROM tasks").fetchone()[0])

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
        self._db.close()
        if remove:
            self.path.unlink(missing_ok=True)
