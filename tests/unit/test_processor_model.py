"""The processor loop checked against a model: every accepted task fires, once.

The real :class:`~streams.wheel.processor.Processor`, two of them in two
slots sharing three partitions, driven through its Kafka port over the
in-memory log (tests/support/memlog.py: read_committed, faults on demand)
with a wall clock the test moves; per partition, the reference scheduler of
tests/support/refmodel.py says what must come out.

Random rules: commands of every kind; turns (``run_once``) after a clock
step (0 ms to half an hour, often exactly to a timer or a horizon move,
sometimes backwards); aborted, retried and fenced transactions; SIGKILLs
before, during and just after a commit, between turns and in a restore (the
process is dropped unclosed), with or without its state directory; restarts
in the slot; partitions moved to the other processor, lost, or revoked and
assigned back within one poll.

The model mirrors each turn from what the poll delivered: an assigned
partition is restored at the turn's time from what was committed (misfire
rule included), each command read is applied, the clock runs. When the turn
commits, its new ``tasks.due`` records must be exactly the model's firings
(fire ids, reasons, emission times: none early, late, lost or doubled), its
FAILED results the retries the model gives up, and the compacted
``tasks.state`` the model's tasks. An abort or a death throws the uncommitted
model away (an abort restores what the member holds, as the loop does).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from streams.config import Settings
from streams.core.events import DueTask, FireReason, TaskCommand
from streams.kafka.records import (
    decode_command,
    decode_due,
    decode_result,
    encode_command,
)
from streams.kafka.topics import COMMANDS, DEAD, DUE, RESULTS, STATE
from streams.kafka.transactions import FatalKafkaError
from streams.wheel.processor import Processor, state_dir
from tests.support.memlog import MemKafka, MemLog, ProcessKilled
from tests.support.refmodel import (
    CONFIG,
    HORIZON_MS,
    LONG,
    T0,
    PartitionModels,
    SteppedClock,
    as_firings,
    close_stores_under,
    compacted_states,
    draw_command,
    plain_steps,
    report_at_exit,
    task_ids_over,
    turn_faults,
)

PARTITIONS = 3
SLOTS = ("a", "b")
PREFIX = "m."
GROUP = "processors"
STATS: Counter[str] = Counter()


TASK_IDS = task_ids_over(PARTITIONS)


class ProcessorsAgainstModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="kw-procmodel-"))
        self.clock = SteppedClock(T0)
        self.log = MemLog()
        for name in (COMMANDS, STATE, DUE):
            self.log.create_topic(PREFIX + name, PARTITIONS)
        for name in (RESULTS, DEAD):
            self.log.create_topic(PREFIX + name, 1)
        self.models = PartitionModels(PARTITIONS, T0, CONFIG.misfire_grace_ms)
        self.owner: dict[int, str | None] = dict.fromkeys(range(PARTITIONS))
        self.promised: dict[int, str] = {}  # assignments scripted, not delivered yet
        # Delivered to a processor that owned partitions already: paused, restored
        # one a turn, oldest first (insertion order), then resumed and owned.
        self.restoring: dict[int, str] = {}
        self.procs: dict[str, tuple[Processor, MemKafka] | None] = dict.fromkeys(SLOTS)
        self.sent: list[TaskCommand] = []
        self.trace: list[str] = []  # what happened, for a failure's message
        self.fired: list[DueTask] = []  # every committed firing, for retries to point at
        for slot in SLOTS:
            self._launch(
                slot, [p for p in range(PARTITIONS) if p % len(SLOTS) == SLOTS.index(slot)]
            )

    def teardown(self) -> None:
        try:
            for slot, member in self.procs.items():
                if member is not None:
                    self.procs[slot] = None
                    member[0].close()
        finally:
            for slot in SLOTS:  # whatever a failed example left open
                self._close_files(slot)
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- processes ------------------------------------------------------------------

    def _launch(self, slot: str, partitions: list[int]) -> None:
        kafka = MemKafka(self.log, PREFIX + COMMANDS, GROUP, changelog_topic=PREFIX + STATE)
        settings_ = Settings(topic_prefix=PREFIX, data_dir=self.dir, slot=slot)
        processor = Processor(settings_, self.clock, CONFIG, kafka=kafka)
        processor.start()
        self.procs[slot] = (processor, kafka)
        if partitions:
            self._assign(slot, partitions, after_fetch=False)

    def _assign(self, slot: str, partitions: list[int], after_fetch: bool) -> None:
        member = self.procs[slot]
        assert member is not None
        member[1].assign(partitions, after_fetch=after_fetch)
        self.promised.update(dict.fromkeys(partitions, slot))

    def _die(self, slot: str) -> None:
        """SIGKILL: no close, no revoke; the OS closes its files (open SQLite
        transactions roll back, the store locks go) and the group forgets it."""
        self.trace.append(f"kill {slot}")
        self._close_files(slot)
        self.procs[slot] = None
        self._forget(slot)
        STATS["kills"] += 1

    def _close_files(self, slot: str) -> None:
        close_stores_under(state_dir(self.dir, slot))

    def _forget(self, slot: str) -> None:
        for p in range(PARTITIONS):
            if self.owner[p] == slot:
                self._unown(p)
            if self.promised.get(p) == slot:
                del self.promised[p]
            if self.restoring.get(p) == slot:
                del self.restoring[p]

    def _unown(self, p: int) -> None:
        self.owner[p] = None
        self.models.drop(p)

    def _restore(self, p: int, slot: str, now_ms: int) -> None:
        self.owner[p] = slot
        self.models.restore(p, now_ms)
        STATS["restores"] += 1

    def _owned(self, slot: str) -> list[int]:
        return [p for p in range(PARTITIONS) if self.owner[p] == slot]

    def _holder(self, p: int) -> str | None:
        """The slot that owns the partition or is restoring it."""
        return self.owner[p] or self.restoring.get(p)

    def _orphans(self) -> list[int]:
        return [p for p in range(PARTITIONS) if self._holder(p) is None and p not in self.promised]

    # --- one turn of a processor ----------------------------------------------------

    def _turn(self, slot: str, data: st.DataObject) -> None:
        member = self.procs[slot]
        assert member is not None
        processor, kafka = member
        fault = data.draw(turn_faults)
        if fault is not None:
            kafka.producer.fail(fault[0], fault[1])
        if data.draw(st.integers(0, 9)) == 0:
            kafka.kill_in_restore_after = data.draw(st.integers(0, 3))
        now_ms = self.clock.now_ms()
        due_before = [len(self.log.read(PREFIX + DUE, p)) for p in range(PARTITIONS)]
        results_before = len(self.log.read(PREFIX + RESULTS, 0))
        transactions, aborts = self.log.transactions, kafka.producer.calls.count("abort")
        killed = fatal = False
        try:
            processor.run_once()
        except ProcessKilled:
            killed = True
            self._close_files(slot)  # now: a store open in a restore dies with the traceback
        except FatalKafkaError:
            fatal = True
        kafka.producer.clear_faults()
        kafka.kill_in_restore_after = None
        STATS["turns"] += 1
        self.trace.append(
            f"{now_ms - T0}: turn {slot} fault={fault} delivered={kafka.delivered} "
            f"read={[(m.partition(), m.offset()) for m in kafka.returned]} "
            f"killed={killed} fatal={fatal} txns+={self.log.transactions - transactions}"
        )
        self._mirror_poll(slot, kafka, now_ms)
        owned = self._owned(slot)
        if not (killed or fatal):  # the model's view of who holds what is the processor's
            assert sorted(processor.partitions) == owned, self.trace[-1]
            queued = [p for p, holder in self.restoring.items() if holder == slot]
            assert list(processor._restoring) == queued, self.trace[-1]
            assert kafka.paused_partitions == set(queued), self.trace[-1]
        aborted = kafka.producer.calls.count("abort") > aborts
        if self.log.transactions > transactions or not (killed or fatal or aborted):
            self._check_commit(owned, due_before, results_before)  # or nothing was written
        else:
            for p in range(PARTITIONS):
                assert len(self.log.read(PREFIX + DUE, p)) == due_before[p], "a lost step wrote"
        if aborted:
            STATS["aborts"] += 1
            for p in owned:  # the loop restores what it holds from the stores
                self._restore(p, slot, now_ms)
        if killed:
            self._die(slot)
        elif fatal:  # the role's run() closes on its way out, then exits 1
            STATS["fenced"] += 1
            processor.close()
            self.procs[slot] = None
            self._forget(slot)

    def _mirror_poll(self, slot: str, kafka: MemKafka, now_ms: int) -> None:
        """What the processor did in its poll and step, applied to the model.

        Partitions assigned to a processor that owns none (and restores none) are
        restored in the poll, all of them; assigned to one that owns some, they
        are paused and restored one per turn, oldest first, after the poll (their
        commands are read from the next poll on)."""
        assigned: set[int] = set()
        dropped: set[int] = set()
        for kind, partitions, _ in kafka.delivered:
            at_once = not self._owned(slot) and slot not in self.restoring.values()
            for p in partitions:
                self.promised.pop(p, None)
                if kind == "assign":
                    assigned.add(p)
                    if at_once:
                        self._restore(p, slot, now_ms)
                    else:
                        self.restoring[p] = slot
                        STATS["paused and restored later"] += 1
                else:
                    dropped.add(p)
                    if self.restoring.pop(p, None) is None:
                        self._unown(p)
                    else:
                        STATS["restores abandoned"] += 1
        stale = assigned & dropped  # its records are read again from the committed offset
        queued = [p for p, holder in self.restoring.items() if holder == slot]
        if queued:
            del self.restoring[queued[0]]
            self._restore(queued[0], slot, now_ms)
        owned = self._owned(slot)
        for message in kafka.returned:
            q = message.partition()
            if q in owned and q not in stale:
                self.models.command(q, decode_command(message.value() or b""), now_ms)
        for p in owned:
            self.models.advance(p, now_ms)

    def _check_commit(self, owned: list[int], due_before: list[int], results_before: int) -> None:
        for p in range(PARTITIONS):
            real = [decode_due(m.value() or b"") for m in self.log.read(PREFIX + DUE, p)]
            new = real[due_before[p] :]
            want = self.models.expected[p] if p in owned else []
            assert as_firings(new) == as_firings(want), (
                f"partition {p} at {self.clock.now_ms() - T0} ms: "
                f"fired {sorted(as_firings(new))}, model {sorted(as_firings(want))}\n"
                + "\n".join(self.trace[-40:])
            )
            for due in new:
                if due.reason in (FireReason.SCHEDULE, FireReason.MISFIRE):
                    assert due.emitted_at_ms >= due.due_at_ms, f"{due.fire_id} fired early"
            self.fired += new
            STATS["firings"] += len(new)
        results = [decode_result(m.value() or b"") for m in self.log.read(PREFIX + RESULTS, 0)][
            results_before:
        ]
        assert all(r.final for r in results)
        assert Counter(r.fire_id for r in results) == Counter(
            f for p in owned for f in self.models.given_up[p]
        )
        for p in owned:
            self.models.commit(p)
        STATS["commits"] += 1

    # --- rules ------------------------------------------------------------------------

    def _live(self) -> list[str]:
        return [slot for slot in SLOTS if self.procs[slot] is not None]

    def _write_commands(self, data: st.DataObject) -> None:
        new = [
            draw_command(
                data,
                len(self.sent) + n,
                TASK_IDS,
                self.clock.now_ms(),
                self._base_ms,
                self.fired,
            )
            for n in range(data.draw(st.integers(0, 4)))
        ]
        if self.sent and data.draw(st.integers(0, 9)) == 0:
            new.append(data.draw(st.sampled_from(self.sent)))  # a duplicate delivery
        for command in new:
            where = self.log.append(
                PREFIX + COMMANDS, command.task_id.encode(), encode_command(command)
            )
            self.trace.append(f"  {where}: {command}")
        self.sent += new

    def _base_ms(self, task_id: str) -> int:
        return self.models.model[
            self.log.partition_for(PREFIX + COMMANDS, task_id.encode())
        ].ticked_ms

    def _step_ms(self, slot: str, data: st.DataObject) -> int:
        """A plain step, or one that ends exactly on a timer or a horizon move."""
        member = self.procs[slot]
        assert member is not None
        exact = [
            self.models.model[p].timers[0][0]
            for p in self._owned(slot)
            if self.models.model[p].timers
        ]
        for wheel in member[0].partitions.values():
            wakeup = wheel.next_wakeup_ms()
            if wakeup is not None:
                exact.append(wakeup)
            if wheel.promoted_until_ms is not None:
                exact.append(wheel.promoted_until_ms - HORIZON_MS + CONFIG.promote_step_ms)
        now = self.clock.now_ms()
        targets = [t - now for t in exact if t >= now]
        exactly = data.draw(st.booleans())
        if targets and exactly:
            return data.draw(st.sampled_from(targets))
        return data.draw(plain_steps)

    @precondition(lambda self: bool(self._live()))
    @rule(data=st.data())
    def turns(self, data: st.DataObject) -> None:
        """A few times: commands arrive, the clock moves, a processor runs one step
        of its loop (several per rule: most of what happens is turns)."""
        for _ in range(data.draw(st.integers(1, 6))):
            if not self._live():
                return
            slot = data.draw(st.sampled_from(self._live()))
            self._write_commands(data)
            self.clock.move(self._step_ms(slot, data))
            self._turn(slot, data)

    @precondition(lambda self: bool(self._live()))
    @rule(data=st.data())
    def kill(self, data: st.DataObject) -> None:
        """SIGKILL between steps (one time in three: turns die too, in their faults)."""
        if data.draw(st.integers(0, 2)) == 0:
            self._die(data.draw(st.sampled_from(self._live())))

    @precondition(lambda self: len(self._live()) < len(SLOTS))
    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        """A process starts in a dead slot (with its state directory, or on a new
        disk) and gets the partitions nobody holds."""
        slot = data.draw(st.sampled_from([s for s in SLOTS if self.procs[s] is None]))
        if data.draw(st.booleans()):
            shutil.rmtree(state_dir(self.dir, slot), ignore_errors=True)
            STATS["state dirs lost"] += 1
        self.clock.move(data.draw(plain_steps))
        orphans = self._orphans()
        self._launch(slot, orphans)
        self.trace.append(f"{self.clock.now_ms() - T0}: restart {slot} with {orphans}")
        STATS["restarts"] += 1

    @precondition(lambda self: bool(self._live()))
    @rule(data=st.data())
    def rebalance(self, data: st.DataObject) -> None:
        """A partition leaves its owner (revoked, or lost), then a live processor
        gets it: the other one, or the same one again within one poll."""
        held = [
            p for p in range(PARTITIONS) if self._holder(p) is not None and p not in self.promised
        ]
        orphans = self._orphans()
        live = self._live()
        if orphans:  # the group hands out what a dead member held
            self._assign(data.draw(st.sampled_from(live)), orphans, data.draw(st.booleans()))
            return
        if not held:
            return
        p = data.draw(st.sampled_from(held))
        owner = self._holder(p)
        assert owner is not None
        member = self.procs[owner]
        assert member is not None
        to = data.draw(st.sampled_from(live))
        STATS["rebalances"] += 1
        if to == owner:
            member[1].revoke([p], after_fetch=True)
            self._assign(owner, [p], after_fetch=True)
            return
        if data.draw(st.booleans()):
            member[1].revoke([p], after_fetch=data.draw(st.booleans()))
        else:
            member[1].lose([p], after_fetch=data.draw(st.booleans()))
        self._turn(owner, data)  # the old owner lets go first
        if self.procs[to] is not None and p in self._orphans():
            self._assign(to, [p], data.draw(st.booleans()))

    @invariant()
    def changelog_holds_the_models_tasks(self) -> None:
        """The compacted tasks.state of each partition is its committed model."""
        for p in range(PARTITIONS):
            live = compacted_states(self.log.read(PREFIX + STATE, p))
            assert live == self.models.committed[p].tasks, f"partition {p}"


ProcessorsAgainstModel.TestCase.settings = settings(
    max_examples=400 if LONG else 20,
    stateful_step_count=60 if LONG else 25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Passing takes seconds; a failure is shrunk for up to Hypothesis's 5 minutes.
TestProcessorsAgainstModel = pytest.mark.timeout(7_200 if LONG else 600)(
    ProcessorsAgainstModel.TestCase
)

if LONG:
    report_at_exit("processor model test", STATS)
