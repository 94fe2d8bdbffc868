"""One partition of the processor checked against a model: every accepted task fires, once.

The model (:class:`ReferenceScheduler`) is the simplest scheduler that can be
right: every task in a dict, every timer in one sorted list of ``(due_ms,
task_id)``, a time that only moves forward, and the lifecycle rules of
:mod:`streams.core.lifecycle` applied one task at a time. No horizon, no
index, no wheel, no restore.

A Hypothesis state machine drives the real :class:`PartitionWheel` (its
SQLite index in a temporary directory, plain message objects, the time passed
in) the way the processor loop does, one step at a time: read some commands,
``handle`` each, ``tick`` once, ``take_outputs``, then either commit (the
outputs become "the changelog" and "tasks.due") or crash (the step's outputs
are lost, a new partition is restored from the committed changelog, and the
step's commands are read again, as Kafka would deliver them again). Steps are
0 ms to many minutes long, often exactly to the next timer or the next
horizon move, and sometimes negative (the wall clock stepped back). Retries
for runs that fired arrive at any delay, also after their task has ended.

After every committed step the real partition must have emitted exactly the
model's firings of that step (same fire ids, reasons and times: none early,
none late, none missing, none doubled, and after a restore the misfire rule),
given up exactly the retries the model gives up (as a final FAILED result),
and hold exactly the model's task states.

Tasks may have jitter (``schedule.jitter_ms``): a run must then fire no
earlier than its nominal time plus the offset the model derives for it on its
own (:func:`~streams.core.jitter.jitter_offset_ms`), and say that offset.

The horizon is small (3 s) so that tasks cross it all the time.
``KRONWHEEL_MODEL_LONG=1`` runs many more and longer examples.

A step of the model: the commands in order, then the clock. A command that
leaves its task due at or before the time the previous step ended fires at
once (that moment has already passed); everything else due by now fires when
the step's clock runs.
"""

from __future__ import annotations

import atexit
import bisect
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from streams.core.events import (
    CommandKind,
    DueTask,
    FireReason,
    RetryRequest,
    TaskCommand,
    TaskState,
    TaskStatus,
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
from streams.core.model import Outcome as RunOutcome
from streams.kafka.records import decode_due, decode_result, decode_state, encode_command
from streams.kafka.topics import COMMANDS, DUE, RESULTS, STATE
from streams.wheel.partition import ChangelogRecord, Output, PartitionWheel, WheelConfig
from streams.wheel.statestore import PartitionStore

T0 = 1_800_000_000_000
HORIZON_MS = 3_000
CONFIG = WheelConfig(horizon_ms=HORIZON_MS, promote_step_ms=1_000, misfire_grace_ms=5_000)
TASK_IDS = [f"t{n}" for n in range(6)]
LONG = os.environ.get("KRONWHEEL_MODEL_LONG") == "1"
# Counted for the long mode's report.
STATS: Counter[str] = Counter()

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


@dataclass
class Message:
    """What the partition reads of a Kafka record."""

    _key: bytes
    _value: bytes
    _offset: int

    def topic(self) -> str | None:
        return COMMANDS

    def partition(self) -> int | None:
        return 0

    def offset(self) -> int | None:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value


def firings_of(outputs: list[Output]) -> list[DueTask]:
    return [decode_due(o.value) for o in outputs if o.topic == DUE and o.value is not None]


def given_up_of(outputs: list[Output]) -> list[str]:
    results = [decode_result(o.value) for o in outputs if o.topic == RESULTS and o.value]
    assert all(r.final and r.outcome is RunOutcome.FAILED for r in results)
    return [r.fire_id for r in results]


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
    st.tuples(st.just("cron"), st.sampled_from(["* * * * *", "*/2 * * * *"])),
)
# Step lengths: none, short, long (past the grace, past a completed task's
# retention), and backwards (the wall clock stepped back).
plain_steps = st.one_of(
    st.sampled_from([0, 1, 999, 1_000, 1_001]),
    st.integers(0, 4_000),
    st.integers(4_000, 30 * 60_000),
    st.integers(-10_000, -1),
)


class PartitionAgainstModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="kw-model-"))
        self.wall_ms = T0
        self.model = ReferenceScheduler(T0, CONFIG.misfire_grace_ms)
        self.changelog: list[ChangelogRecord] = []  # committed records, oldest first
        self.unread: list[TaskCommand] = []  # sent, not in a committed step yet
        self.sent: list[TaskCommand] = []
        self.fired: list[DueTask] = []  # every committed firing, for retries to point at
        self.offset = 0
        self.wheel = self._restored(T0)
        assert self.wheel.start(T0) == []

    def teardown(self) -> None:
        self.wheel.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- the real partition -------------------------------------------------

    def _restored(self, now_ms: int) -> PartitionWheel:
        """What the last process left on disk, caught up from its offset, or rebuilt."""
        store = PartitionStore(self.dir / "p.sqlite3")
        start = store.resume_from(0, len(self.changelog), now_ms)
        if start is None:
            store.reset()
            start = 0
        STATS["tail restores" if start else "full restores"] += 1
        wheel = PartitionWheel(0, store, now_ms, CONFIG)
        wheel.restore(self.changelog[start:], len(self.changelog), now_ms)
        return wheel

    def _commit(
        self,
        outputs: list[Output],
        expected: list[DueTask],
        given_up: list[str],
        store_too: bool = True,
    ) -> None:
        """The step's transaction commits; then (unless the process dies first) the store."""
        real = firings_of(outputs)
        assert as_firings(real) == as_firings(expected), (
            f"at {self.wall_ms - T0} ms (model time {self.model.now_ms - T0}): "
            f"fired {sorted(as_firings(real))}, model {sorted(as_firings(expected))}"
        )
        for due in real:
            if due.reason in (FireReason.SCHEDULE, FireReason.MISFIRE):
                assert due.emitted_at_ms >= due.due_at_ms, f"{due.fire_id} fired early"
        assert Counter(given_up_of(outputs)) == Counter(given_up)
        self.changelog += [(o.key or b"", o.value, o.headers) for o in outputs if o.topic == STATE]
        if store_too:
            self.wheel.store.save_offset(len(self.changelog), self.wall_ms)
            self.wheel.store.commit()
        self.fired += real
        STATS["firings"] += len(real)
        STATS["steps"] += 1

    # --- commands -------------------------------------------------------------

    def _command(self, data: st.DataObject) -> TaskCommand:
        self.offset += 1
        kind = data.draw(command_kinds)
        issued = self.wall_ms - data.draw(st.integers(0, 200))
        task_id = data.draw(st.sampled_from(TASK_IDS))
        spec = retry = None
        if kind in (CommandKind.CREATE, CommandKind.UPDATE):
            spec = TaskSpec(
                schedule=self._schedule(data),
                target=HttpTarget("https://example.com/hook", timeout_ms=1_000),
                retry=data.draw(retry_policies),
                misfire=data.draw(misfires),
                jitter_ms=data.draw(jitters),
            )
        if kind is CommandKind.RETRY:
            earlier_run = data.draw(st.booleans())
            if self.fired and earlier_run:
                run = data.draw(st.sampled_from(self.fired))
                task_id, scheduled, attempt = run.task_id, run.scheduled_at_ms, run.attempt + 1
            else:
                scheduled, attempt = issued - data.draw(st.integers(0, 60_000)), 2
            delay = data.draw(st.one_of(st.integers(0, 5_000), st.integers(0, 20 * 60_000)))
            retry = RetryRequest(scheduled, attempt, issued + delay, "failed")
        return TaskCommand(
            command_id=f"c{self.offset}",
            task_id=task_id,
            tenant="acme",
            kind=kind,
            issued_at_ms=issued,
            issuer="model",
            spec=spec,
            retry=retry,
        )

    def _schedule(self, data: st.DataObject) -> Schedule:
        """Times relative to where the last step ended (strategies built once: cheaper)."""
        base = self.model.ticked_ms
        shape = data.draw(schedule_shapes)
        match shape:
            case ("at", int(offset)):
                return AtSchedule(base + offset)
            case ("every", int(period), start, runs):
                return IntervalSchedule(
                    period,
                    None if start is None else base + start,
                    None if runs is None else base + (start or 0) + runs * period,
                )
            case ("cron", str(expression)):
                return CronSchedule(expression)
        raise AssertionError(shape)

    def _step_ms(self, data: st.DataObject) -> int:
        """A plain step, or one that ends exactly on a timer or a horizon move."""
        wakeup = self.wheel.next_wakeup_ms()
        exact = [self.model.timers[0][0]] if self.model.timers else []
        if wakeup is not None:
            exact.append(wakeup)
        if self.wheel.promoted_until_ms is not None:
            exact.append(self.wheel.promoted_until_ms - HORIZON_MS + CONFIG.promote_step_ms)
        targets = [t - self.wall_ms for t in exact if t >= self.wall_ms]
        exactly = data.draw(st.booleans())
        if targets and exactly:
            return data.draw(st.sampled_from(targets))
        return data.draw(plain_steps)

    # --- rules ----------------------------------------------------------------

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One turn of the processor loop: read commands, apply them, run the clock."""
        new = [self._command(data) for _ in range(data.draw(st.integers(0, 4)))]
        if self.sent and data.draw(st.integers(0, 9)) == 0:
            new.append(data.draw(st.sampled_from(self.sent)))  # a duplicate delivery
        self.sent += new
        self.unread += new
        self.wall_ms += self._step_ms(data)
        # 0: the process dies before the commit; 1: after it (a clean restart);
        # 2: between the Kafka commit and the store's
        ending = data.draw(st.integers(0, 13))
        for n, command in enumerate(self.unread):
            message = Message(command.task_id.encode(), encode_command(command), n)
            self.wheel.handle(message, self.wall_ms)
        self.wheel.tick(self.wall_ms)
        outputs = self.wheel.take_outputs()
        if ending == 0:
            # The transaction never committed: its outputs are gone, its
            # commands will be read again, the partition is restored (maybe
            # by a process whose clock is elsewhere).
            STATS["crashes"] += 1
            self.wall_ms += data.draw(plain_steps)
            self._restart()
            return
        expected: list[DueTask] = []
        given_up: list[str] = []
        for command in self.unread:
            firings, gone = self.model.command(command, self.wall_ms)
            expected += firings
            given_up += gone
        expected += self.model.advance(self.wall_ms)
        self.unread = []
        self._commit(outputs, expected, given_up, store_too=ending != 2)
        if ending in (1, 2):  # a restart, or a new owner, some time later
            self.wall_ms += data.draw(plain_steps)
            self._restart()

    def _restart(self) -> None:
        self.wheel.close(remove_store=False)  # uncommitted writes are dropped
        self.wheel = self._restored(self.wall_ms)
        outputs = self.wheel.start(self.wall_ms)
        STATS["restores"] += 1
        self._commit(outputs, self.model.restore(self.wall_ms), [])

    @invariant()
    def holds_the_models_states(self) -> None:
        for task_id in TASK_IDS:
            stored = self.wheel.store.get(task_id)
            state = None if stored is None else decode_state(stored)
            assert state == self.model.tasks.get(task_id), (task_id, state)
        assert len(self.wheel.store) == len(self.model.tasks)


PartitionAgainstModel.TestCase.settings = settings(
    max_examples=1_000 if LONG else 40,
    stateful_step_count=100 if LONG else 30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestPartitionAgainstModel = PartitionAgainstModel.TestCase

if LONG:
    _started = time.monotonic()
    atexit.register(
        lambda: print(f"model test: {dict(STATS)} in {time.monotonic() - _started:.0f} s")
    )


def test_paused_tasks_status_is_kept() -> None:
    """The model's own sanity: a paused task keeps no schedule timer."""
    model = ReferenceScheduler(T0, 5_000)
    spec = TaskSpec(AtSchedule(T0 + 100), HttpTarget("https://example.com/hook"))
    create = TaskCommand("c1", "a", "acme", CommandKind.CREATE, T0, "t", spec)
    pause = TaskCommand("c2", "a", "acme", CommandKind.PAUSE, T0, "t")
    model.command(create, T0)
    model.command(pause, T0)
    assert model.advance(T0 + 1_000) == []
    assert model.tasks["a"].status is TaskStatus.PAUSED
