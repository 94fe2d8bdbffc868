"""The skeleton processor's pure core, driven by a fake clock (no sleeps)."""

from __future__ import annotations

import pytest

from streams.core.clock import FakeClock
from streams.core.errors import MalformedEvent
from streams.core.events import CommandKind, TaskCommand
from streams.core.model import AtSchedule, HttpTarget, IntervalSchedule, Schedule, TaskSpec
from streams.core.tasktable import TaskTable


def create(task_id: str, schedule: Schedule, command_id: str = "c1") -> TaskCommand:
    spec = TaskSpec(schedule, HttpTarget("https://example.com/hook"))
    return TaskCommand(command_id, task_id, "acme", CommandKind.CREATE, 0, "test", spec)


def test_one_time_task_fires_once_at_its_instant_then_ends() -> None:
    clock = FakeClock()
    table = TaskTable()
    due_at = clock.now_ms() + 5_000
    effects = table.apply(create("t1", AtSchedule(due_at)), clock.now_ms())
    assert [c.state.next_fire_ms for c in effects.changes if c.state] == [due_at]
    assert table.next_due_ms() == due_at

    clock.advance(4_999)
    assert table.fire_due(clock.now_ms()).firings == []
    clock.advance(1)
    fired = table.fire_due(clock.now_ms())
    assert [(f.fire_id, f.scheduled_at_ms, f.attempt) for f in fired.firings] == [
        (f"t1:{due_at}:1", due_at, 1)
    ]
    assert [c.state for c in fired.changes] == [None]  # tombstone
    assert len(table) == 0
    clock.advance(60_000)
    assert table.fire_due(clock.now_ms()).firings == []


def test_recurring_task_is_rescheduled_and_missed_runs_collapse() -> None:
    clock = FakeClock(start_ms=0)
    table = TaskTable()
    table.apply(create("t1", IntervalSchedule(1_000, 0, None)), 0)
    assert [f.scheduled_at_ms for f in table.fire_due(0).firings] == [0]
    clock.advance(3_500)  # runs at 1000, 2000 and 3000 were missed
    fired = table.fire_due(clock.now_ms())
    assert [f.scheduled_at_ms for f in fired.firings] == [1_000]
    assert table.next_due_ms() == 4_000


def test_firings_come_out_in_time_order() -> None:
    table = TaskTable()
    for i, due in enumerate([300, 100, 200]):
        table.apply(create(f"t{i}", AtSchedule(due), command_id=f"c{i}"), 0)
    assert [f.scheduled_at_ms for f in table.fire_due(1_000).firings] == [100, 200, 300]


def test_create_is_idempotent_by_command_id() -> None:
    table = TaskTable()
    command = create("t1", AtSchedule(1_000))
    table.apply(command, 0)
    again = table.apply(command, 10)
    assert again.changes == []
    assert again.firings == []
    with pytest.raises(MalformedEvent, match="already exists"):
        table.apply(create("t1", AtSchedule(2_000), command_id="other"), 10)


def test_cancel_removes_the_task_and_writes_a_tombstone() -> None:
    table = TaskTable()
    table.apply(create("t1", AtSchedule(1_000)), 0)
    cancel = TaskCommand("c2", "t1", "acme", CommandKind.CANCEL, 0, "test")
    assert [c.state for c in table.apply(cancel, 1).changes] == [None]
    assert table.fire_due(5_000).firings == []
    assert table.apply(cancel, 2).changes == []  # cancelling twice is harmless


def test_commands_not_handled_yet_are_refused_clearly() -> None:
    table = TaskTable()
    pause = TaskCommand("c3", "t1", "acme", CommandKind.PAUSE, 0, "test")
    with pytest.raises(MalformedEvent, match="PAUSE"):
        table.apply(pause, 0)
