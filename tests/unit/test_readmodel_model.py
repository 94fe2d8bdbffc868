"""The SQLite read model against a reference fold of the facts it is given.

Random changelog entries, tombstones, results and cancels for a few tasks,
cut into batches at random points, are applied to the real store; a small
reference keeps, per task, the facts the shown status derives from (the last
state, whether a cancel was seen, the newest firing's outcome) and whether
the task has a row at all. After every batch, each task the API would show
must show the status ``derive_status`` gives for the reference's facts.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams.core.events import CommandKind, ExecutionResult, TaskCommand, TaskState, TaskStatus
from streams.core.model import AtSchedule, HttpTarget, Outcome, TaskSpec
from streams.core.projection import ENDED, derive_status
from streams.ports import Projection
from streams.views.readmodel.sqlite import SqliteReadModel
from tests.unit.test_readmodel import result

TASKS = ("t1", "t2")
SPEC = TaskSpec(AtSchedule(2_000_000), HttpTarget("https://example.com/a"), name="a")


@dataclass
class Facts:
    """What the reference knows of one task (a row exists once a state or result came)."""

    row: bool = False
    shown: bool = False  # a state arrived: the API shows the task
    state_status: str | None = None
    cancelled: bool = False
    newest: tuple[int, int] | None = None  # (scheduled, attempt) of the newest result
    outcome: str | None = None
    final: bool = False


Event = tuple[str, str, Any]

events = st.lists(
    st.one_of(
        st.tuples(st.just("state"), st.sampled_from(TASKS), st.sampled_from(list(TaskStatus))),
        st.tuples(st.just("tombstone"), st.sampled_from(TASKS), st.none()),
        st.tuples(
            st.just("result"),
            st.sampled_from(TASKS),
            st.tuples(
                st.integers(1, 3),
                st.integers(1, 2),
                st.sampled_from([Outcome.SUCCEEDED, Outcome.FAILED]),
                st.booleans(),
            ),
        ),
        st.tuples(st.just("cancel"), st.sampled_from(TASKS), st.none()),
    ),
    max_size=30,
)


def batches_of(items: list[Event], cuts: list[int]) -> list[list[Event]]:
    points = sorted({c % (len(items) + 1) for c in cuts} | {0, len(items)})
    return [items[a:b] for a, b in itertools.pairwise(points)]


def projection(batch: list[Event], first_command: int) -> Projection:
    states: list[tuple[str, TaskState | None]] = []
    results: list[ExecutionResult] = []
    commands: list[TaskCommand] = []
    for kind, task_id, detail in batch:
        if kind == "state":
            assert isinstance(detail, TaskStatus)
            states.append((task_id, TaskState(task_id, "acme", SPEC, detail, 5, None, 0, 1, 1)))
        elif kind == "tombstone":
            states.append((task_id, None))
        elif kind == "result":
            results.append(result(task_id, *detail))
        else:
            command_id = f"c{first_command + len(commands)}"
            commands.append(
                TaskCommand(command_id, task_id, "acme", CommandKind.CANCEL, 1, "acme/ci")
            )
    return Projection(states=tuple(states), results=tuple(results), commands=tuple(commands))


def fold(facts: dict[str, Facts], batch: Projection) -> None:
    """The store applies a batch's states in order, then its results, then its commands."""
    for task_id, state in batch.states:
        f = facts[task_id]
        if state is not None:
            f.row = f.shown = True
            f.state_status = state.status.value
        elif f.row:
            f.state_status = ENDED
    for r in batch.results:
        f = facts[r.task_id]
        if not f.row or f.newest is None or f.newest <= (r.scheduled_at_ms, r.attempt):
            f.newest, f.outcome, f.final = (r.scheduled_at_ms, r.attempt), r.outcome.value, r.final
        f.row = True
    for c in batch.commands:
        if facts[c.task_id].row:
            facts[c.task_id].cancelled = True


@settings(max_examples=300, deadline=None)
@given(events, st.lists(st.integers(0, 40), max_size=30))
# Two the search found: a result that decides an ended task's status, and a
# tombstone after the result (each status set from the facts before the write).
@example(
    [("state", "t1", TaskStatus.COMPLETED), ("result", "t1", (1, 1, Outcome.FAILED, True))], []
)
@example(
    [
        ("state", "t1", TaskStatus.SCHEDULED),
        ("result", "t1", (1, 1, Outcome.FAILED, True)),
        ("tombstone", "t1", None),
    ],
    [2],
)
def test_shown_status_follows_the_facts_in_any_batching(
    items: list[Event], cuts: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as work:
        store = SqliteReadModel(Path(work) / "rm.sqlite3")
        facts = {t: Facts() for t in TASKS}
        commands = 0
        try:
            for batch in batches_of(items, cuts):
                applied = projection(batch, commands)
                commands += len(applied.commands)
                store.apply("p", applied)
                fold(facts, applied)
                for task_id, f in facts.items():
                    task = store.get_task("acme", task_id)
                    assert (task is not None) == f.shown, task_id
                    if task is None:
                        continue
                    expected = derive_status(f.state_status, f.cancelled, f.outcome, f.final)
                    assert (task.status, task.last_outcome) == (expected, f.outcome), task_id
        finally:
            store.close()
