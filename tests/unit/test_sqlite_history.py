"""What only the SQLite store does: a shared file, old files.

The execution-history behaviour of every store is in tests/contract/.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from streams.core.events import ExecutionResult
from streams.core.model import Outcome
from streams.ports import DueSource
from streams.views.history.sqlite import SqliteHistoryStore


def result(fire_id: str, scheduled: int, outcome: Outcome = Outcome.SUCCEEDED) -> ExecutionResult:
    task_id = fire_id.split(":")[0]
    return ExecutionResult(
        fire_id,
        task_id,
        "acme",
        scheduled,
        1,
        outcome,
        True,
        scheduled + 5,
        scheduled + 9,
        5,
        200,
        None,
        "d1",
    )


def test_two_processes_share_the_file(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    writer, reader = SqliteHistoryStore(path), SqliteHistoryStore(path)
    writer.record_executions([result("t1:1:1", 1)])
    assert [r.fire_id for r in reader.executions("t1")] == ["t1:1:1"]
    writer.close()
    reader.close()


def test_a_file_from_before_due_sources_gets_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """CREATE TABLE executions (fire_id TEXT PRIMARY KEY, task_id TEXT NOT NULL,
           tenant TEXT NOT NULL, scheduled_at_ms INTEGER NOT NULL, attempt INTEGER NOT NULL,
           outcome TEXT NOT NULL, final INTEGER NOT NULL, started_at_ms INTEGER NOT NULL,
           finished_at_ms INTEGER NOT NULL, lateness_ms INTEGER NOT NULL, http_status INTEGER,
           error TEXT, dispatcher TEXT NOT NULL)"""
    )
    old.close()
    store = SqliteHistoryStore(path)
    store.record_executions([result("t1:1:1", 1)], {"t1:1:1": DueSource(0, 7)})
    assert store.recent_fire_ids(0, 0) == {"t1:1:1": (1, 7)}
    store.close()
