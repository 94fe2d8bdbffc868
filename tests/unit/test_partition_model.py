"""One partition of the processor checked against a model: every accepted task fires, once.

The model (:class:`~tests.support.refmodel.ReferenceScheduler`, shared with
the processor loop's test, tests/unit/test_processor_model.py) is the
simplest scheduler that can be right: every task in a dict, every timer in
one sorted list, a time that only moves forward.

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
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from streams.core.events import CommandKind, DueTask, FireReason, TaskCommand, TaskStatus
from streams.core.model import AtSchedule, HttpTarget, TaskSpec
from streams.core.model import Outcome as RunOutcome
from streams.kafka.records import decode_due, decode_result, decode_state, encode_command
from streams.kafka.topics import COMMANDS, DUE, RESULTS, STATE
from streams.wheel.partition import ChangelogRecord, Output, PartitionWheel
from streams.wheel.statestore import PartitionStore
from tests.support.refmodel import (
    CONFIG,
    HORIZON_MS,
    LONG,
    T0,
    ReferenceScheduler,
    as_firings,
    draw_command,
    plain_steps,
    report_at_exit,
)

TASK_IDS = [f"t{n}" for n in range(6)]
# Counted for the long mode's report.
STATS: Counter[str] = Counter()


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
        return draw_command(
            data,
            self.offset,
            TASK_IDS,
            self.wall_ms,
            lambda _: self.model.ticked_ms,
            self.fired,
        )

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
    report_at_exit("model test", STATS)


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
