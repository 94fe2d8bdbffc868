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

import atexit
import bisect
import gc
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from hypothesis import strategies as st

from streams.core.events import (
    CommandKind,
    DueTask,
    FireReason,
    RetryRequest,
    TaskCommand,
    TaskState,
)
from streams.core.ids import fire_id
from streams.core.jitter import jitter_offset_ms
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
from streams.kafka.records import decode_state
from streams.kafka.topics import COMMANDS
from streams.ports import KafkaMessage
from streams.wheel.partition import WheelConfig
from streams.wheel.statestore import PartitionStore
from tests.support.memlog import Fault, MemLog

T0 = 1_800_000_000_000
HORIZON_MS = 3_000
CONFIG = WheelConfig(horizon_ms=HORIZON_MS, promote_step_ms=1_000, misfire_grace_ms=5_000)
LONG = os.environ.get("KRONWHEEL_MODEL_LONG") == "1"

# What a firing must match.
Firing = tuple[str, str, int, int]  # fire id, reason, emitted at, jitter offset


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
        jitter = self.tasks[task_id].spec.jitter_ms
        for due in transition.firings:
            if due.reason in (FireReason.SCHEDULE, FireReason.MISFIRE):
                # Worked out here on its own: the real firing must say the same (as_firings).
                offset = jitter_offset_ms(task_id, due.scheduled_at_ms, jitter)
                if due.jitter_ms != offset or due.emitted_at_ms < due.scheduled_at_ms + offset:
                    raise ModelError(f"{due.fire_id}: jitter {due.jitter_ms}, not {offset}")
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


class PartitionModels:
    """One reference scheduler per partition of a processor group: as committed,
    with its owner's uncommitted work (``model``), and what that work must write
    when it commits (``expected`` firings, ``given_up`` retries)."""

    def __init__(self, partitions: int, now_ms: int, grace_ms: int) -> None:
        self.committed = {p: ReferenceScheduler(now_ms, grace_ms) for p in range(partitions)}
        self.model = {p: m.copy() for p, m in self.committed.items()}
        self.expected: dict[int, list[DueTask]] = {p: [] for p in self.committed}
        self.given_up: dict[int, list[str]] = {p: [] for p in self.committed}

    def drop(self, p: int) -> None:
        """The uncommitted work is thrown away (an abort, a death, a revoke)."""
        self.model[p] = self.committed[p].copy()
        self.expected[p], self.given_up[p] = [], []

    def restore(self, p: int, now_ms: int) -> None:
        """A process restores the partition from what was committed."""
        self.drop(p)
        self.expected[p] = self.model[p].restore(now_ms)

    def command(self, p: int, command: TaskCommand, now_ms: int) -> None:
        firings, given_up = self.model[p].command(command, now_ms)
        self.expected[p] += firings
        self.given_up[p] += given_up

    def advance(self, p: int, now_ms: int) -> None:
        self.expected[p] += self.model[p].advance(now_ms)

    def commit(self, p: int) -> None:
        self.committed[p] = self.model[p].copy()
        self.expected[p], self.given_up[p] = [], []


def compacted_states(messages: Iterable[KafkaMessage]) -> dict[str, TaskState]:
    """The live tasks of a changelog partition, as compaction would leave them."""
    latest: dict[str, TaskState | None] = {}
    for message in messages:
        value = message.value()
        latest[(message.key() or b"").decode()] = None if value is None else decode_state(value)
    return {task_id: state for task_id, state in latest.items() if state is not None}


def close_stores_under(directory: Path) -> None:
    """What the OS does for a dead process: its partition stores' files close
    (open SQLite transactions roll back, the locks go). Call it while the dead
    process is still referenced (its object, or the traceback of its death):
    once collected, its lock files would stay locked (nothing closes a bare
    descriptor)."""
    for thing in gc.get_objects():
        if isinstance(thing, PartitionStore) and directory in thing.path.parents:
            thing.close(remove=False)


def report_at_exit(what: str, stats: Counter[str]) -> None:
    """The long mode says how much it ran (printed when the run ends)."""
    started = time.monotonic()
    atexit.register(lambda: print(f"{what}: {dict(stats)} in {time.monotonic() - started:.0f} s"))


def as_firings(dues: list[DueTask]) -> Counter[Firing]:
    return Counter((d.fire_id, d.reason.value, d.emitted_at_ms, d.jitter_ms) for d in dues)


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
# Below every period above (validation wants jitter shorter than the period).
jitters = st.sampled_from([0, 0, 0, 1, 500, 999])
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
            jitter_ms=data.draw(jitters),
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


# --- for the processor loop's test -------------------------------------------------


def task_ids_over(partitions: int, per_partition: int = 2) -> list[str]:
    """Task ids spread over every partition (by the in-memory log's partitioner)."""
    log = MemLog()
    log.create_topic(COMMANDS, partitions)
    ids: list[str] = []
    count: Counter[int] = Counter()
    for n in range(1_000):
        partition = log.partition_for(COMMANDS, f"t{n}".encode())
        if count[partition] < per_partition:
            count[partition] += 1
            ids.append(f"t{n}")
    return ids


# What one turn of a processor meets in its transaction, if it writes one.
# Aborts are common enough that two come in a row (a rewind's firings then wait
# through a second abort: they were lost there once).
turn_faults = st.sampled_from(
    [None] * 16
    + [("produce", Fault.ABORTABLE), ("send_offsets", Fault.ABORTABLE)] * 2
    + [("commit", Fault.ABORTABLE)] * 3
    + [
        ("send_offsets", Fault.RETRIABLE),  # retried, then committed
        ("commit", Fault.FENCED),
        ("produce", Fault.KILLED),
        ("send_offsets", Fault.KILLED),
        ("commit", Fault.KILLED),
        ("commit", Fault.KILLED_AFTER),
    ]
)


class SteppedClock:
    """Wall time the test moves, backwards too (an NTP step); monotonic time only forwards."""

    def __init__(self, start_ms: int) -> None:
        self.wall_ms = start_ms
        self._monotonic = 0.0

    def now_ms(self) -> int:
        return self.wall_ms

    def monotonic(self) -> float:
        return self._monotonic

    def move(self, ms: int) -> None:
        self.wall_ms += ms
        self._monotonic += abs(ms) / 1000
