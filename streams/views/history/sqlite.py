"""The embedded history store: SQLite in WAL mode, one file under the data directory.

Several processes share the file (the API reads, dispatchers write); WAL lets
readers run beside the writer. Writes are idempotent by fire id (the first
outcome stays), so a dispatcher that redoes a batch after a crash records
nothing twice; a dispatcher writes each cycle's outcomes in one transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streams.core.events import ExecutionResult
from streams.ports import DueSource, RecordedExecution
from streams.views.history.rows import RESULT_COLUMNS, result_from_columns, result_values
from streams.views.sqlitefile import locked_transaction, open_shared_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    fire_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    scheduled_at_ms INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    final INTEGER NOT NULL,
    started_at_ms INTEGER NOT NULL,
    finished_at_ms INTEGER NOT NULL,
    lateness_ms INTEGER NOT NULL,
    http_status INTEGER,
    error TEXT,
    dispatcher TEXT NOT NULL,
    due_partition INTEGER,
    due_offset INTEGER
);
CREATE INDEX IF NOT EXISTS executions_by_task
    ON executions (task_id, scheduled_at_ms DESC, attempt DESC);
"""

# Files written before the due source was recorded get the columns added.
_ADDED_COLUMNS = {"due_partition": "INTEGER", "due_offset": "INTEGER"}
_INDEXES = """
CREATE INDEX IF NOT EXISTS executions_by_time ON executions (scheduled_at_ms);
CREATE INDEX IF NOT EXISTS executions_by_partition
    ON executions (due_partition, scheduled_at_ms);
"""

_EXECUTION_COLUMNS = ", ".join(RESULT_COLUMNS)
_SOURCE_COLUMNS = "due_partition, due_offset"
# SQLite caps bound parameters; 500 per query stays far below it.
_CHUNK = 500


class SqliteHistoryStore:
    def __init__(self, path: Path) -> None:
        # One connection guarded by a lock: callers hop threads (asyncio.to_thread).
        self._conn = open_shared_file(path)
        self._lock = threading.Lock()
        self._conn.executescript(SCHEMA)
        present = {row[1] for row in self._conn.execute("PRAGMA table_info(executions)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in present:
                self._conn.execute(f"ALTER TABLE executions ADD COLUMN {column} {kind}")
        self._conn.executescript(_INDEXES)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with locked_transaction(self._conn, self._lock):
            yield self._conn

    def record_executions(
        self,
        results: Sequence[ExecutionResult],
        sources: Mapping[str, DueSource] | None = None,
        contended: bool = True,
    ) -> int:
        """Batched: one transaction for many outcomes. Returns how many were new
        (exactly, contended or not: the insert itself says)."""
        sources = sources or {}
        inserted = 0
        with self._transaction() as conn:
            for r in results:
                source = sources.get(r.fire_id)
                cursor = conn.execute(
                    f"""INSERT INTO executions ({_EXECUTION_COLUMNS}, {_SOURCE_COLUMNS})
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (fire_id) DO NOTHING""",
                    (
                        *result_values(r),
                        None if source is None else source.partition,
                        None if source is None else source.offset,
                    ),
                )
                inserted += cursor.rowcount == 1
        return inserted

    def executions(self, task_id: str, limit: int = 100) -> list[ExecutionResult]:
        with self._lock:
            rows = self._conn.execute(
                f"""SELECT {_EXECUTION_COLUMNS} FROM executions WHERE task_id = ?
                    ORDER BY scheduled_at_ms DESC, attempt DESC LIMIT ?""",
                (task_id, limit),
            ).fetchall()
        return [_result(row) for row in rows]

    def executions_between(
        self, start_ms: int, end_ms: int, limit: int = 10_000
    ) -> list[ExecutionResult]:
        with self._lock:
            rows = self._conn.execute(
                f"""SELECT {_EXECUTION_COLUMNS} FROM executions
                    WHERE scheduled_at_ms >= ? AND scheduled_at_ms < ?
                    ORDER BY scheduled_at_ms, fire_id LIMIT ?""",
                (start_ms, end_ms, limit),
            ).fetchall()
        return [_result(row) for row in rows]

    def recorded(self, fire_ids: Sequence[str]) -> dict[str, RecordedExecution]:
        found: dict[str, RecordedExecution] = {}
        unique = list(dict.fromkeys(fire_ids))
        with self._lock:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for row in self._conn.execute(
                    f"""SELECT {_EXECUTION_COLUMNS}, {_SOURCE_COLUMNS} FROM executions
                        WHERE fire_id IN ({marks})""",
                    chunk,
                ):
                    source = None if row[13] is None else DueSource(row[13], row[14])
                    found[row[0]] = RecordedExecution(_result(row), source)
        return found

    def recent_fire_ids(self, partition: int, since_ms: int) -> dict[str, tuple[int, int | None]]:
        with self._lock:
            rows = self._conn.execute(
                """SELECT fire_id, scheduled_at_ms, due_offset FROM executions
                   WHERE due_partition = ? AND scheduled_at_ms >= ?""",
                (partition, since_ms),
            ).fetchall()
        return {row[0]: (row[1], row[2]) for row in rows}

    def purge_expired(self, before_ms: int) -> int:
        """Delete outcomes scheduled before ``before_ms`` (the retention, for stores
        without a TTL). Returns how many rows went."""
        with locked_transaction(self._conn, self._lock):
            cursor = self._conn.execute(
                "DELETE FROM executions WHERE scheduled_at_ms < ?", (before_ms,)
            )
        return int(cursor.rowcount)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _result(row: Sequence[Any]) -> ExecutionResult:
    return result_from_columns(dict(zip(RESULT_COLUMNS, row, strict=False)))
