"""The SQLite history store. (The contract suite over every store comes with Cassandra.)"""

from __future__ import annotations

from pathlib import Path

from streams.core.events import ExecutionResult
from streams.core.model import Outcome
from streams.history.sqlite import SqliteHistoryStore
from streams.ports import TaskRow


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


def test_executions_are_idempotent_by_fire_id(tmp_path: Path) -> None:
    store = SqliteHistoryStore(tmp_path / "h.sqlite3")
    first = [result("t1:100:1", 100), result("t1:200:1", 200)]
    assert store.record_executions(first) == 2
    assert store.record_executions([*first, result("t1:300:1", 300)]) == 1
    assert [r.fire_id for r in store.executions("t1")] == ["t1:300:1", "t1:200:1", "t1:100:1"]
    assert store.final_fire_ids(["t1:100:1", "t1:999:1"]) == {"t1:100:1"}
    store.close()


def test_task_row_tracks_the_latest_outcome(tmp_path: Path) -> None:
    store = SqliteHistoryStore(tmp_path / "h.sqlite3")
    store.upsert_task(TaskRow("t1", "acme", "n", {"schedule": {"at": "x"}}, "SCHEDULED", 100, 1, 1))
    store.record_executions([result("t1:200:1", 200, Outcome.FAILED)])
    store.record_executions([result("t1:100:1", 100)])  # older, arrives late
    row = store.get_task("t1")
    assert row is not None
    assert (row.last_fire_id, row.last_outcome) == ("t1:200:1", "failed")
    assert store.get_task("missing") is None
    store.close()


def test_many_fire_ids_are_looked_up_in_chunks(tmp_path: Path) -> None:
    store = SqliteHistoryStore(tmp_path / "h.sqlite3")
    store.record_executions([result(f"t{i}:1:1", 1) for i in range(1_200)])
    ids = [f"t{i}:1:1" for i in range(1_300)]
    assert len(store.final_fire_ids(ids)) == 1_200
    store.close()


def test_two_processes_share_the_file(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    writer, reader = SqliteHistoryStore(path), SqliteHistoryStore(path)
    writer.record_executions([result("t1:1:1", 1)])
    assert [r.fire_id for r in reader.executions("t1")] == ["t1:1:1"]
    writer.close()
    reader.close()
