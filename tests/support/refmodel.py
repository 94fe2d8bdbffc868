"""The reference scheduler and the random commands the model-based tests share.

:class:`ReferenceScheduler` is the simplest scheduler that can be right:
every task in a dict, every timer in one sorted list of ``(due_ms,
task_id)``, a time that only moves forward, and the lifecycle rules of
:mod:`streams.core.lifecycle` applied one task at a time. No horizon, no
index, no wheel, no restore.

A step of the model: the commands in order, then the clock. A command that
leaves its task due at or before the time the previous step ended fires at
once (that moment has already passed); everything else due by now fires when
the step's clock runs. A restore starts the time at the new process's clock
and fires what fell due meanwhile under each task's misfire rule.

Both tests (one partition: tests/unit/test_partition_model.py; the processor
loop over the in-memory log: tests/unit/test_processor_model.py) draw their
commands and steps from the strategies here. The horizon is small (3 s) so
that tasks cross it all the time.
"""

from __future__ import annotations

import bisect
import os
from collections import Counter
from collections.abc import Callable

from hypothesis import strategies as st

from streams.core.events import (
    CommandKind,
    DueTask,
    RetryRequest,
    TaskCommand,
    TaskState,
)
from streams.core.ids import fire_id
from streams.core.lifecycle import Outcome, apply_command, fire, next_due_ms
from streams.core.model import (
    AtSchedule,
    CronSchedule,
    HttpTarget,
    IntervalSchedule,
    Misfire,
    RetryPolicy,
    Schedule,
    TaskSpec,
)
from streams.wheel.partition import WheelConfig

T0 = 1_800_000_000_000
HORIZON_MS = 3_000
CONFIG = WheelConfig(horizon_ms=HORIZON_MS, promote_step_ms=1_000, misfire_grace_ms=5_000)
LONG = os.environ.get("KRONWHEEL_MODEL_LONG") == "1"

# (fire id, reason, emitted at): what a firing must match.
Firing = tuple[str, str, int]


class ModelError(AssertionError):
    """The model itself hit a state it cannot get out of (a lifecycle bug)."""


class ReferenceScheduler:
    """Every task in a dict, every timer in one sorted list, time that only goes forward."""

    def __init__(self, now_ms: int, grace_ms: int) -> None:
        self.grace_ms = grace_ms
        self.tasks: dict[str, TaskState] = {}
        self.timers: list[tuple[int, str]] = []  # sorted (due_ms, task_id)
        self.now_ms = now_ms  # the processor's time: never goes back
        self.ticked_ms = now_ms  # where the last step's clock ended

    def copy(self) -> ReferenceScheduler:
        """A snapshot (states are immutable: the containers are what is copied)."""
        twin = ReferenceScheduler(self.now_ms, self.grace_ms)
        twin.tasks = dict(self.tasks)
        twin.timers = list(self.timers)
        twin.ticked_ms = self.ticked_ms
        return twin

    def restore(self, wall_ms: int) -> list[DueTask]:
        """A new process takes over: its time starts at its own clock, then catches up."""
        self.now_ms = self.ticked_ms = wall_ms
        return self.advance(wall_ms)

    def command(self, command: TaskCommand, wall_ms: int) -> tuple[list[DueTask], list[str]]:
        """Returns the firings and the fire ids of retries given up (their task has ended)."""
        self.now_ms = max(self.now_ms, wall_ms)
        task_id = command.task_id
        transition = apply_command(self.tasks.get(task_id), command, self.now_ms)
        given_up: list[str] = []
        if command.kind is CommandKind.RETRY and transition.outcome == Outcome.IGNORED:
            assert command.retry is not None
            given_up.append(fire_id(task_id, command.retry.scheduled_at_ms, command.retry.attempt))
        firings = list(transition.firings)
        if transition.writes:
            self._set(task_id, transition.writes[-1])
        due = self._due(task_id)
        if due is not None and due <= self.ticked_ms:
            firings += self._fire(task_id)
        return firings, given_up

    def advance(self, wall_ms: int) -> list[DueTask]:
        self.now_ms = max(self.now_ms, wall_ms)
        firings: list[DueTask] = []
        while self.timers and self.timers[0][0] <= self.now_ms:
            firings += self._fire(self.timers[0][1])
        self.ticked_ms = self.now_ms
        return firings

    def _fire(self, task_id: str) -> list[DueTask]:
        transition = fire(self.tasks[task_id], self.now_ms, self.grace_ms)
        if not transition.writes:
            raise ModelError(f"{task_id}'s timer is due and firing it changes nothing")
        self._set(task_id, transition.writes[-1])
        return transition.firings

    def _due(self, task_id: str) -> int | None:
        state = self.tasks.get(task_id)
        return None if state is None else next_due_ms(state)

    def _set(self, task_id: str, state: TaskState | None) -> None:
        due = self._due(task_id)
        if due is not None:
            self.timers.remove((due, task_id))
        if state is None:
            self.tasks.pop(task_id, None)
            return
        self.tasks[task_id] = state
        due = next_due_ms(state)
        if due is not None:
            bisect.insort(self.timers, (due, task_id))


