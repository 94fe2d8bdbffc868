"""Retention on SQLite (Cassandra applies it as a TTL on write): one setting, every store."""

from __future__ import annotations

from pathlib import Path

from streams.core.events import CommandKind, ExecutionResult, TaskCommand, TaskState, TaskStatus
from streams.core.model import AtSchedule, HttpTarget, Outcome, TaskSpec
from streams.ports import Projection
from streams.views.history.sqlite import SqliteHistoryStore
from streams.views.readmodel.sqlite import SqliteReadModel
from streams.views.retention import purge_once

DAY_MS = 86_400_000
NOW = 1_800_000_000_000
SPEC = TaskSpec(AtSchedule(NOW), HttpTarget("https://example.com/x"), name="r")


def outcome(task_id: str, scheduled: int) -> ExecutionResult:
    return ExecutionResult(
        f"{task_id}:{scheduled}:1", task_id, "acme", scheduled, 1, Outcome.SUCCEEDED, True,
        scheduled + 1, scheduled + 2, 1, 200, None, "d",
    )  # fmt: skip


def state(task_id: str, updated: int) -> TaskState:
    return TaskState(
        task_id, "acme", SPEC, TaskStatus.SCHEDULED, NOW, None, 0, updated, updated, "c"
    )


def test_old_history_audit_and_ended_tasks_go_live_tasks_and_recent_rows_stay(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.sqlite3"
    history, model = SqliteHistoryStore(path), SqliteReadModel(path)
    old, recent = NOW - 40 * DAY_MS, NOW - DAY_MS
    history.record_executions([outcome("ended", old), outcome("live", recent)])
    commands = tuple(
        TaskCommand(f"c-{t}", t, "acme", CommandKind.CREATE, at, "svc", SPEC)
        for t, at in (("ended", old), ("live", recent))
    )
    model.apply(
        "p",
        Projection(
            states=(("ended", state("ended", old)), ("ended", None), ("live", state("live", old))),
            results=(),
            commands=commands,
            rejected=(),
            offsets=(),
        ),
    )
    assert purge_once([history, model], NOW, ttl_s=0) == 0, "0 keeps everything"
    deleted = purge_once([history, model], NOW, ttl_s=30 * 86_400)
    assert deleted == 3  # the old outcome, the old audit row, the ended task
    assert [r.fire_id for r in history.executions("live")] == [f"live:{recent}:1"]
    assert history.executions("ended") == []
    assert model.get_task("acme", "ended") is None
    assert model.get_task("acme", "live") is not None, "a live task never expires"
    assert [e.command_id for e in model.audit("acme", "live")] == ["c-live"]
    history.close()
    model.close()