def as_firings(dues: list[DueTask]) -> Counter[Firing]:
    return Counter((d.fire_id, d.reason.value, d.emitted_at_ms) for d in dues)


# --- what the commands are made of ---------------------------------------------------

# Creates more often than the rest: most other commands need a live task.
command_kinds = st.sampled_from([CommandKind.CREATE] * 4 + list(CommandKind))
misfires = st.sampled_from(list(Misfire))
retry_policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 3),
    backoff_ms=st.just(1_000),
    max_backoff_ms=st.just(4_000),
)
# Offsets from "now" that land on or around the horizon and its next moves.
near_offsets = st.one_of(
    st.integers(-2_000, 20_000),
    st.integers(HORIZON_MS - 300, HORIZON_MS + 2_000),
    st.sampled_from([0, 1, HORIZON_MS - 1, HORIZON_MS, HORIZON_MS + 1]),
)
periods = st.sampled_from([1_000, 2_999, 3_000, 3_001, 4_500, 60_000])
schedule_shapes = st.one_of(
    st.tuples(st.just("at"), near_offsets),
    # Runs 1..4: an interval that ends at its start never fires, which validation refuses.
    st.tuples(st.just("every"), periods, st.none() | near_offsets, st.none() | st.integers(1, 4)),
    st.tuples(
        st.just("cron"),
        st.sampled_from(["* * * * *", "*/2 * * * *"]),
        # A zone whose minute boundaries are not UTC's (+05:45) and one with DST.
        st.sampled_from(["UTC", "Asia/Kathmandu", "Europe/Berlin"]),
    ),
)
# Step lengths: none, short, long (past the grace, past a completed task's
# retention), and backwards (the wall clock stepped back).
plain_steps = st.one_of(
    st.sampled_from([0, 1, 999, 1_000, 1_001]),
    st.integers(0, 4_000),
    st.integers(4_000, 30 * 60_000),
    st.integers(-10_000, -1),
)


def draw_schedule(data: st.DataObject, base_ms: int) -> Schedule:
    """Times relative to ``base_ms`` (where the task's partition last ticked)."""
    shape = data.draw(schedule_shapes)
    match shape:
        case ("at", int(offset)):
            return AtSchedule(base_ms + offset)
        case ("every", int(period), start, runs):
            return IntervalSchedule(
                period,
                None if start is None else base_ms + start,
                None if runs is None else base_ms + (start or 0) + runs * period,
            )
        case ("cron", str(expression), str(zone)):
            return CronSchedule(expression, zone)
    raise AssertionError(shape)


def draw_command(
    data: st.DataObject,
    number: int,
    task_ids: list[str],
    wall_ms: int,
    base_ms: Callable[[str], int],
    fired: list[DueTask],
) -> TaskCommand:
    """A random command of any kind. A RETRY names a run that fired (``fired``) or a
    made-up one, and asks for a delay of up to 20 minutes: past a completed task's
    retention, too."""
    kind = data.draw(command_kinds)
    issued = wall_ms - data.draw(st.integers(0, 200))
    task_id = data.draw(st.sampled_from(task_ids))
    spec = retry = None
    if kind in (CommandKind.CREATE, CommandKind.UPDATE):
        spec = TaskSpec(
            schedule=draw_schedule(data, base_ms(task_id)),
            target=HttpTarget("https://example.com/hook", timeout_ms=1_000),
            retry=data.draw(retry_policies),
            misfire=data.draw(misfires),
        )
    if kind is CommandKind.RETRY:
        earlier_run = data.draw(st.booleans())
        if fired and earlier_run:
            run = data.draw(st.sampled_from(fired))
            task_id, scheduled, attempt = run.task_id, run.scheduled_at_ms, run.attempt + 1
        else:
            scheduled, attempt = issued - data.draw(st.integers(0, 60_000)), 2
        delay = data.draw(st.one_of(st.integers(0, 5_000), st.integers(0, 20 * 60_000)))
        retry = RetryRequest(scheduled, attempt, issued + delay, "failed")
    return TaskCommand(
        command_id=f"c{number}",
        task_id=task_id,
        tenant="acme",
        kind=kind,
        issued_at_ms=issued,
        issuer="model",
        spec=spec,
        retry=retry,
    )
